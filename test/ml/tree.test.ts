import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { argsortF32, float32Threshold, fitBinMapper, applyBinMapper, FLOAT32_MAX } from '../../src/ml/binning.ts';
import { sortFloat32 } from '../../src/util/stats.ts';
import { predictTrees } from '../../src/ml/predict.ts';
import { createRng } from '../../src/util/random.ts';
import { fitDecisionTree, resolveMaxFeatures } from '../../src/ml/tree.ts';
import type { Tree, TrainingData } from '../../src/ml/types.ts';

function data1d(x: number[], y: number[], task: 'classification' | 'regression', nClasses = 0): TrainingData {
  return { x: { rows: x.length, cols: 1, values: Float64Array.from(x) }, y: Float64Array.from(y), task, nClasses };
}

/** Checks cover bookkeeping: every internal node's cover is the sum of its children's. */
function assertCoverConsistent(tree: Tree): void {
  for (let i = 0; i < tree.left.length; i++) {
    const l = tree.left[i]!;
    if (l === -1) continue;
    assert.equal(tree.cover[i], tree.cover[l]! + tree.cover[tree.right[i]!]!);
  }
}

void describe('float32 helpers', () => {
  void test('threshold lies in [a, b) and is float32', () => {
    const a = Math.fround(0.1);
    const next = new Float32Array([a]);
    const u = new Uint32Array(next.buffer);
    u[0]! += 1;
    const b = next[0]!;
    for (const [lo, hi] of [[a, b], [1, 2], [-3.5, 7], [a, Math.fround(0.3)]] as const) {
      const t = float32Threshold(lo, hi);
      assert.equal(Math.fround(t), t);
      assert.ok(t >= lo && t < hi, `${t} in [${lo}, ${hi})`);
    }
    assert.equal(float32Threshold(1, 2), 1.5);
  });

  void test('argsort puts NaN last and sorts the rest', () => {
    const col = Float32Array.from([3, NaN, -1, 2, NaN, -5, 0]);
    assert.deepEqual([...argsortF32(col)], [5, 2, 6, 3, 0, 1, 4]);
  });

  void test('the radix sort orders float32 values as Float32Array.prototype.sort does', () => {
    const rng = createRng(3);
    for (const n of [0, 1, 7, 5000]) {
      const values = Float32Array.from({ length: n }, () => {
        const u = rng.next();
        if (u < 0.05) return 0;
        if (u < 0.1) return -0;
        if (u < 0.15) return u < 0.125 ? Infinity : -Infinity;
        if (u < 0.3) return Math.round(rng.normal() * 5);
        if (u < 0.35) return 1e-42 * rng.normal(); // subnormal in float32
        return rng.normal() * 1e6;
      });
      const expected = values.slice().sort();
      const sorted = sortFloat32(values, new Uint32Array(n));
      assert.equal(sorted, values, 'in place');
      for (let i = 0; i < n; i++) assert.ok(Object.is(sorted[i], expected[i]), `n=${n}, position ${i}: ${sorted[i]} vs ${expected[i]}`);
    }
  });

  void test('bin mapper: one bin per distinct value, missing bin, edges between values', () => {
    const xcol = Float32Array.from([1, 2, 2, 3, NaN]);
    const rows = Int32Array.from([0, 1, 2, 3, 4]);
    const mapper = fitBinMapper(xcol, 5, 1, rows, 255);
    assert.deepEqual([...mapper.edges[0]!], [1.5, 2.5]);
    assert.deepEqual([...applyBinMapper(mapper, xcol, 5, rows).bins], [0, 1, 1, 2, 3]);
  });

  void test('binning counts the edges below each value (missing values in the bin after the last)', () => {
    const rng = createRng(8);
    const n = 3000;
    const p = 3;
    // Normal values, few distinct integers, huge magnitudes; some missing and infinite values.
    const xcol = Float32Array.from({ length: n * p }, (_, i) => {
      const u = rng.next();
      if (u < 0.04) return NaN;
      if (u < 0.05) return u < 0.045 ? Infinity : -Infinity;
      const j = Math.floor(i / n);
      return j === 0 ? rng.normal() : j === 1 ? Math.round(rng.normal() * 3) : rng.normal() * 1e30;
    });
    const rows = Int32Array.from({ length: n }, (_, i) => i).filter(() => rng.next() < 0.9);
    const mapper = fitBinMapper(xcol, n, p, rows, 255);
    // Some values exactly on edges, and -0.
    for (let j = 0; j < p; j++) mapper.edges[j]!.slice(0, 40).forEach((e, q) => (xcol[j * n + rows[q]!] = e));
    xcol[rows[50]!] = -0;
    const { bins } = applyBinMapper(mapper, xcol, n, rows);
    for (let j = 0; j < p; j++) {
      const edges = mapper.edges[j]!;
      rows.forEach((i, r) => {
        const v = xcol[j * n + i]!;
        const expected = Number.isNaN(v) ? edges.length + 1 : edges.filter((e) => e < v).length;
        assert.equal(bins[j * rows.length + r], expected, `feature ${j}, row ${i}, value ${v}`);
      });
    }
  });

  void test('bin mapper caps the number of bins with quantiles', () => {
    const n = 1000;
    const xcol = Float32Array.from({ length: n }, (_, i) => i);
    const mapper = fitBinMapper(xcol, n, 1, Int32Array.from({ length: n }, (_, i) => i), 10);
    assert.equal(mapper.nBins[0], 10);
    const counts = new Array<number>(10).fill(0);
    for (const b of applyBinMapper(mapper, xcol, n, Int32Array.from({ length: n }, (_, i) => i)).bins) counts[b]!++;
    for (const c of counts) assert.equal(c, 100);
  });
});

void describe('fitDecisionTree', () => {
  void test('finds a perfectly separating split at the midpoint', async () => {
    const model = await fitDecisionTree(data1d([1, 2, 3, 10, 11, 12], [0, 0, 0, 1, 1, 1], 'classification', 2));
    const tree = model.trees[0]!;
    assert.equal(tree.left.length, 3);
    assert.equal(tree.feature[0], 0);
    assert.equal(tree.threshold[0], 6.5);
    assert.deepEqual([...tree.value.subarray(tree.left[0]! * 2, tree.left[0]! * 2 + 2)], [1, 0]);
    assert.deepEqual([...tree.value.subarray(tree.right[0]! * 2, tree.right[0]! * 2 + 2)], [0, 1]);
    assert.deepEqual([...tree.cover], [6, 3, 3]);
    assert.equal(model.aggregate, 'average');
    assert.equal(model.postTransform, 'none');
    assert.equal(model.nOutputs, 2);
  });

  void test('learns where missing values go', async () => {
    // NaN rows behave like the high class: they must go right.
    let tree = (await fitDecisionTree(data1d([1, 2, 3, NaN, NaN, 10, 11], [0, 0, 0, 1, 1, 1, 1], 'classification', 2))).trees[0]!;
    assert.equal(tree.threshold[0], 6.5);
    assert.equal(tree.missingGoesLeft[0], 0);
    // Now like the low class: left.
    tree = (await fitDecisionTree(data1d([1, 2, 3, NaN, NaN, 10, 11], [0, 0, 0, 0, 0, 1, 1], 'classification', 2))).trees[0]!;
    assert.equal(tree.threshold[0], 6.5);
    assert.equal(tree.missingGoesLeft[0], 1);
    // Only missingness is informative: present-left / missing-right split.
    tree = (await fitDecisionTree(data1d([1, 2, 3, NaN, NaN], [0, 0, 0, 1, 1], 'classification', 2))).trees[0]!;
    assert.equal(tree.threshold[0], FLOAT32_MAX);
    assert.equal(tree.missingGoesLeft[0], 0);
    assert.equal(tree.left.length, 3);
  });

  void test('regression leaves hold the target means', async () => {
    const tree = (await fitDecisionTree(data1d([0, 0, 1, 1], [1, 3, 10, 20], 'regression'))).trees[0]!;
    assert.equal(tree.threshold[0], 0.5);
    assert.equal(tree.value[0], 8.5);
    assert.equal(tree.value[tree.left[0]!], 2);
    assert.equal(tree.value[tree.right[0]!], 15);
  });

  void test('grows to purity on random data, with float32 thresholds and consistent covers', async () => {
    const rng = createRng(7);
    const n = 500;
    const p = 4;
    const values = new Float64Array(n * p);
    for (let i = 0; i < values.length; i++) values[i] = rng.next() * 1000 - 500;
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) y[i] = rng.nextInt(3);
    const data: TrainingData = { x: { rows: n, cols: p, values }, y, task: 'classification', nClasses: 3 };
    for (const criterion of ['gini', 'entropy'] as const) {
      const model = await fitDecisionTree(data, { criterion });
      const tree = model.trees[0]!;
      assert.equal(tree.cover[0], n);
      assertCoverConsistent(tree);
      for (let i = 0; i < tree.left.length; i++) assert.equal(Math.fround(tree.threshold[i]!), tree.threshold[i]);
      // Float32-rounded inputs reproduce the training labels exactly.
      const xr = { rows: n, cols: p, values: values.map((v) => Math.fround(v)) };
      const proba = predictTrees(model, xr).probabilities!;
      for (let i = 0; i < n; i++) assert.equal(proba[i * 3 + y[i]!], 1);
    }
  });

  void test('values equal in float32 are never split apart; float32 routing reproduces covers', async () => {
    const rng = createRng(12);
    const n = 300;
    const values = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      // Groups of values that differ in float64 but round to the same float32.
      const g = rng.nextInt(20);
      values[i] = g === 7 ? NaN : 1 + g * 1e-3 + rng.next() * 1e-9;
      y[i] = rng.normal();
    }
    const tree = (await fitDecisionTree({ x: { rows: n, cols: 1, values }, y, task: 'regression', nClasses: 0 })).trees[0]!;
    const visits = new Float64Array(tree.left.length);
    for (let i = 0; i < n; i++) {
      let node = 0;
      visits[0]!++;
      while (tree.left[node] !== -1) {
        const v = Math.fround(values[i]!);
        node = (Number.isNaN(v) ? tree.missingGoesLeft[node] === 1 : v <= tree.threshold[node]!) ? tree.left[node]! : tree.right[node]!;
        visits[node]!++;
      }
    }
    assert.deepEqual(visits, tree.cover);
    let leaves = 0;
    for (let i = 0; i < tree.left.length; i++) if (tree.left[i] === -1) leaves++;
    assert.ok(leaves <= 20, `${leaves} leaves for 20 float32-distinct groups`);
  });

  void test('respects max_depth and min_samples_leaf', async () => {
    const rng = createRng(3);
    const n = 400;
    const values = Float64Array.from({ length: n * 2 }, () => rng.next());
    const y = Float64Array.from({ length: n }, (_, i) => values[i * 2]! * 10 + rng.normal());
    const data: TrainingData = { x: { rows: n, cols: 2, values }, y, task: 'regression', nClasses: 0 };
    const tree = (await fitDecisionTree(data, { max_depth: 3, min_samples_leaf: 30 })).trees[0]!;
    const depth = (node: number): number => (tree.left[node] === -1 ? 0 : 1 + Math.max(depth(tree.left[node]!), depth(tree.right[node]!)));
    assert.ok(depth(0) <= 3);
    for (let i = 0; i < tree.left.length; i++) if (tree.left[i] === -1) assert.ok(tree.cover[i]! >= 30);
    assertCoverConsistent(tree);
  });

  void test('max_features resolution follows scikit-learn', () => {
    assert.equal(resolveMaxFeatures('sqrt', 30), 5);
    assert.equal(resolveMaxFeatures('log2', 30), 4);
    assert.equal(resolveMaxFeatures(null, 30), 30);
    assert.equal(resolveMaxFeatures(0.5, 30), 15);
    assert.equal(resolveMaxFeatures(1, 30), 30);
    assert.equal(resolveMaxFeatures(7, 30), 7);
    assert.throws(() => resolveMaxFeatures(-1, 30), RangeError);
  });

  void test('rejects bad labels', async () => {
    await assert.rejects(() => fitDecisionTree(data1d([1, 2], [0, 2], 'classification', 2)), RangeError);
  });
});
