/**
 * Float32-aware value handling shared by the tree learners, and the quantile binning used by the
 * histogram gradient booster.
 *
 * Why float32: exported trees are served by onnxruntime's TreeEnsemble operators, which compare a
 * float32 input against a float32 threshold. If training compared float64 values against a float64
 * threshold, a value and a threshold that differ only beyond float32 precision could be routed
 * differently at serving time. So every learner first rounds the features to float32
 * (`Math.fround`, the same rounding the serving side applies to its input tensor), treats two values
 * as distinct only when their float32 roundings differ, and picks thresholds that are themselves
 * float32-representable and lie in `[a, b)` for consecutive distinct float32 values `a < b`. Then
 * `x <= t` gives the same answer in float32 and float64 arithmetic, in training and in serving.
 */

import type { Matrix } from './types.ts';
import { KernelMemory, wasmKernels } from './wasm-kernels.ts';
import { sortFloat32 } from '../util/stats.ts';

/** Largest finite float32. Threshold of a "non-missing left, missing right" split. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * A float32-representable threshold `t` with `a <= t < b`, as close to the midpoint as float32
 * allows. `a < b` must both be float32 values (results of `Math.fround`).
 */
export function float32Threshold(a: number, b: number): number {
  const mid = a + (b - a) / 2;
  let t = Math.fround(mid);
  // Rounding the midpoint can land on b itself when a and b are adjacent float32 values; a is then
  // the only float32 that separates them.
  if (!(t < b) || !(t >= a)) t = a;
  return t;
}

/**
 * The matrix transposed to column-major float32 (`out[j * rows + i]`), values rounded to float32 and
 * `-0` normalised to `0`. Missing values stay NaN.
 */
export function toColumnMajorF32(x: Matrix): Float32Array {
  const { rows, cols, values } = x;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = values[r + j]! + 0;
  }
  return out;
}

const TWO_POW_21 = 2097152;

/**
 * Indices `0..n-1` of `column` sorted by ascending value, NaN last (ties by index).
 *
 * Uses the native numeric sort of a Float64Array over packed keys (an order-preserving 32-bit image
 * of the float32 value times 2^21 plus the index; exact below 2^53), which is several times faster
 * than sorting indices with a comparator. Falls back to a comparator for n >= 2^21.
 */
export function argsortF32(column: Float32Array, out: Int32Array = new Int32Array(column.length)): Int32Array {
  const n = column.length;
  if (n >= TWO_POW_21) {
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => {
      const va = column[a]!;
      const vb = column[b]!;
      if (va !== va) return vb !== vb ? a - b : 1;
      if (vb !== vb) return -1;
      return va - vb || a - b;
    });
    for (let i = 0; i < n; i++) out[i] = idx[i]!;
    return out;
  }
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const keys = new Float64Array(n);
  let k = 0;
  let nanCount = 0;
  for (let i = 0; i < n; i++) {
    const v = column[i]!;
    if (v !== v) {
      nanCount++;
      continue;
    }
    f[0] = v;
    const bits = u[0]!;
    // Flip negatives entirely and set the sign bit of positives: unsigned order = numeric order.
    const key = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
    keys[k++] = key * TWO_POW_21 + i;
  }
  const sorted = keys.subarray(0, k).sort();
  for (let i = 0; i < k; i++) out[i] = sorted[i]! % TWO_POW_21;
  if (nanCount > 0) {
    for (let i = 0; i < n; i++) if (column[i]! !== column[i]!) out[k++] = i;
  }
  return out;
}

/** Features of a sample set mapped to quantile bins, with the real thresholds between bins. */
export interface BinnedData {
  readonly rows: number;
  readonly cols: number;
  /**
   * Column-major bin indices (`bins[j * rows + i]`). Missing values take bin `nBins[j]`, right after
   * the last value bin (at most 255, so every bin fits a byte).
   */
  readonly bins: Uint8Array;
}

/** Bin edges learnt per feature: value `x` falls in bin `b` when `edges[b-1] < x <= edges[b]`. */
export interface BinMapper {
  /** Per feature, ascending float32-representable thresholds; `edges.length + 1` non-missing bins. */
  readonly edges: readonly Float64Array[];
  /** Per feature, number of non-missing bins (`edges.length + 1`). */
  readonly nBins: Int32Array;
}

/**
 * Learns at most `maxBins` (<= 255) non-missing bins per feature from the given rows of a
 * column-major float32 matrix. When a feature has no more distinct values than `maxBins`, every
 * distinct value gets its own bin; otherwise edges follow the quantiles of the (sub)sample, so each
 * bin holds about the same number of samples (a heavy value keeps one bin to itself). Edges are
 * float32 thresholds between consecutive distinct values, so the binning agrees exactly with a
 * `x <= threshold` test on the float32-rounded input.
 *
 * @param rowsUsed indices of the rows to learn from; only the first `subsample` are used, so pass
 *   them in random order when there are more.
 */
export function fitBinMapper(
  xcol: Float32Array,
  nRows: number,
  nCols: number,
  rowsUsed: Int32Array,
  maxBins = 255,
  subsample = 200000,
): BinMapper {
  if (!(Number.isInteger(maxBins) && maxBins >= 2 && maxBins <= 255)) throw new RangeError(`max_bins must be in [2, 255], got ${maxBins}`);
  // Only the set of rows matters (each feature's values get sorted): in index order, the columns
  // are read forwards instead of at random.
  const rows = (rowsUsed.length > subsample ? rowsUsed.slice(0, subsample) : rowsUsed.slice()).sort();
  const edges: Float64Array[] = [];
  const nBins = new Int32Array(nCols);
  const buf = new Float32Array(rows.length);
  const sortScratch = new Uint32Array(rows.length);
  const distinct = new Float32Array(rows.length);
  const counts = new Int32Array(rows.length);
  for (let j = 0; j < nCols; j++) {
    const base = j * nRows;
    let m = 0;
    for (let r = 0; r < rows.length; r++) {
      const v = xcol[base + rows[r]!]!;
      if (v === v) buf[m++] = v;
    }
    const sorted = sortFloat32(buf.subarray(0, m), sortScratch);
    // Distinct values and their counts, compacted into the typed scratch arrays.
    let nd = 0;
    for (let i = 0; i < m; i++) {
      const v = sorted[i]!;
      if (nd > 0 && distinct[nd - 1] === v) counts[nd - 1]!++;
      else {
        distinct[nd] = v;
        counts[nd++] = 1;
      }
    }
    const e: number[] = [];
    if (nd <= maxBins) {
      for (let d = 0; d + 1 < nd; d++) e.push(float32Threshold(distinct[d]!, distinct[d + 1]!));
    } else {
      // Close a bin whenever the cumulative count reaches the next of the maxBins - 1 quantiles.
      let target = 1;
      let cum = 0;
      for (let d = 0; d + 1 < nd && target < maxBins; d++) {
        cum += counts[d]!;
        if (cum >= (target * m) / maxBins) {
          e.push(float32Threshold(distinct[d]!, distinct[d + 1]!));
          while (target < maxBins && cum >= (target * m) / maxBins) target++;
        }
      }
    }
    edges.push(Float64Array.from(e));
    nBins[j] = e.length + 1;
  }
  return { edges, nBins };
}

/**
 * Maps rows of a column-major float32 matrix to bins: a search over each feature's edges, in
 * WebAssembly (`binValues` of `wasm-kernels.ts`, about four times as fast as the same search in
 * JavaScript, which V8 compiles to unpredictable branches).
 * @param rowsUsed which rows, in output order.
 * @param bins where to write the bins (`rowsUsed.length` x features); a new array by default.
 */
export function applyBinMapper(
  mapper: BinMapper,
  xcol: Float32Array,
  nRows: number,
  rowsUsed: Int32Array,
  bins: Uint8Array = new Uint8Array(rowsUsed.length * mapper.edges.length),
): BinnedData {
  const nCols = mapper.edges.length;
  const n = rowsUsed.length;
  if (bins.length !== n * nCols) throw new RangeError(`bins hold ${bins.length} values, not ${n * nCols}`);
  // One column at a time in the kernel's memory: its values, its bins, and its edges padded to 256
  // with +Infinity, so that eight fixed halving steps count the edges below a value.
  const scratch = new KernelMemory(KernelMemory.size([[4, n], [1, n], [8, 256]]));
  const values = scratch.float32(n);
  const out = scratch.uint8(n);
  const padded = scratch.float64(256);
  const { binValues } = wasmKernels(scratch.memory);
  try {
    for (let j = 0; j < nCols; j++) {
      const e = mapper.edges[j]!;
      if (e.length > 255) throw new RangeError(`feature ${j} has ${e.length} bin edges; at most 255 fit a byte`);
      padded.fill(Infinity);
      padded.set(e);
      const base = j * nRows;
      for (let r = 0; r < n; r++) values[r] = xcol[base + rowsUsed[r]!]!;
      binValues(values.byteOffset, out.byteOffset, n, padded.byteOffset, e.length + 1);
      bins.set(out, j * n);
    }
  } finally {
    scratch.release();
  }
  return { rows: n, cols: nCols, bins };
}
