import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { fitLinearRegression, fitLogisticRegression, minimizeLbfgs, trainLinearRegression, trainLogisticRegression } from '../../src/ml/linear.ts';
import { predictScores } from '../../src/ml/predict.ts';
import { accuracy } from '../../src/ml/metrics.ts';
import { argmaxRows } from '../../src/ml/predict.ts';
import { fitPreprocessing, transformColumns } from '../../src/ml/preprocess.ts';
import type { RawColumn } from '../../src/ml/preprocess.ts';
import { trainTestSplit, takeRows, takeValues } from '../../src/ml/split.ts';
import type { Matrix, TrainingData } from '../../src/ml/types.ts';

const close = (a: number, b: number, eps: number): void => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b} (eps ${eps})`);
const matrix = (rows: number[][]): Matrix => ({ rows: rows.length, cols: rows[0]?.length ?? 0, values: Float64Array.from(rows.flat()) });
const regression = (x: Matrix, y: number[]): TrainingData => ({ x, y: Float64Array.from(y), task: 'regression', nClasses: 0 });
const classification = (x: Matrix, y: number[], nClasses: number): TrainingData => ({ x, y: Float64Array.from(y), task: 'classification', nClasses });

void describe('linear regression', () => {
  void test('OLS recovers the exact coefficients of noiseless data', () => {
    const rows = [
      [0, 1],
      [1, 0],
      [2, 3],
      [3, -1],
      [4, 2],
      [-1, 5],
    ];
    const y = rows.map(([a, b]) => 3 + 2 * a! - b!);
    const fit = trainLinearRegression(regression(matrix(rows), y));
    assert.equal(fit.jitter, 0);
    close(fit.model.coefficients[0]!, 2, 1e-10);
    close(fit.model.coefficients[1]!, -1, 1e-10);
    close(fit.model.intercepts[0]!, 3, 1e-10);
    assert.equal(fit.model.postTransform, 'none');
    assert.equal(fit.model.nTargets, 1);
  });

  void test('ridge shrinks the slope: w = Sxy / (Sxx + alpha) with an unpenalised intercept', () => {
    // x = 0..3, y = 1 + 2x: centred Sxx = 5, Sxy = 10; alpha 5 gives w = 1 and b = 4 - 1.5 = 2.5.
    const x = matrix([[0], [1], [2], [3]]);
    const y = [1, 3, 5, 7];
    const ols = fitLinearRegression(regression(x, y));
    const ridge = fitLinearRegression(regression(x, y), { alpha: 5 });
    close(ols.coefficients[0]!, 2, 1e-12);
    close(ridge.coefficients[0]!, 1, 1e-12);
    close(ridge.intercepts[0]!, 2.5, 1e-12);
  });

  void test('without an intercept the line goes through the origin', () => {
    // y = [1, 2, 2]: w = sum(xy) / sum(x^2) = (1 + 4 + 6) / (1 + 4 + 9) = 11 / 14
    const m = fitLinearRegression(regression(matrix([[1], [2], [3]]), [1, 2, 2]), { fitIntercept: false });
    close(m.coefficients[0]!, 11 / 14, 1e-12);
    assert.equal(m.intercepts[0], 0);
  });

  void test('collinear features: jitter makes the system solvable and splits the weight evenly', () => {
    const rows = [[1, 1], [2, 2], [3, 3], [5, 5]];
    const fit = trainLinearRegression(regression(matrix(rows), [2, 4, 6, 10]));
    assert.ok(fit.jitter > 0);
    close(fit.model.coefficients[0]!, 1, 1e-6);
    close(fit.model.coefficients[1]!, 1, 1e-6);
    const pred = predictScores(fit.model, matrix([[4, 4]])).values!;
    close(pred[0]!, 8, 1e-6);
  });

  void test('a constant feature gets weight 0 and the intercept takes the mean', () => {
    const fit = trainLinearRegression(regression(matrix([[7], [7], [7]]), [1, 2, 6]));
    assert.ok(fit.jitter > 0);
    assert.equal(fit.model.coefficients[0], 0);
    close(fit.model.intercepts[0]!, 3, 1e-12);
  });

  void test('rejects missing feature values and reports progress', () => {
    assert.throws(() => fitLinearRegression(regression(matrix([[1], [Number.NaN]]), [1, 2])), /impute/);
    const seen: number[] = [];
    fitLinearRegression(regression(matrix([[1], [2]]), [1, 2]), { onProgress: (f) => seen.push(f) });
    assert.equal(seen.at(-1), 1);
    assert.ok(seen.every((f) => f >= 0 && f <= 1));
  });
});

void describe('logistic regression', () => {
  void test('intercept-only model converges to the log-odds of the class balance', () => {
    const x: Matrix = { rows: 4, cols: 0, values: new Float64Array(0) };
    const fit = trainLogisticRegression(classification(x, [1, 1, 1, 0], 2), { tol: 1e-10 });
    assert.ok(fit.converged);
    close(fit.model.intercepts[0]!, Math.log(3), 1e-8);
  });

  void test('matches the known optimum of a two-point problem: w (1 + e^w) = 2, b = 0', () => {
    // Objective sum_i log(1 + e^{-y_i (w x_i + b)}) + w^2 / 2 at x = -1 (class 0), x = 1 (class 1).
    const fit = trainLogisticRegression(classification(matrix([[-1], [1]]), [0, 1], 2), { tol: 1e-10 });
    let lo = 0;
    let hi = 1;
    for (let i = 0; i < 100; i++) {
      const mid = (lo + hi) / 2;
      if (mid * (1 + Math.exp(mid)) < 2) lo = mid;
      else hi = mid;
    }
    close(fit.model.coefficients[0]!, lo, 1e-7);
    close(fit.model.intercepts[0]!, 0, 1e-7);
    assert.equal(fit.model.postTransform, 'logistic');
    assert.equal(fit.model.nTargets, 1);
  });

  void test('separates a linearly separable set and C controls the weight size', () => {
    const rows: number[][] = [];
    const y: number[] = [];
    for (let i = 0; i < 40; i++) {
      const a = (i % 10) / 5 - 1;
      const b = Math.floor(i / 10) / 2 - 0.75;
      rows.push([a, b]);
      y.push(a + 0.5 * b > 0.1 ? 1 : 0);
    }
    const data = classification(matrix(rows), y, 2);
    const strong = fitLogisticRegression(data, { C: 100 });
    const weak = fitLogisticRegression(data, { C: 0.01 });
    const pred = argmaxRows(predictScores(strong, data.x).probabilities!, 2);
    assert.equal(accuracy(y, pred), 1);
    const norm = (m: typeof strong): number => Math.hypot(...m.coefficients);
    assert.ok(norm(weak) < norm(strong));
  });

  void test('multinomial: coefficients of each feature sum to zero over classes, and two-class softmax equals sigmoid with 2C', () => {
    const rows = [[0, 0], [1, 0.2], [0.1, 1], [2, 2], [1.5, 0.5], [0.3, 1.7], [2.2, 0.1], [0.9, 0.9], [1.1, 2.4]];
    const y = [0, 1, 2, 0, 1, 2, 1, 0, 2];
    const fit = trainLogisticRegression(classification(matrix(rows), y, 3), { tol: 1e-10, maxIter: 500 });
    assert.ok(fit.converged);
    assert.equal(fit.model.postTransform, 'softmax');
    assert.equal(fit.model.nTargets, 3);
    for (let j = 0; j < 2; j++) close(fit.model.coefficients[j]! + fit.model.coefficients[2 + j]! + fit.model.coefficients[4 + j]!, 0, 1e-6);

    const yb = [0, 1, 1, 0, 1, 0, 1, 0, 1];
    const data = classification(matrix(rows), yb, 2);
    const soft = fitLogisticRegression(data, { C: 0.5, multiClass: 'multinomial', tol: 1e-10 });
    const sig = fitLogisticRegression(data, { C: 1, tol: 1e-10 });
    assert.equal(soft.nTargets, 2);
    const ps = predictScores(soft, data.x).probabilities!;
    const pb = predictScores(sig, data.x).probabilities!;
    ps.forEach((v, i) => close(v, pb[i]!, 1e-6));
  });

  void test('validates its inputs', () => {
    assert.throws(() => fitLogisticRegression(classification(matrix([[1], [2]]), [0, 2], 2)), RangeError);
    assert.throws(() => fitLogisticRegression(classification(matrix([[1], [2]]), [0, 0], 1)), RangeError);
    assert.throws(() => fitLogisticRegression(classification(matrix([[1], [2]]), [0, 1], 2), { C: 0 }), RangeError);
    assert.throws(() => fitLogisticRegression(regression(matrix([[1], [2]]), [0, 1])), /classification/);
  });
});

void describe('minimizeLbfgs', () => {
  void test('finds the minimum of the Rosenbrock function', () => {
    const r = minimizeLbfgs(
      (w, g) => {
        const [a, b] = [w[0]!, w[1]!];
        g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
        g[1] = 200 * (b - a * a);
        return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
      },
      Float64Array.of(-1.2, 1),
      { maxIter: 500, gtol: 1e-9 },
    );
    assert.ok(r.converged);
    close(r.x[0]!, 1, 1e-5);
    close(r.x[1]!, 1, 1e-5);
  });
});

const datasets = path.resolve(import.meta.dirname, '../../../shared/datasets');
const breastCancer = path.join(datasets, 'breast_cancer.csv');

function loadNumericCsv(file: string, target: string): { columns: RawColumn[]; y: Float64Array } {
  const rows: string[][] = parse(readFileSync(file, 'utf8'));
  const header = rows[0]!;
  const body = rows.slice(1);
  const ti = header.indexOf(target);
  const columns: RawColumn[] = header
    .map((name, j): RawColumn => ({ name, kind: 'numeric', values: Float64Array.from(body, (r) => Number(r[j])) }))
    .filter((_, j) => j !== ti);
  return { columns, y: Float64Array.from(body, (r) => Number(r[ti])) };
}

void describe('logistic regression on breast_cancer.csv', { skip: !existsSync(breastCancer) }, () => {
  void test('matches scikit-learn on the full standardised data', () => {
    const { columns, y } = loadNumericCsv(breastCancer, 'target');
    const pre = fitPreprocessing(columns, { forLinear: true });
    const fit = trainLogisticRegression(classification(transformColumns(pre, columns), Array.from(y), 2), { tol: 1e-8, maxIter: 1000 });
    // scikit-learn 1.9.1: StandardScaler + LogisticRegression(tol=1e-8, max_iter=1000); objective
    // = mean log-loss + ||w||^2 / (2 n).
    close(fit.loss, 0.0663601862247581, 1e-10);
    [-0.363093, -0.387675, -0.351063, -0.435609, -0.161832, 0.562654].forEach((v, j) => close(fit.model.coefficients[j]!, v, 2e-6));
    close(fit.model.intercepts[0]!, 0.21450281, 2e-6);
  });

  void test('accuracy > 0.94 on a seeded stratified 80/20 split', () => {
    const { columns, y } = loadNumericCsv(breastCancer, 'target');
    const { train, test } = trainTestSplit(y.length, { testSize: 0.2, seed: 42, stratify: y });
    const pick = (idx: Int32Array): RawColumn[] => columns.map((c) => ({ ...c, values: takeValues(c.values as Float64Array, idx) }));
    const pre = fitPreprocessing(pick(train), { forLinear: true });
    const xTrain = transformColumns(pre, pick(train));
    const xTest = transformColumns(pre, pick(test));
    assert.equal(takeRows(xTrain, Int32Array.of(0)).cols, 30);
    const model = fitLogisticRegression({ x: xTrain, y: takeValues(y, train), task: 'classification', nClasses: 2 });
    const pred = argmaxRows(predictScores(model, xTest).probabilities!, 2);
    const acc = accuracy(takeValues(y, test), pred);
    assert.ok(acc > 0.94, `accuracy ${acc}`);
  });
});
