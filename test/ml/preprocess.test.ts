import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRaw, featureCount, featureNames, fitPreprocessing, isIdentity, transform, transformColumns } from '../../src/ml/preprocess.ts';
import type { RawColumn } from '../../src/ml/preprocess.ts';

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

const columns: RawColumn[] = [
  { name: 'size', kind: 'numeric', values: Float64Array.of(1, 2, Number.NaN, 3) },
  { name: 'color', kind: 'categorical', values: ['b', 'a', 'b', null] },
  { name: 'flat', kind: 'numeric', values: Float64Array.of(5, 5, 5, 5) },
];

void describe('fitPreprocessing', () => {
  void test('linear: mean imputation, standardisation, frequency-ordered one-hot categories', () => {
    const pre = fitPreprocessing(columns, { forLinear: true });
    const [size, color, flat] = pre.columns;
    // mean of {1, 2, 3} = 2; population std = sqrt(2/3)
    assert.equal(size!.fill, 2);
    assert.equal(size!.offset, 2);
    close(size!.scale, 1 / Math.sqrt(2 / 3));
    assert.deepEqual(color!.categories, ['b', 'a']);
    assert.equal(color!.oneHot, true);
    // A constant column keeps scale 1 instead of dividing by zero.
    assert.equal(flat!.scale, 1);
    assert.equal(flat!.offset, 5);
    assert.equal(featureCount(pre), 4);
    assert.deepEqual(featureNames(pre), ['size', 'color=b', 'color=a', 'flat']);
  });

  void test('trees: identity numerics with missing kept, categories as codes', () => {
    const pre = fitPreprocessing(columns, { forLinear: false });
    const size = pre.columns[0]!;
    assert.ok(Number.isNaN(size.fill));
    assert.equal(size.offset, 0);
    assert.equal(size.scale, 1);
    assert.equal(pre.columns[1]!.oneHot, false);
    assert.equal(featureCount(pre), 3);
  });

  void test('categories: frequency desc, then label; missing and empty are not categories', () => {
    const pre = fitPreprocessing([{ name: 'c', kind: 'categorical', values: ['y', 'x', 'z', 'z', '', null, 'w', 'w'] }], { forLinear: false });
    assert.deepEqual(pre.columns[0]!.categories, ['w', 'z', 'x', 'y']);
  });

  void test('rows: statistics and categories come from those rows only', () => {
    const pre = fitPreprocessing(columns, { forLinear: true, rows: Int32Array.of(3, 0) });
    // size over rows 3 and 0: {3, 1}, mean 2, population std 1; color: only 'b' (row 3 is missing).
    assert.deepEqual([pre.columns[0]!.fill, pre.columns[0]!.scale], [2, 1]);
    assert.deepEqual(pre.columns[1]!.categories, ['b']);
    assert.throws(() => fitPreprocessing(columns, { forLinear: true, rows: Int32Array.of(4) }), RangeError);
  });

  void test('all-missing numeric column imputes 0 for linear models', () => {
    const pre = fitPreprocessing([{ name: 'n', kind: 'numeric', values: Float64Array.of(Number.NaN, Number.NaN) }], { forLinear: true });
    assert.deepEqual([pre.columns[0]!.fill, pre.columns[0]!.offset, pre.columns[0]!.scale], [0, 0, 1]);
  });
});

void describe('encodeRaw', () => {
  void test('codes categories by name match, NaN for missing and unseen, ignores extra columns', () => {
    const pre = fitPreprocessing(columns, { forLinear: true });
    const raw = encodeRaw(pre, [
      { name: 'flat', kind: 'numeric', values: ['5', ''] },
      { name: 'target', kind: 'numeric', values: Float64Array.of(0, 1) },
      { name: 'color', kind: 'categorical', values: ['a', 'zzz'] },
      { name: 'size', kind: 'numeric', values: Float64Array.of(4, Number.NaN) },
    ]);
    assert.equal(raw.rows, 2);
    assert.equal(raw.cols, 3);
    assert.deepEqual(Array.from(raw.values), [4, 1, 5, Number.NaN, Number.NaN, Number.NaN]);
    assert.throws(() => encodeRaw(pre, [columns[0]!]), /color/);
  });

  void test('rows: the given rows in the given order, as encoding every row and taking them would', () => {
    const pre = fitPreprocessing(columns, { forLinear: false });
    const all = encodeRaw(pre, columns);
    const some = encodeRaw(pre, columns, Int32Array.of(2, 0, 2));
    assert.equal(some.rows, 3);
    assert.deepEqual(Array.from(some.values), [...all.values.subarray(6, 9), ...all.values.subarray(0, 3), ...all.values.subarray(6, 9)]);
    assert.throws(() => encodeRaw(pre, columns, Int32Array.of(-1)), RangeError);
  });
});

void describe('transform', () => {
  void test('linear: imputed standardised numerics and one-hot blocks in column order', () => {
    const pre = fitPreprocessing(columns, { forLinear: true });
    const x = transformColumns(pre, columns);
    const s = 1 / Math.sqrt(2 / 3);
    const expected = [
      [-1 * s, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 1, 0, 0], // missing size -> mean -> 0
      [1 * s, 0, 0, 0], // missing color -> all-zero block
    ].flat();
    assert.equal(x.cols, 4);
    expected.forEach((v, i) => close(x.values[i]!, v));
  });

  void test('trees: raw values and codes pass through, NaN stays NaN, and the raw matrix is returned as it is', () => {
    const pre = fitPreprocessing(columns, { forLinear: false });
    assert.ok(isIdentity(pre));
    const raw = encodeRaw(pre, columns);
    const x = transform(pre, raw);
    assert.equal(x, raw);
    assert.deepEqual(Array.from(x.values), [1, 0, 5, 2, 1, 5, Number.NaN, 0, 5, 3, Number.NaN, 5]);
    assert.ok(!isIdentity(fitPreprocessing(columns, { forLinear: true })));
  });

  void test('one-hot ignores codes that are not an in-range integer', () => {
    const pre = fitPreprocessing([{ name: 'c', kind: 'categorical', values: ['p', 'q'] }], { forLinear: true });
    const x = transform(pre, { rows: 4, cols: 1, values: Float64Array.of(1, 2, 0.5, -1) });
    assert.deepEqual(Array.from(x.values), [0, 1, 0, 0, 0, 0, 0, 0]);
    assert.throws(() => transform(pre, { rows: 1, cols: 2, values: Float64Array.of(0, 0) }), RangeError);
  });
});
