import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FLOAT32_MAX } from '../../src/ml/binning.ts';
import { fitGradientBoosting } from '../../src/ml/gbdt.ts';
import { predictTrees } from '../../src/ml/predict.ts';
import { createRng } from '../../src/util/random.ts';
import type { TrainingData, TreeEnsembleModel } from '../../src/ml/types.ts';

function regression(n: number, seed: number, noise: number): TrainingData {
  const rng = createRng(seed);
  const p = 3;
  const values = new Float64Array(n * p);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) values[i * p + j] = rng.next() * 4 - 2;
    y[i] = Math.sin(values[i * p]!) * 3 + values[i * p + 1]! ** 2 + noise * rng.normal();
  }
  return { x: { rows: n, cols: p, values }, y, task: 'regression', nClasses: 0 };
}

function classification(n: number, k: number, seed: number): TrainingData {
  const rng = createRng(seed);
  const p = 4;
  const values = new Float64Array(n * p);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    y[i] = c;
    for (let j = 0; j < p; j++) values[i * p + j] = rng.normal() + (j === c % p ? 2 : 0);
  }
  return { x: { rows: n, cols: p, values }, y, task: 'classification', nClasses: k };
}

function mse(model: TreeEnsembleModel, data: TrainingData): number {
  const pred = predictTrees(model, data.x).values!;
  let s = 0;
  for (let i = 0; i < data.y.length; i++) s += (pred[i]! - data.y[i]!) ** 2;
  return s / data.y.length;
}

function assertCovers(model: TreeEnsembleModel, n: number): void {
  for (const tree of model.trees) {
    assert.equal(tree.cover[0], n);
    for (let i = 0; i < tree.left.length; i++) {
      if (tree.left[i] === -1) continue;
      assert.equal(tree.cover[i], tree.cover[tree.left[i]!]! + tree.cover[tree.right[i]!]!);
      assert.equal(Math.fround(tree.threshold[i]!), tree.threshold[i]);
    }
  }
}

void describe('fitGradientBoosting', () => {
  void test('regression: baseline is the mean, training loss decreases with iterations', async () => {
    const data = regression(600, 1, 0.1);
    let mean = 0;
    for (const v of data.y) mean += v / data.y.length;
    const losses: number[] = [];
    for (const maxIter of [1, 5, 20, 60]) {
      const model = await fitGradientBoosting(data, { max_iter: maxIter });
      assert.ok(Math.abs(model.baseValues[0]! - mean) < 1e-9);
      assert.equal(model.trees.length, maxIter);
      assert.equal(model.aggregate, 'sum');
      assertCovers(model, 600);
      losses.push(mse(model, data));
    }
    for (let k = 1; k < losses.length; k++) assert.ok(losses[k]! < losses[k - 1]!, `losses ${losses.join(', ')}`);
    assert.ok(losses.at(-1)! < 0.1);
  });

  void test('leaf-wise growth respects max_leaf_nodes, max_depth and min_samples_leaf', async () => {
    const data = regression(600, 2, 0.5);
    const model = await fitGradientBoosting(data, { max_iter: 5, max_leaf_nodes: 8, min_samples_leaf: 25 });
    for (const tree of model.trees) {
      let leaves = 0;
      for (let i = 0; i < tree.left.length; i++) {
        if (tree.left[i] !== -1) continue;
        leaves++;
        assert.ok(tree.cover[i]! >= 25);
      }
      assert.ok(leaves <= 8 && leaves > 1);
    }
    const shallow = await fitGradientBoosting(data, { max_iter: 3, max_leaf_nodes: null, max_depth: 2 });
    for (const tree of shallow.trees) assert.ok(tree.left.length <= 7);
  });

  void test('binary: one logit output, probabilities sum to 1, separates the classes', async () => {
    const data = classification(400, 2, 3);
    const model = await fitGradientBoosting(data, { max_iter: 30 });
    assert.equal(model.nOutputs, 1);
    assert.equal(model.postTransform, 'logistic');
    assert.ok(Math.abs(model.baseValues[0]!) < 1e-9); // balanced classes: log-odds 0
    const proba = predictTrees(model, data.x).probabilities!;
    let correct = 0;
    for (let i = 0; i < 400; i++) {
      assert.ok(Math.abs(proba[2 * i]! + proba[2 * i + 1]! - 1) < 1e-12);
      if ((proba[2 * i + 1]! > 0.5 ? 1 : 0) === data.y[i]) correct++;
    }
    assert.ok(correct / 400 > 0.85);
  });

  void test('multiclass: one tree per class per iteration, softmax probabilities sum to 1', async () => {
    const data = classification(450, 3, 4);
    const model = await fitGradientBoosting(data, { max_iter: 10 });
    assert.equal(model.nOutputs, 3);
    assert.equal(model.trees.length, 30);
    assert.equal(model.postTransform, 'softmax');
    // Tree t writes only to output t % 3.
    model.trees.forEach((tree, t) => {
      for (let i = 0; i < tree.left.length; i++) {
        for (let k = 0; k < 3; k++) if (k !== t % 3) assert.equal(tree.value[i * 3 + k], 0);
      }
    });
    const proba = predictTrees(model, data.x).probabilities!;
    let correct = 0;
    for (let i = 0; i < 450; i++) {
      const row = [proba[3 * i]!, proba[3 * i + 1]!, proba[3 * i + 2]!];
      assert.ok(Math.abs(row[0]! + row[1]! + row[2]! - 1) < 1e-12);
      if (row.indexOf(Math.max(...row)) === data.y[i]) correct++;
    }
    assert.ok(correct / 450 > 0.8);
  });

  void test('learns the direction of missing values', async () => {
    const n = 400;
    const values = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      // Low values and missing values share the target 0; high values 10.
      values[i] = i % 4 === 0 ? NaN : i % 4 === 1 ? 1 : 5;
      y[i] = i % 4 === 2 || i % 4 === 3 ? 10 : 0;
    }
    const model = await fitGradientBoosting({ x: { rows: n, cols: 1, values }, y, task: 'regression', nClasses: 0 }, { max_iter: 50 });
    const root = model.trees[0]!;
    assert.equal(root.threshold[0], 3);
    assert.equal(root.missingGoesLeft[0], 1);
    const pred = predictTrees(model, { rows: 3, cols: 1, values: Float64Array.from([NaN, 1, 5]) }).values!;
    assert.ok(Math.abs(pred[0]!) < 0.1 && Math.abs(pred[1]!) < 0.1 && Math.abs(pred[2]! - 10) < 0.1, `${pred.join(', ')}`);

    // Missingness alone carries the signal: present-left, missing-right split at the largest float32.
    for (let i = 0; i < n; i++) {
      values[i] = i % 2 === 0 ? NaN : i;
      y[i] = i % 2 === 0 ? 1 : 0;
    }
    const m2 = await fitGradientBoosting({ x: { rows: n, cols: 1, values }, y, task: 'regression', nClasses: 0 }, { max_iter: 1 });
    assert.equal(m2.trees[0]!.threshold[0], FLOAT32_MAX);
    assert.equal(m2.trees[0]!.missingGoesLeft[0], 0);
  });

  void test('exported thresholds route float32 inputs exactly as the binned training did', async () => {
    // Many distinct values (quantile bins) and missing values: walking every training row, rounded
    // to float32 as onnxruntime sees it, through each tree must reproduce the training covers.
    const rng = createRng(11);
    const n = 1500;
    const p = 3;
    const values = new Float64Array(n * p);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < p; j++) values[i * p + j] = rng.next() < 0.1 ? NaN : rng.normal() * 1e3 + 1e-3 * rng.next();
      y[i] = (values[i * p]! > 0 ? 1 : 0) + (Number.isNaN(values[i * p + 1]!) ? 2 : 0) + 0.1 * rng.normal();
    }
    const model = await fitGradientBoosting({ x: { rows: n, cols: p, values }, y, task: 'regression', nClasses: 0 }, { max_iter: 10, max_bins: 16 });
    for (const tree of model.trees) {
      const visits = new Float64Array(tree.left.length);
      for (let i = 0; i < n; i++) {
        let node = 0;
        visits[0]!++;
        while (tree.left[node] !== -1) {
          const v = Math.fround(values[i * p + tree.feature[node]!]!);
          const goLeft = Number.isNaN(v) ? tree.missingGoesLeft[node] === 1 : v <= tree.threshold[node]!;
          node = goLeft ? tree.left[node]! : tree.right[node]!;
          visits[node]!++;
        }
      }
      assert.deepEqual(visits, tree.cover);
    }
  });

  void test('early stopping stops on noise and is on by default only for large data', async () => {
    const noise = regression(2000, 5, 5);
    const rng = createRng(9);
    for (let i = 0; i < noise.y.length; i++) noise.y[i] = rng.normal();
    const stopped = await fitGradientBoosting(noise, { early_stopping: true, max_iter: 200, n_iter_no_change: 5 });
    assert.ok(stopped.trees.length < 200, `${stopped.trees.length} trees`);
    assertCovers(stopped, 1800);
    const notStopped = await fitGradientBoosting(noise, { max_iter: 15 });
    assert.equal(notStopped.trees.length, 15);
  });
});
