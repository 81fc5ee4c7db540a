import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../../src/util/random.ts';
import { takeRows, takeValues, testCount, trainTestSplit, validationSplit } from '../../src/ml/split.ts';
import type { TrainingData } from '../../src/ml/types.ts';

function labelsOf(counts: number[]): Float64Array {
  const out: number[] = [];
  counts.forEach((c, k) => {
    for (let i = 0; i < c; i++) out.push(k);
  });
  // Interleave so classes are not contiguous.
  const rng = createRng(99);
  const idx = Int32Array.from(out, (_, i) => i);
  rng.shuffleInPlace(idx);
  return Float64Array.from(idx, (i) => out[i]!);
}

function countBy(labels: Float64Array, idx: Int32Array, nClasses: number): number[] {
  const c = new Array<number>(nClasses).fill(0);
  for (const i of idx) c[labels[i]!]! += 1;
  return c;
}

void describe('createRng', () => {
  void test('is deterministic per seed and seeds give different streams', () => {
    const a = createRng(7);
    const b = createRng(7);
    const c = createRng(8);
    const sa = Array.from({ length: 5 }, () => a.next());
    assert.deepEqual(sa, Array.from({ length: 5 }, () => b.next()));
    assert.notDeepEqual(sa, Array.from({ length: 5 }, () => c.next()));
  });

  void test('next in [0,1), nextInt in range and roughly uniform, normal has mean 0 and variance 1', () => {
    const r = createRng(1);
    const hist = new Array<number>(5).fill(0);
    for (let i = 0; i < 50_000; i++) {
      const u = r.next();
      assert.ok(u >= 0 && u < 1);
      hist[r.nextInt(5)]! += 1;
    }
    for (const h of hist) assert.ok(Math.abs(h - 10_000) < 500, `bucket ${h}`);
    let s = 0;
    let s2 = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      s += z;
      s2 += z * z;
    }
    assert.ok(Math.abs(s / n) < 0.03);
    assert.ok(Math.abs(s2 / n - 1) < 0.03);
    assert.throws(() => r.nextInt(0), RangeError);
  });

  void test('shuffleInPlace permutes', () => {
    const a = Int32Array.from({ length: 100 }, (_, i) => i);
    createRng(3).shuffleInPlace(a);
    assert.deepEqual(Array.from(a).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
    assert.notDeepEqual(Array.from(a), Array.from({ length: 100 }, (_, i) => i));
  });
});

void describe('trainTestSplit', () => {
  void test('sizes: fractions round up, counts are exact, invalid sizes throw', () => {
    assert.equal(testCount(10, 0.25), 3);
    assert.equal(testCount(10, 4), 4);
    assert.throws(() => testCount(10, 10), RangeError);
    assert.throws(() => testCount(10, 0), RangeError);
    assert.throws(() => testCount(10, 1.5), RangeError);
    assert.throws(() => testCount(1, 0.5), RangeError);
  });

  void test('partitions all rows into sorted, disjoint sets, deterministically per seed', () => {
    const s1 = trainTestSplit(50, { testSize: 0.2, seed: 42 });
    const s2 = trainTestSplit(50, { testSize: 0.2, seed: 42 });
    const s3 = trainTestSplit(50, { testSize: 0.2, seed: 43 });
    assert.equal(s1.test.length, 10);
    assert.equal(s1.train.length, 40);
    assert.deepEqual(s1, s2);
    assert.notDeepEqual(Array.from(s1.test), Array.from(s3.test));
    const all = [...s1.train, ...s1.test].sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 50 }, (_, i) => i));
    for (const set of [s1.train, s1.test]) for (let i = 1; i < set.length; i++) assert.ok(set[i - 1]! < set[i]!);
  });

  void test('stratified split keeps class proportions exactly when they divide evenly', () => {
    const labels = labelsOf([60, 30, 10]);
    const { train, test } = trainTestSplit(100, { testSize: 0.2, seed: 5, stratify: labels });
    assert.deepEqual(countBy(labels, test, 3), [12, 6, 2]);
    assert.deepEqual(countBy(labels, train, 3), [48, 24, 8]);
  });

  void test('stratified remainders go to the largest fractional parts, ties to the smaller label', () => {
    // 13 rows, 4 test rows: quotas 20/13 -> 1, 20/13 -> 1, 12/13 -> 0; two rows left go to class 2
    // (remainder 12/13) then class 0 (remainder 7/13, tied with class 1 in size and remainder).
    const labels = labelsOf([5, 5, 3]);
    const { test } = trainTestSplit(13, { testSize: 0.3, seed: 1, stratify: labels });
    assert.deepEqual(countBy(labels, test, 3), [2, 1, 1]);
  });

  void test('stratified split is deterministic and rejects mismatched labels', () => {
    const labels = labelsOf([20, 20]);
    assert.deepEqual(trainTestSplit(40, { testSize: 0.25, seed: 9, stratify: labels }), trainTestSplit(40, { testSize: 0.25, seed: 9, stratify: labels }));
    assert.throws(() => trainTestSplit(39, { testSize: 0.25, seed: 9, stratify: labels }), RangeError);
  });
});

void describe('row selection', () => {
  const m = { rows: 3, cols: 2, values: Float64Array.of(1, 2, 3, 4, 5, 6) };
  void test('takeRows and takeValues copy rows in index order', () => {
    const t = takeRows(m, Int32Array.of(2, 0));
    assert.equal(t.rows, 2);
    assert.deepEqual(Array.from(t.values), [5, 6, 1, 2]);
    assert.deepEqual(Array.from(takeValues(Float64Array.of(7, 8, 9), Int32Array.of(1, 1))), [8, 8]);
    assert.throws(() => takeRows(m, Int32Array.of(3)), RangeError);
  });

  void test('validationSplit stratifies classification data by default and keeps rows aligned', () => {
    const y = labelsOf([30, 10]);
    const x = { rows: 40, cols: 1, values: Float64Array.from(y, (v, i) => i * 10 + v) };
    const data: TrainingData = { x, y, task: 'classification', nClasses: 2 };
    const split = validationSplit(data, { testSize: 0.25, seed: 3 });
    assert.deepEqual(countBy(y, split.test, 2), [8, 2]);
    assert.equal(split.testData.x.rows, 10);
    split.test.forEach((row, i) => {
      assert.equal(split.testData.x.values[i], row * 10 + y[row]!);
      assert.equal(split.testData.y[i], y[row]);
    });
  });
});
