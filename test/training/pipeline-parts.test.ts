import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { numericStats } from '../../src/datasets/schema.ts';
import { fitPreprocessing } from '../../src/ml/preprocess.ts';
import type { LinearModel, Matrix } from '../../src/ml/types.ts';
import { exportModel } from '../../src/onnx/index.ts';
import { onnxRuntime } from '../../src/onnx/runtime.ts';
import { evaluateGate } from '../../src/training/pipeline.ts';
import { inferTask } from '../../src/training/train-request.ts';
import { checkExport } from '../../src/training/pipeline-check.ts';
import { parseDatasetRef, parseParam } from '../../src/training/pipeline-cli.ts';
import { resolveParams } from '../../src/training/pipeline-params.ts';
import { categoricalReference, numericReference } from '../../src/training/pipeline-reference.ts';

void describe('training reference statistics', () => {
  void test('numeric: decile edges with open-ended bins, counts adding up, mean/std, null rate, bounded sorted sample', () => {
    const n = 5000;
    const values = new Float64Array(n + 10).fill(Number.NaN);
    for (let i = 0; i < n; i++) values[i] = (i * 7919) % n; // a permutation of 0..4999
    const r = numericReference(values);
    assert.equal(r.count, n);
    assert.equal(r.null_rate, 10 / (n + 10));
    assert.equal(r.min, 0);
    assert.equal(r.max, n - 1);
    assert.equal(r.mean, (n - 1) / 2);
    assert.equal(r.bins.edges.length, 9);
    assert.ok(Math.abs(r.bins.edges[0]! - 499.9) < 1e-9 && Math.abs(r.bins.edges[8]! - 4499.1) < 1e-9);
    assert.equal(r.bins.counts.length, 10);
    // Bin k holds edges[k-1] <= x < edges[k]: 500 values per decile.
    assert.deepEqual(r.bins.counts, [500, 500, 500, 500, 500, 500, 500, 500, 500, 500]);
    assert.equal(r.sample.length, 1000);
    for (let i = 1; i < r.sample.length; i++) assert.ok(r.sample[i]! >= r.sample[i - 1]!);
    assert.ok(r.sample[0]! < 10 && r.sample.at(-1)! > n - 10);
    assert.ok(Math.abs(r.std! - Math.sqrt((n * n - 1) / 12)) < 1e-9);
  });

  void test('numeric: ties collapse edges; a constant column has one edge; all-missing has none', () => {
    const r = numericReference(Float64Array.from([1, 1, 1, 1, 2, 2, 2, 3]));
    // Positions 0.7, 1.4, ... 6.3 of the sorted values: 1 (four times), 1.5, 2 (three times), 2.3.
    assert.deepEqual(r.bins.edges.map((e) => Number(e.toFixed(9))), [1, 1.5, 2, 2.3]);
    assert.deepEqual(r.bins.counts, [0, 4, 0, 3, 1]);
    const c = numericReference(Float64Array.from([4, 4, 4]));
    assert.deepEqual(c.bins, { edges: [4], counts: [0, 3] });
    assert.deepEqual(c.sample, [4, 4, 4]);
    const empty = numericReference(Float64Array.from([Number.NaN]));
    assert.equal(empty.count, 0);
    assert.equal(empty.null_rate, 1);
    assert.deepEqual(empty.bins, { edges: [], counts: [0] });
    // Agrees with the dataset statistics on mean and the sample standard deviation's population form.
    const s = numericStats(Float64Array.from([1, 2, 3, 4]));
    const ref = numericReference(Float64Array.from([1, 2, 3, 4]));
    assert.equal(ref.mean, s.mean);
    assert.ok(Math.abs(ref.std! - s.std! * Math.sqrt(3 / 4)) < 1e-12);
  });

  void test('categorical: frequencies by label, missing and unknown codes count as null', () => {
    const r = categoricalReference(Float64Array.from([0, 1, 1, Number.NaN, 2, 7]), ['a', 'b', 'c']);
    assert.deepEqual(r.frequencies, { a: 1, b: 2, c: 1 });
    assert.equal(r.count, 4);
    assert.equal(r.null_rate, 2 / 6);
  });
});

void describe('promotion gate and task inference', () => {
  void test('evaluateGate: bounds are inclusive, missing metrics fail, no gate passes', () => {
    assert.deepEqual(evaluateGate(undefined, {}), { pass: true, reason: 'no promotion gate' });
    assert.equal(evaluateGate({ metric: 'accuracy', min: 0.9 }, { accuracy: 0.9 }).pass, true);
    assert.deepEqual(evaluateGate({ metric: 'accuracy', min: 0.95 }, { accuracy: 0.9 }), { pass: false, reason: 'accuracy = 0.9 is below the minimum 0.95' });
    assert.deepEqual(evaluateGate({ metric: 'rmse', max: 1 }, { rmse: 1.5 }), { pass: false, reason: 'rmse = 1.5 is above the maximum 1' });
    assert.equal(evaluateGate({ metric: 'roc_auc', min: 0.5 }, { accuracy: 1 }).pass, false);
    assert.equal(evaluateGate({ metric: 'accuracy', min: 0.5 }, { accuracy: Number.NaN }).pass, false);
    assert.deepEqual(evaluateGate({ metric: 'r2', min: 0.5, max: 1 }, { r2: 0.75 }), { pass: true, reason: 'r2 = 0.75 >= 0.5 and <= 1' });
  });

  void test('inferTask: categorical and boolean targets and small integer sets are classes', () => {
    const numeric = (values: number[]) => ({ name: 't', type: 'numeric' as const, stats: numericStats(Float64Array.from(values)) });
    assert.equal(inferTask(numeric([0, 1, 2, 1])), 'classification');
    assert.equal(inferTask(numeric([0.5, 1, 2])), 'regression');
    assert.equal(inferTask(numeric(Array.from({ length: 21 }, (_, i) => i))), 'regression');
    assert.equal(inferTask(numeric(Array.from({ length: 20 }, (_, i) => i))), 'classification');
    assert.equal(inferTask({ name: 't', type: 'categorical', stats: { count: 2, missing: 0, distinct: 2, top: [], otherCount: 0 } }), 'classification');
  });

  void test('resolveParams fills in the task-dependent defaults and the seed', () => {
    const forest = resolveParams('random_forest', 'regression', { n_estimators: 5 }, 9);
    assert.equal(forest.algorithm, 'random_forest');
    if (forest.algorithm !== 'random_forest') return;
    assert.equal(forest.criterion, 'squared_error');
    assert.equal(forest.max_features, 1);
    assert.equal(forest.seed, 9);
    assert.equal(forest.n_estimators, 5);
    assert.throws(() => resolveParams('random_forest', 'regression', { n_jobs: 0 }, 1), /n_jobs/);
  });
});

void describe('CLI argument parsing', () => {
  void test('--param values parse as JSON when they can; --dataset takes an optional version', () => {
    assert.deepEqual(parseParam('max_depth=4', { a: 1 }), { a: 1, max_depth: 4 });
    assert.deepEqual(parseParam('max_depth=null'), { max_depth: null });
    assert.deepEqual(parseParam('bootstrap=false'), { bootstrap: false });
    assert.deepEqual(parseParam('criterion=entropy'), { criterion: 'entropy' });
    assert.throws(() => parseParam('=3'), /key=value/);
    assert.deepEqual(parseDatasetRef('iris'), { name: 'iris' });
    assert.deepEqual(parseDatasetRef('wine:12'), { name: 'wine', version: 12 });
  });
});

void describe('ONNX export check', () => {
  const raw: Matrix = { rows: 4, cols: 2, values: Float64Array.from([0.1, 1, 0.2, 2, 0.3, 3, 0.123456789, 4]) };
  const pre = fitPreprocessing(
    [
      { name: 'a', kind: 'numeric', values: Float64Array.from([0.1, 0.2, 0.3, 0.4]) },
      { name: 'b', kind: 'numeric', values: Float64Array.from([1, 2, 3, 4]) },
    ],
    { forLinear: true },
  );
  const model = (w: number): LinearModel => ({
    kind: 'linear',
    task: 'classification',
    nFeatures: 2,
    nTargets: 1,
    coefficients: Float64Array.from([w, -0.5]),
    intercepts: Float64Array.from([0.2]),
    postTransform: 'logistic',
    nClasses: 2,
  });

  void test('agrees with the model it was exported from, and catches a model that differs', async () => {
    const bytes = exportModel(model(1.5), pre, { featureNames: ['a', 'b'], classLabels: [0, 1], producerVersion: 'test' });
    const same = await checkExport(onnxRuntime, bytes, model(1.5), pre, raw);
    assert.equal(same.ok, true);
    assert.equal(same.rows, 4);
    assert.ok(same.maxAbsDiff < 1e-6);
    const other = await checkExport(onnxRuntime, bytes, model(1.6), pre, raw);
    assert.equal(other.ok, false);
    assert.equal(other.firstMismatch?.row, 0);
  });
});
