/**
 * Seeded train/test splits (plain and stratified) and row selection helpers.
 * Index sets are returned sorted ascending: the trainers do not depend on row order, and sorted
 * indices keep row copies cache-friendly and make splits easy to compare across runs.
 */
import { createRng } from '../util/random.ts';
import type { Matrix, TrainingData } from './types.ts';

/** Options of {@link trainTestSplit}. */
export interface SplitOptions {
  /**
   * Size of the test set: a fraction in (0, 1) of the rows (rounded up, as scikit-learn does), or
   * an integer count >= 1.
   */
  readonly testSize: number;
  /** Seed of the shuffle; the same seed and input always give the same split. */
  readonly seed: number;
  /**
   * Class label of every row. When given, each class keeps (as nearly as integers allow) its share
   * of rows in both sets.
   */
  readonly stratify?: Float64Array | undefined;
}

/** Row indices of the two sets, each sorted ascending. */
export interface SplitIndices {
  readonly train: Int32Array;
  readonly test: Int32Array;
}

/**
 * Number of test rows for `n` rows and a `testSize` given as a fraction or a count.
 * @throws RangeError when either set would be empty or `testSize` is not a valid size.
 */
export function testCount(n: number, testSize: number): number {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`cannot split ${n} rows into train and test sets`);
  let nTest: number;
  if (testSize > 0 && testSize < 1) nTest = Math.ceil(testSize * n);
  else if (Number.isInteger(testSize) && testSize >= 1) nTest = testSize;
  else throw new RangeError(`testSize must be a fraction in (0, 1) or a positive integer count, got ${testSize}`);
  if (nTest >= n) throw new RangeError(`testSize ${testSize} leaves no training rows out of ${n}`);
  return nTest;
}

/**
 * Splits row indices `0..n-1` into a training and a test set at random (seeded).
 *
 * Stratified splits allocate test rows per class by largest remainder: each class first gets
 * `floor(count * nTest / n)` test rows, then the rows still missing go to the classes with the
 * largest fractional parts (ties to the larger class, then the smaller label), so the total is
 * exactly `nTest` and every class's share is within one row of proportional.
 */
export function trainTestSplit(n: number, options: SplitOptions): SplitIndices {
  const nTest = testCount(n, options.testSize);
  const rng = createRng(options.seed);
  const isTest = new Uint8Array(n);

  if (options.stratify === undefined) {
    const order = identity(n);
    rng.shuffleInPlace(order);
    for (let i = 0; i < nTest; i++) isTest[order[i]!] = 1;
  } else {
    const labels = options.stratify;
    if (labels.length !== n) throw new RangeError(`stratify has ${labels.length} labels for ${n} rows`);
    // Group rows by label; labels are sorted so the allocation does not depend on row order.
    const groups = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const label = labels[i]!;
      const g = groups.get(label);
      if (g === undefined) groups.set(label, [i]);
      else g.push(i);
    }
    const keys = [...groups.keys()].sort((a, b) => a - b);
    const counts = keys.map((k) => groups.get(k)!.length);
    const quotas = counts.map((c) => Math.floor((c * nTest) / n));
    let missing = nTest - quotas.reduce((s, q) => s + q, 0);
    const byRemainder = keys
      .map((_, k) => k)
      .sort((a, b) => {
        const ra = (counts[a]! * nTest) % n;
        const rb = (counts[b]! * nTest) % n;
        return rb - ra || counts[b]! - counts[a]! || a - b;
      });
    for (const k of byRemainder) {
      if (missing === 0) break;
      if (quotas[k]! < counts[k]!) {
        quotas[k]! += 1;
        missing--;
      }
    }
    keys.forEach((key, k) => {
      const members = Int32Array.from(groups.get(key)!);
      rng.shuffleInPlace(members);
      const q = quotas[k]!;
      for (let i = 0; i < q; i++) isTest[members[i]!] = 1;
    });
  }

  const train = new Int32Array(n - nTest);
  const test = new Int32Array(nTest);
  let a = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    if (isTest[i] === 1) test[b++] = i;
    else train[a++] = i;
  }
  return { train, test };
}

/** Copies the rows `idx` (in that order) of `m` into a new matrix. */
export function takeRows(m: Matrix, idx: Int32Array): Matrix {
  const cols = m.cols;
  const out = new Float64Array(idx.length * cols);
  for (let r = 0; r < idx.length; r++) {
    const src = idx[r]!;
    if (src < 0 || src >= m.rows) throw new RangeError(`row index ${src} out of range [0, ${m.rows})`);
    out.set(m.values.subarray(src * cols, src * cols + cols), r * cols);
  }
  return { rows: idx.length, cols, values: out };
}

/** Copies the entries `idx` (in that order) of `y` into a new array. */
export function takeValues(y: Float64Array, idx: Int32Array): Float64Array {
  const out = new Float64Array(idx.length);
  for (let r = 0; r < idx.length; r++) {
    const src = idx[r]!;
    if (src < 0 || src >= y.length) throw new RangeError(`index ${src} out of range [0, ${y.length})`);
    out[r] = y[src]!;
  }
  return out;
}

/** Selects the rows `idx` of a training set (features and targets). */
export function takeTrainingData(data: TrainingData, idx: Int32Array): TrainingData {
  return { x: takeRows(data.x, idx), y: takeValues(data.y, idx), task: data.task, nClasses: data.nClasses };
}

/** Options of {@link validationSplit}. */
export interface ValidationSplitOptions {
  /** Fraction in (0, 1) or row count of the held-out set. */
  readonly testSize: number;
  readonly seed: number;
  /** Keep class proportions (classification only). Default: true for classification. */
  readonly stratify?: boolean | undefined;
}

/** A training set split in two, with the row indices each part came from. */
export interface ValidationSplit extends SplitIndices {
  readonly trainData: TrainingData;
  readonly testData: TrainingData;
}

/**
 * Splits a training set into a fitting part and a held-out part (the hold-out evaluation of a
 * training job, or the early-stopping set of boosting). Stratifies by class for classification
 * unless `stratify: false`.
 */
export function validationSplit(data: TrainingData, options: ValidationSplitOptions): ValidationSplit {
  if (data.x.rows !== data.y.length) {
    throw new RangeError(`x has ${data.x.rows} rows but y has ${data.y.length} values`);
  }
  const stratify = options.stratify ?? data.task === 'classification';
  const { train, test } = trainTestSplit(data.x.rows, {
    testSize: options.testSize,
    seed: options.seed,
    stratify: stratify && data.task === 'classification' ? data.y : undefined,
  });
  return { train, test, trainData: takeTrainingData(data, train), testData: takeTrainingData(data, test) };
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}
