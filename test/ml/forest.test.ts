import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fitRandomForest } from '../../src/ml/forest.ts';
import { predictTrees } from '../../src/ml/predict.ts';
import { createRng } from '../../src/util/random.ts';
import type { TrainingData, TreeEnsembleModel } from '../../src/ml/types.ts';

const shared = path.resolve(import.meta.dirname, '../../../shared');

/** Two noisy blobs in 5 dimensions plus a NaN-riddled column. */
function blobs(n: number, seed: number): TrainingData {
  const rng = createRng(seed);
  const p = 5;
  const values = new Float64Array(n * p);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    y[i] = c;
    for (let j = 0; j < p; j++) values[i * p + j] = rng.normal() + (j < 2 ? 2 * c : 0);
    if (rng.next() < 0.2) values[i * p + 4] = NaN;
  }
  return { x: { rows: n, cols: p, values }, y, task: 'classification', nClasses: 2 };
}

function assertSameModel(a: TreeEnsembleModel, b: TreeEnsembleModel): void {
  assert.equal(a.trees.length, b.trees.length);
  a.trees.forEach((t, k) => {
    const u = b.trees[k]!;
    assert.deepEqual(t.feature, u.feature);
    assert.deepEqual(t.threshold, u.threshold);
    assert.deepEqual(t.left, u.left);
    assert.deepEqual(t.missingGoesLeft, u.missingGoesLeft);
    assert.deepEqual(t.value, u.value);
    assert.deepEqual(t.cover, u.cover);
  });
}

void describe('fitRandomForest', () => {
  const data = blobs(300, 1);

  void test('is deterministic for a seed, inline or on 1 or 2 workers', async () => {
    const inline = await fitRandomForest(data, { n_estimators: 12, seed: 5, n_jobs: 1 });
    const one = await fitRandomForest(data, { n_estimators: 12, seed: 5, n_jobs: 1, parallel_threshold: 0 });
    const two = await fitRandomForest(data, { n_estimators: 12, seed: 5, n_jobs: 2, parallel_threshold: 0 });
    assertSameModel(inline, one);
    assertSameModel(inline, two);
    const other = await fitRandomForest(data, { n_estimators: 12, seed: 6, n_jobs: 1 });
    assert.notDeepEqual(other.trees[0]!.threshold, inline.trees[0]!.threshold);
  });

  void test('onTree hears every finished tree with the count so far; a throw from it stops the fit, inline and on workers', async () => {
    for (const threads of [{ n_jobs: 1 }, { n_jobs: 2, parallel_threshold: 0 }]) {
      const heard: number[] = [];
      const nodes: number[] = [];
      const model = await fitRandomForest(data, { n_estimators: 6, seed: 3, ...threads }, undefined, undefined, (tree, finished) => {
        heard.push(finished);
        nodes.push(tree.left.length);
      });
      assert.deepEqual(heard, [1, 2, 3, 4, 5, 6], JSON.stringify(threads));
      // The trees it heard of are the model's (in the order they finished).
      assert.deepEqual([...nodes].sort((a, b) => a - b), model.trees.map((t) => t.left.length).sort((a, b) => a - b));

      let calls = 0;
      await assert.rejects(
        fitRandomForest(data, { n_estimators: 40, seed: 3, ...threads }, undefined, undefined, (_tree, finished) => {
          calls++;
          if (finished === 2) throw new Error('too large');
        }),
        /too large/,
      );
      assert.equal(calls, 2, JSON.stringify(threads));
    }
  });

  void test('classification: averaged probability leaves, bootstrap covers, sensible accuracy', async () => {
    const progress: number[] = [];
    const model = await fitRandomForest(data, { n_estimators: 20, seed: 0 }, (f) => progress.push(f));
    assert.equal(model.aggregate, 'average');
    assert.equal(model.postTransform, 'none');
    assert.equal(model.nOutputs, 2);
    assert.equal(progress.at(-1), 1);
    for (const tree of model.trees) {
      assert.equal(tree.cover[0], 300);
      for (let i = 0; i < tree.left.length; i++) {
        assert.ok(Math.abs(tree.value[2 * i]! + tree.value[2 * i + 1]! - 1) < 1e-12);
        if (tree.left[i] !== -1) assert.equal(tree.cover[i], tree.cover[tree.left[i]!]! + tree.cover[tree.right[i]!]!);
      }
    }
    const test = blobs(200, 2);
    const proba = predictTrees(model, test.x).probabilities!;
    let correct = 0;
    for (let i = 0; i < 200; i++) if ((proba[2 * i + 1]! > 0.5 ? 1 : 0) === test.y[i]) correct++;
    assert.ok(correct / 200 > 0.85, `accuracy ${correct / 200}`);
  });

  void test('regression without bootstrap fits the training data closely', async () => {
    const rng = createRng(4);
    const n = 200;
    const values = Float64Array.from({ length: n * 3 }, () => rng.next());
    const y = Float64Array.from({ length: n }, (_, i) => 3 * values[i * 3]! - 2 * values[i * 3 + 1]!);
    const reg: TrainingData = { x: { rows: n, cols: 3, values }, y, task: 'regression', nClasses: 0 };
    const model = await fitRandomForest(reg, { n_estimators: 5, bootstrap: false });
    // All features per split (regression default) and no bootstrap: every tree is fully grown on all rows.
    const pred = predictTrees(model, { rows: n, cols: 3, values: values.map((v) => Math.fround(v)) }).values!;
    for (let i = 0; i < n; i++) assert.ok(Math.abs(pred[i]! - y[i]!) < 1e-9);
    assert.equal(model.trees[0]!.cover[0], n);
  });

  void test('breast cancer accuracy', { skip: !existsSync(path.join(shared, 'datasets/breast_cancer.csv')) }, async () => {
    const lines = readFileSync(path.join(shared, 'datasets/breast_cancer.csv'), 'utf8').trim().split('\n').slice(1);
    const rows = lines.map((l) => l.split(',').map(Number));
    const p = rows[0]!.length - 1;
    const split = (keep: (i: number) => boolean): TrainingData => {
      const sel = rows.filter((_, i) => keep(i));
      return {
        x: { rows: sel.length, cols: p, values: Float64Array.from(sel.flatMap((r) => r.slice(0, p))) },
        y: Float64Array.from(sel, (r) => r[p]!),
        task: 'classification',
        nClasses: 2,
      };
    };
    const train = split((i) => i % 5 !== 0);
    const test = split((i) => i % 5 === 0);
    const model = await fitRandomForest(train, { n_estimators: 30 });
    const proba = predictTrees(model, test.x).probabilities!;
    let correct = 0;
    for (let i = 0; i < test.x.rows; i++) if ((proba[2 * i + 1]! > 0.5 ? 1 : 0) === test.y[i]) correct++;
    assert.ok(correct / test.x.rows > 0.9);
  });
});
