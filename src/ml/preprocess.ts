/**
 * From raw table columns to the numeric features a model learns from.
 *
 * Two stages, kept apart because they run in different places:
 * 1. {@link encodeRaw}: table columns -> the raw matrix `[N, columns.length]` (numbers as they are,
 *    categories as their code, NaN for missing or unseen). This is the model's input at serving
 *    time and the input of the exported ONNX graph.
 * 2. {@link transform}: raw matrix -> feature matrix. The exported ONNX graph reproduces this stage
 *    in-graph, so its order is a contract. For each column, in `pre.columns` order:
 *    - numeric: one feature `((isNaN(v) ? fill : v) - offset) * scale`; when `fill` is NaN a missing
 *      value stays NaN (tree models route it with `missingGoesLeft`).
 *    - categorical with `oneHot`: `categories.length` features, feature `k` is 1 when the code
 *      equals `k` and 0 otherwise (so a NaN or unknown code gives all zeros).
 *    - categorical without `oneHot`: one feature, the code itself (NaN stays NaN).
 */
import type { ColumnTransform, Matrix, Preprocessing } from './types.ts';

/**
 * One column of a table. Numeric columns hold numbers with NaN for missing (strings are parsed);
 * categorical columns hold labels with `null` (or the empty string) for missing (numbers are turned
 * into their decimal text).
 */
export interface RawColumn {
  readonly name: string;
  readonly kind: 'numeric' | 'categorical';
  readonly values: Float64Array | readonly (string | null)[];
}

/** Options of {@link fitPreprocessing}. */
export interface PreprocessOptions {
  /**
   * Preparing for a linear model: impute numeric columns with the training mean, standardise them,
   * and one-hot encode categories. Otherwise (trees) numbers pass through untouched with missing
   * values kept, and categories stay codes.
   */
  readonly forLinear: boolean;
  /** Indices of the rows to learn from (the training rows of a split); default every row. */
  readonly rows?: Int32Array;
}

/**
 * Learns the per-column transforms from training columns.
 *
 * Numeric, linear: `fill` = mean of the present values, `offset` = that mean, `scale` = 1 / population
 * standard deviation (as scikit-learn's StandardScaler); a constant column (std below 1e-12 of its
 * magnitude, so that rounding noise does not blow up) gets scale 1; an all-missing column gets fill
 * 0, offset 0, scale 1. Numeric, trees: fill NaN, offset 0, scale 1.
 * Categorical: categories ordered by descending frequency, ties by label (code-unit order), so the
 * most common category has code 0; missing values are not a category.
 */
export function fitPreprocessing(columns: readonly RawColumn[], options: PreprocessOptions): Preprocessing {
  const out: ColumnTransform[] = [];
  const rows = options.rows;
  for (const col of columns) {
    if (rows !== undefined) checkRows(rows, col.values.length, col.name);
    if (col.kind === 'numeric') {
      if (!options.forLinear) {
        out.push({ name: col.name, kind: 'numeric', fill: Number.NaN, offset: 0, scale: 1, categories: [], oneHot: false });
        continue;
      }
      const v = numericValues(col);
      const n = rows === undefined ? v.length : rows.length;
      let count = 0;
      let sum = 0;
      for (let k = 0; k < n; k++) {
        const x = v[rows === undefined ? k : rows[k]!]!;
        if (!Number.isNaN(x)) {
          sum += x;
          count++;
        }
      }
      if (count === 0) {
        out.push({ name: col.name, kind: 'numeric', fill: 0, offset: 0, scale: 1, categories: [], oneHot: false });
        continue;
      }
      const mean = sum / count;
      // Two-pass variance: exact for constant columns and free of the E[x^2]-E[x]^2 cancellation.
      let ss = 0;
      for (let k = 0; k < n; k++) {
        const x = v[rows === undefined ? k : rows[k]!]!;
        if (!Number.isNaN(x)) ss += (x - mean) * (x - mean);
      }
      const std = Math.sqrt(ss / count);
      const scale = std > 1e-12 * Math.max(1, Math.abs(mean)) && Number.isFinite(std) ? 1 / std : 1;
      out.push({ name: col.name, kind: 'numeric', fill: mean, offset: mean, scale, categories: [], oneHot: false });
    } else {
      const labels = categoricalValues(col);
      const freq = new Map<string, number>();
      const n = rows === undefined ? labels.length : rows.length;
      for (let k = 0; k < n; k++) {
        const s = labels[rows === undefined ? k : rows[k]!];
        if (s === null || s === undefined) continue;
        freq.set(s, (freq.get(s) ?? 0) + 1);
      }
      const categories = [...freq.entries()]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .map(([label]) => label);
      out.push({
        name: col.name,
        kind: 'categorical',
        fill: Number.NaN,
        offset: 0,
        scale: 1,
        categories,
        oneHot: options.forLinear,
      });
    }
  }
  return { columns: out };
}

/**
 * Builds the raw model input `[N, pre.columns.length]` from table columns, matched by name (extra
 * columns, such as the target, are ignored): every row, or the rows `rows` in that order (so a
 * split's training and hold-out matrices are built straight from the table, without a copy of it
 * whole). Numeric values are copied; categorical labels become their code in `categories`, NaN
 * when missing or not seen in training.
 * @throws Error when a column of `pre` is absent or the columns differ in length; RangeError for a
 *   row index outside the columns.
 */
export function encodeRaw(pre: Preprocessing, columns: readonly RawColumn[], rows?: Int32Array): Matrix {
  const byName = new Map<string, RawColumn>();
  for (const c of columns) byName.set(c.name, c);
  const cols = pre.columns.length;
  let length = -1;
  for (const t of pre.columns) {
    const c = byName.get(t.name);
    if (c === undefined) throw new Error(`column '${t.name}' is missing`);
    if (length === -1) length = c.values.length;
    else if (c.values.length !== length) {
      throw new Error(`column '${t.name}' has ${c.values.length} values, expected ${length}`);
    }
  }
  if (length === -1) length = 0;
  if (rows !== undefined) checkRows(rows, length, 'the table');
  const n = rows === undefined ? length : rows.length;
  const values = new Float64Array(n * cols);
  pre.columns.forEach((t, j) => {
    const c = byName.get(t.name)!;
    if (t.kind === 'numeric') {
      const v = numericValues(c);
      for (let i = 0; i < n; i++) values[i * cols + j] = v[rows === undefined ? i : rows[i]!]!;
    } else {
      const codes = new Map<string, number>();
      t.categories.forEach((label, k) => codes.set(label, k));
      const labels = categoricalValues(c);
      for (let i = 0; i < n; i++) {
        const s = labels[rows === undefined ? i : rows[i]!];
        values[i * cols + j] = s === null || s === undefined ? Number.NaN : (codes.get(s) ?? Number.NaN);
      }
    }
  });
  return { rows: n, cols, values };
}

/** @throws RangeError when an index of `rows` is outside `[0, length)`. */
function checkRows(rows: Int32Array, length: number, what: string): void {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r < 0 || r >= length) throw new RangeError(`row index ${r} out of range [0, ${length}) of ${what}`);
  }
}

/** Number of model features produced by {@link transform}. */
export function featureCount(pre: Preprocessing): number {
  let n = 0;
  for (const c of pre.columns) n += c.kind === 'categorical' && c.oneHot ? c.categories.length : 1;
  return n;
}

/**
 * Names of the model features in {@link transform} order: the column name, or `name=category` for
 * each one-hot feature.
 */
export function featureNames(pre: Preprocessing): string[] {
  const names: string[] = [];
  for (const c of pre.columns) {
    if (c.kind === 'categorical' && c.oneHot) for (const label of c.categories) names.push(`${c.name}=${label}`);
    else names.push(c.name);
  }
  return names;
}

/**
 * True when {@link transform} changes nothing: every column is numeric with missing values kept
 * (fill NaN), offset 0 and scale 1, or categorical without one-hot (what tree models get).
 */
export function isIdentity(pre: Preprocessing): boolean {
  return pre.columns.every((c) => (c.kind === 'numeric' ? Number.isNaN(c.fill) && c.offset === 0 && c.scale === 1 : !c.oneHot));
}

/**
 * Maps a raw matrix (from {@link encodeRaw}) to the model feature matrix; see the module comment
 * for the exact per-column rule, which the ONNX exporter mirrors. When the preprocessing is the
 * identity ({@link isIdentity}: tree models) the result is `raw` itself, not a copy, so that a
 * million-row training set is held once; neither may be modified afterwards.
 */
export function transform(pre: Preprocessing, raw: Matrix): Matrix {
  const nIn = pre.columns.length;
  if (raw.cols !== nIn) throw new RangeError(`raw matrix has ${raw.cols} columns, preprocessing expects ${nIn}`);
  if (isIdentity(pre)) return raw;
  const nOut = featureCount(pre);
  const rows = raw.rows;
  const src = raw.values;
  const out = new Float64Array(rows * nOut);
  let base = 0;
  for (let j = 0; j < nIn; j++) {
    const t = pre.columns[j]!;
    if (t.kind === 'numeric') {
      const { fill, offset, scale } = t;
      for (let i = 0; i < rows; i++) {
        let v = src[i * nIn + j]!;
        if (Number.isNaN(v)) v = fill;
        out[i * nOut + base] = (v - offset) * scale;
      }
      base += 1;
    } else if (t.oneHot) {
      const k = t.categories.length;
      for (let i = 0; i < rows; i++) {
        const code = src[i * nIn + j]!;
        // Only an exact integer code in range sets a bit; the zero-filled block covers the rest.
        if (Number.isInteger(code) && code >= 0 && code < k) out[i * nOut + base + code] = 1;
      }
      base += k;
    } else {
      for (let i = 0; i < rows; i++) out[i * nOut + base] = src[i * nIn + j]!;
      base += 1;
    }
  }
  return { rows, cols: nOut, values: out };
}

/** Convenience: {@link encodeRaw} then {@link transform}. */
export function transformColumns(pre: Preprocessing, columns: readonly RawColumn[]): Matrix {
  return transform(pre, encodeRaw(pre, columns));
}

function numericValues(col: RawColumn): Float64Array {
  if (col.values instanceof Float64Array) return col.values;
  const src = col.values;
  const v = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const s = src[i];
    v[i] = s === null || s === undefined || s.trim() === '' ? Number.NaN : Number(s);
  }
  return v;
}

function categoricalValues(col: RawColumn): readonly (string | null)[] {
  const src = col.values;
  if (src instanceof Float64Array) {
    const labels: (string | null)[] = new Array<string | null>(src.length);
    for (let i = 0; i < src.length; i++) {
      const x = src[i]!;
      labels[i] = Number.isNaN(x) ? null : String(x);
    }
    return labels;
  }
  // The empty string is how CSV writes a missing cell; treat it as missing, not as a category.
  return src.map((s) => (s === '' ? null : s));
}
