/**
 * CART decision trees (classification with gini/entropy, regression with squared error), the
 * building block of the random forest.
 *
 * Exact splits over the sorted feature values: every feature is argsorted once (per fit, shared by
 * all trees of a forest); each tree keeps, per feature, the indices of its samples in that order and
 * stably partitions those lists as nodes split, so every node sees its samples already sorted by
 * every feature and a split search is one linear scan. Features are rounded to float32 first and
 * thresholds are float32 values between consecutive distinct float32 values (see `binning.ts`), so
 * an exported ONNX tree routes every training row exactly as training did.
 *
 * Missing values (NaN) sort last. At each split both directions for them are tried and the better
 * one is stored in `missingGoesLeft`; "all present values left, missing right" is a candidate split
 * of its own (threshold = largest float32).
 */

import { FLOAT32_MAX, argsortF32, float32Threshold, toColumnMajorF32 } from './binning.ts';
import { forestWork, growOnWorkers } from './forest.ts';
import { createRng, type Rng } from '../util/random.ts';
import type { ProgressFn, Task, Tree, TrainingData, TreeEnsembleModel } from './types.ts';

/** Split quality measure: `gini`/`entropy` for classification, `squared_error` for regression. */
export type Criterion = 'gini' | 'entropy' | 'squared_error';

/**
 * Features considered per split, as in scikit-learn: `'sqrt'`, `'log2'`, `null` (all), a number in
 * (0, 1] (a fraction of the features, so `1` means all of them) or an integer > 1 (a count).
 */
export type MaxFeatures = number | 'sqrt' | 'log2' | null;

/** Hyper-parameters of {@link fitDecisionTree}; names and defaults follow scikit-learn. */
export interface DecisionTreeParams {
  /** Default `gini` for classification, `squared_error` for regression. */
  readonly criterion?: Criterion;
  /** Maximum depth (root = depth 0); `null` (default) grows until leaves are pure or too small. */
  readonly max_depth?: number | null;
  /** Minimum samples to split a node: an integer >= 2, or a fraction of n in (0, 1). Default 2. */
  readonly min_samples_split?: number;
  /** Minimum samples in each child: an integer >= 1, or a fraction of n in (0, 1). Default 1. */
  readonly min_samples_leaf?: number;
  /** Default `null` (all features). */
  readonly max_features?: MaxFeatures;
  /** Seed of the feature sampling order (ties between equally good splits). Default 0. */
  readonly seed?: number;
}

/** Training data prepared once for many trees. The arrays may live in SharedArrayBuffers. */
export interface PreparedTreeData {
  readonly n: number;
  readonly p: number;
  readonly task: Task;
  readonly nClasses: number;
  /** Column-major float32 features (`xcol[j * n + i]`). */
  readonly xcol: Float32Array;
  readonly y: Float64Array;
  /** Per feature `j`, `sorted[j * n .. j * n + n)` = row indices by ascending value, NaN last. */
  readonly sorted: Int32Array;
}

/** Resolved growth limits of one tree (all integers, `maxDepth` may be Infinity). */
export interface TreeGrowParams {
  readonly criterion: Criterion;
  readonly maxDepth: number;
  readonly minSamplesSplit: number;
  readonly minSamplesLeaf: number;
  readonly maxFeatures: number;
}

/** Checks the data shape and labels shared by every trainer in this folder. */
export function validateTrainingData(data: TrainingData): void {
  const { x, y, task, nClasses } = data;
  if (x.rows < 1 || x.cols < 1) throw new RangeError('training data must have at least one row and one column');
  if (x.values.length !== x.rows * x.cols) throw new RangeError('matrix values length does not match rows x cols');
  if (y.length !== x.rows) throw new RangeError(`y has ${y.length} values for ${x.rows} rows`);
  if (task === 'classification') {
    if (!(nClasses >= 1) || !Number.isInteger(nClasses)) throw new RangeError('classification needs nClasses >= 1');
    for (let i = 0; i < y.length; i++) {
      const c = y[i]!;
      if (!(c >= 0 && c < nClasses && Number.isInteger(c))) {
        throw new RangeError(`y[${i}] = ${c} is not a class index in [0, ${nClasses})`);
      }
    }
  } else {
    for (let i = 0; i < y.length; i++) {
      if (!Number.isFinite(y[i]!)) throw new RangeError(`y[${i}] = ${y[i]} is not a finite regression target`);
    }
  }
}

/**
 * Transposes to column-major float32 and argsorts every feature. With `shared`, the arrays are
 * backed by SharedArrayBuffers so worker threads can read them without copies.
 */
export function prepareTreeData(data: TrainingData, shared = false): PreparedTreeData {
  const n = data.x.rows;
  const p = data.x.cols;
  const alloc = (bytes: number): ArrayBuffer | SharedArrayBuffer => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const xcol = new Float32Array(alloc(n * p * 4));
  xcol.set(toColumnMajorF32(data.x));
  const y = new Float64Array(alloc(n * 8));
  y.set(data.y);
  const sorted = new Int32Array(alloc(n * p * 4));
  for (let j = 0; j < p; j++) argsortF32(xcol.subarray(j * n, (j + 1) * n), sorted.subarray(j * n, (j + 1) * n));
  return { n, p, task: data.task, nClasses: data.task === 'classification' ? data.nClasses : 0, xcol, y, sorted };
}

/** Number of features per split for a scikit-learn style `max_features` over `p` features. */
export function resolveMaxFeatures(value: MaxFeatures | undefined, p: number): number {
  if (value === null || value === undefined) return p;
  if (value === 'sqrt') return Math.max(1, Math.floor(Math.sqrt(p)));
  if (value === 'log2') return Math.max(1, Math.floor(Math.log2(p)));
  if (typeof value === 'number' && value > 0) {
    if (value <= 1) return Math.max(1, Math.floor(value * p));
    if (Number.isInteger(value)) return Math.min(p, value);
  }
  throw new RangeError(`invalid max_features: ${String(value)}`);
}

function resolveCount(value: number | undefined, fallback: number, n: number, min: number, name: string): number {
  if (value === undefined) return fallback;
  if (value > 0 && value < 1) return Math.max(min, Math.ceil(value * n));
  if (Number.isInteger(value) && value >= min) return value;
  throw new RangeError(`invalid ${name}: ${value}`);
}

/** Resolves scikit-learn style tree parameters against the data size. */
export function resolveGrowParams(
  params: {
    readonly criterion?: Criterion;
    readonly max_depth?: number | null;
    readonly min_samples_split?: number;
    readonly min_samples_leaf?: number;
    readonly max_features?: MaxFeatures;
  },
  task: Task,
  n: number,
  p: number,
  defaultMaxFeatures: MaxFeatures,
): TreeGrowParams {
  const criterion = params.criterion ?? (task === 'classification' ? 'gini' : 'squared_error');
  if ((task === 'classification') !== (criterion !== 'squared_error')) {
    throw new RangeError(`criterion ${criterion} does not fit a ${task} task`);
  }
  const md = params.max_depth;
  if (md !== null && md !== undefined && !(Number.isInteger(md) && md >= 1)) throw new RangeError(`invalid max_depth: ${md}`);
  return {
    criterion,
    maxDepth: md === null || md === undefined ? Infinity : md,
    minSamplesSplit: resolveCount(params.min_samples_split, 2, n, 2, 'min_samples_split'),
    minSamplesLeaf: resolveCount(params.min_samples_leaf, 1, n, 1, 'min_samples_leaf'),
    maxFeatures: resolveMaxFeatures(params.max_features === undefined ? defaultMaxFeatures : params.max_features, p),
  };
}

/**
 * Grows one CART tree.
 *
 * @param weights per-row sample weights (bootstrap counts); rows with weight 0 are left out, and as
 *   in scikit-learn `min_samples_*` count distinct rows while leaf values and `cover` are weighted.
 *   `null` = every row once.
 * @param onSettled called with the number of distinct rows that have reached a leaf so far.
 */
export function growTree(
  d: PreparedTreeData,
  weights: Float64Array | null,
  gp: TreeGrowParams,
  rng: Rng,
  onSettled?: (settledRows: number, totalRows: number) => void,
): Tree {
  const { n, p, xcol, y, sorted } = d;
  const isCls = d.task === 'classification';
  const K = isCls ? d.nClasses : 1;
  const crit = gp.criterion;
  const minLeaf = gp.minSamplesLeaf;
  const w = weights ?? new Float64Array(n).fill(1);

  // Per-feature sorted index lists of this tree's rows.
  let m = n;
  let idx: Int32Array;
  if (weights === null) {
    idx = sorted.slice();
  } else {
    m = 0;
    for (let i = 0; i < n; i++) if (w[i]! > 0) m++;
    idx = new Int32Array(p * m);
    for (let f = 0; f < p; f++) {
      let k = f * m;
      const src = f * n;
      for (let t = 0; t < n; t++) {
        const i = sorted[src + t]!;
        if (w[i]! > 0) idx[k++] = i;
      }
    }
  }
  if (m === 0) throw new RangeError('no training rows with positive weight');

  const cap = 2 * m;
  const feature = new Int32Array(cap);
  const threshold = new Float64Array(cap);
  const left = new Int32Array(cap).fill(-1);
  const right = new Int32Array(cap).fill(-1);
  const missLeftArr = new Uint8Array(cap);
  const value = new Float64Array(cap * K);
  const cover = new Float64Array(cap);
  let nodeCount = 0;

  const stS = new Int32Array(cap);
  const stE = new Int32Array(cap);
  const stDepth = new Int32Array(cap);
  const stParent = new Int32Array(cap);
  const stIsLeft = new Uint8Array(cap);
  // The root's entry: rows [0, m), depth 0, no parent.
  stE[0] = m;
  stParent[0] = -1;
  let sp = 1;

  const goLeft = new Uint8Array(n);
  const tmp = new Int32Array(m);
  const featOrder = new Int32Array(p);
  for (let f = 0; f < p; f++) featOrder[f] = f;
  const totC = new Float64Array(K);
  const leftC = new Float64Array(K);
  const missC = new Float64Array(K);
  const st = new SplitSearch(xcol, y, w, idx, n, m, isCls, K, crit, minLeaf, totC, leftC, missC);
  let settled = 0;

  while (sp > 0) {
    sp--;
    const s = stS[sp]!;
    const e = stE[sp]!;
    const depth = stDepth[sp]!;
    const parent = stParent[sp]!;
    const node = nodeCount++;
    if (parent >= 0) {
      if (stIsLeft[sp]) left[parent] = node;
      else right[parent] = node;
    }
    const nNode = e - s;

    // Node statistics (over feature 0's list: any feature holds the same rows).
    let wTot = 0;
    let sumTot = 0;
    let yMin = Infinity;
    let yMax = -Infinity;
    if (isCls) totC.fill(0);
    for (let pos = s; pos < e; pos++) {
      const i = idx[pos]!;
      const wi = w[i]!;
      const yi = y[i]!;
      wTot += wi;
      if (isCls) totC[yi]! += wi;
      else sumTot += wi * yi;
      if (yi < yMin) yMin = yi;
      if (yi > yMax) yMax = yi;
    }
    cover[node] = wTot;
    if (isCls) for (let k = 0; k < K; k++) value[node * K + k] = totC[k]! / wTot;
    else value[node] = sumTot / wTot;

    st.bestF = -1;
    st.bestScore = -Infinity;
    const pure = yMin === yMax;
    if (!pure && depth < gp.maxDepth && nNode >= gp.minSamplesSplit && nNode >= 2 * minLeaf) {
      let sqTot = 0;
      if (isCls) for (let k = 0; k < K; k++) sqTot += totC[k]! * totC[k]!;
      st.s = s;
      st.e = e;
      st.wTot = wTot;
      st.sumTot = sumTot;
      st.sqTot = sqTot;
      let visited = 0;
      let nonConstant = 0;
      for (let j = 0; j < p; j++) {
        if (visited >= gp.maxFeatures && nonConstant > 0) break;
        const r = j + rng.nextInt(p - j);
        const f = featOrder[r]!;
        featOrder[r] = featOrder[j]!;
        featOrder[j] = f;
        visited++;
        if (scanFeature(st, f)) nonConstant++;
      }
    }

    const bestF = st.bestF;
    const bestThr = st.bestThr;
    const bestMissLeft = st.bestMissLeft;
    if (bestF < 0) {
      settled += nNode;
      if (onSettled) onSettled(settled, m);
      continue;
    }

    feature[node] = bestF;
    threshold[node] = bestThr;
    missLeftArr[node] = bestMissLeft;
    const colBase = bestF * n;
    for (let pos = s; pos < e; pos++) {
      const i = idx[pos]!;
      const v = xcol[colBase + i]!;
      goLeft[i] = v !== v ? bestMissLeft : v <= bestThr ? 1 : 0;
    }
    // Feature 0's list first: it gives the child sizes, and the child statistics are read from it.
    const nl = partitionSegment(idx, tmp, goLeft, 0, s, e);
    const splitMin = Math.max(gp.minSamplesSplit, 2 * minLeaf);
    const childrenMaySplit = depth + 1 < gp.maxDepth && (nl >= splitMin || nNode - nl >= splitMin);
    // Children that will be leaves need no sorted lists of the other features.
    if (childrenMaySplit) for (let f = 1; f < p; f++) partitionSegment(idx, tmp, goLeft, f * m, s, e);
    // Right is pushed first so the left subtree is built (and numbered) first.
    stS[sp] = s + nl;
    stE[sp] = e;
    stDepth[sp] = depth + 1;
    stParent[sp] = node;
    stIsLeft[sp] = 0;
    sp++;
    stS[sp] = s;
    stE[sp] = s + nl;
    stDepth[sp] = depth + 1;
    stParent[sp] = node;
    stIsLeft[sp] = 1;
    sp++;
  }

  return {
    feature: feature.slice(0, nodeCount),
    threshold: threshold.slice(0, nodeCount),
    left: left.slice(0, nodeCount),
    right: right.slice(0, nodeCount),
    missingGoesLeft: missLeftArr.slice(0, nodeCount),
    value: value.slice(0, nodeCount * K),
    cover: cover.slice(0, nodeCount),
  };
}

/** Stable partition of `idx[base + s .. base + e)` by `goLeft`; returns the left count. */
function partitionSegment(idx: Int32Array, tmp: Int32Array, goLeft: Uint8Array, base: number, s: number, e: number): number {
  let l = base + s;
  let r = 0;
  for (let pos = base + s, end = base + e; pos < end; pos++) {
    const i = idx[pos]!;
    if (goLeft[i]) idx[l++] = i;
    else tmp[r++] = i;
  }
  idx.set(tmp.subarray(0, r), l);
  return l - base - s;
}

/** Per-tree buffers and per-node state of the split search (one shape, so V8 keeps it fast). */
class SplitSearch {
  s = 0;
  e = 0;
  wTot = 0;
  sumTot = 0;
  sqTot = 0;
  bestScore = -Infinity;
  bestF = -1;
  bestThr = 0;
  bestMissLeft = 0;
  constructor(
    readonly xcol: Float32Array,
    readonly y: Float64Array,
    readonly w: Float64Array,
    readonly idx: Int32Array,
    readonly n: number,
    readonly m: number,
    readonly isCls: boolean,
    readonly K: number,
    readonly crit: Criterion,
    readonly minLeaf: number,
    readonly totC: Float64Array,
    readonly leftC: Float64Array,
    readonly missC: Float64Array,
  ) {}
}

/**
 * Scans feature `f` over the node's rows `[st.s, st.e)` (sorted by that feature, missing last) and
 * records a better split in `st`. Returns false when the feature is constant in the node.
 */
function scanFeature(st: SplitSearch, f: number): boolean {
  const { xcol, y, w, idx, n, m, isCls, K, crit, minLeaf, totC, leftC, missC, s, e, wTot, sumTot, sqTot } = st;
  const nNode = e - s;
  let bestScore = st.bestScore;
  let bestF = st.bestF;
  let bestThr = st.bestThr;
  let bestMissLeft = st.bestMissLeft;
  const base = f * m;
  const colBase = f * n;

  // Missing rows sit at the end of the list.
  let eNM = e;
  let wM = 0;
  let sumM = 0;
  if (isCls) missC.fill(0);
  while (eNM > s) {
    const i = idx[base + eNM - 1]!;
    if (xcol[colBase + i]! === xcol[colBase + i]!) break;
    const wi = w[i]!;
    wM += wi;
    if (isCls) missC[y[i]!]! += wi;
    else sumM += wi * y[i]!;
    eNM--;
  }
  const nMiss = e - eNM;
  if (eNM === s) return false;
  const vFirst = xcol[colBase + idx[base + s]!]!;
  const vLast = xcol[colBase + idx[base + eNM - 1]!]!;
  if (vFirst === vLast && nMiss === 0) return false;

  let wL = 0;
  let sumL = 0;
  let sqL = 0;
  let sqR = sqTot;
  if (isCls) leftC.fill(0);
  let prevV = vFirst;
  for (let pos = s; pos < eNM; pos++) {
    const i = idx[base + pos]!;
    const v = xcol[colBase + i]!;
    if (v > prevV) {
      const nL = pos - s;
      // Candidate: rows [s, pos) left. Option A: missing right.
      if (nL >= minLeaf && nNode - nL >= minLeaf) {
        const wR = wTot - wL;
        let score: number;
        if (crit === 'gini') score = sqL / wL + sqR / wR;
        else if (crit === 'squared_error') {
          const sumR = sumTot - sumL;
          score = (sumL * sumL) / wL + (sumR * sumR) / wR;
        } else score = entropyScore(leftC, totC, null, K, wL, wR, false);
        if (score > bestScore) {
          bestScore = score;
          bestF = f;
          bestThr = float32Threshold(prevV, v);
          bestMissLeft = 0;
        }
      }
      // Option B: missing left.
      if (nMiss > 0 && nL + nMiss >= minLeaf && nNode - nL - nMiss >= minLeaf) {
        const wLB = wL + wM;
        const wRB = wTot - wLB;
        let score: number;
        if (crit === 'gini') {
          let a = 0;
          let b = 0;
          for (let k = 0; k < K; k++) {
            const l = leftC[k]! + missC[k]!;
            const rr = totC[k]! - l;
            a += l * l;
            b += rr * rr;
          }
          score = a / wLB + b / wRB;
        } else if (crit === 'squared_error') {
          const sl = sumL + sumM;
          const sr = sumTot - sl;
          score = (sl * sl) / wLB + (sr * sr) / wRB;
        } else score = entropyScore(leftC, totC, missC, K, wLB, wRB, true);
        if (score > bestScore) {
          bestScore = score;
          bestF = f;
          bestThr = float32Threshold(prevV, v);
          bestMissLeft = 1;
        }
      }
      prevV = v;
    }
    const wi = w[i]!;
    wL += wi;
    if (isCls) {
      const c = y[i]!;
      const lc = leftC[c]!;
      const rc = totC[c]! - lc;
      sqL += wi * (2 * lc + wi);
      sqR += wi * (wi - 2 * rc);
      leftC[c] = lc + wi;
    } else sumL += wi * y[i]!;
  }
  // Present values left, missing right.
  if (nMiss > 0) {
    const nL = eNM - s;
    if (nL >= minLeaf && nMiss >= minLeaf) {
      let score: number;
      if (crit === 'gini') {
        let b = 0;
        for (let k = 0; k < K; k++) b += missC[k]! * missC[k]!;
        score = sqL / wL + b / wM;
      } else if (crit === 'squared_error') score = (sumL * sumL) / wL + (sumM * sumM) / wM;
      else score = entropyScore(leftC, totC, null, K, wL, wM, false);
      if (score > bestScore) {
        bestScore = score;
        bestF = f;
        bestThr = FLOAT32_MAX;
        bestMissLeft = 0;
      }
    }
  }
  st.bestScore = bestScore;
  st.bestF = bestF;
  st.bestThr = bestThr;
  st.bestMissLeft = bestMissLeft;
  return true;
}

/**
 * Entropy split score (higher is better): `sum_k L_k ln(L_k / wL) + R_k ln(R_k / wR)`, i.e. minus
 * the weighted child entropies. With `addMissing`, `missC` joins the left side.
 */
function entropyScore(
  leftC: Float64Array,
  totC: Float64Array,
  missC: Float64Array | null,
  K: number,
  wL: number,
  wR: number,
  addMissing: boolean,
): number {
  let s = 0;
  for (let k = 0; k < K; k++) {
    const l = addMissing && missC ? leftC[k]! + missC[k]! : leftC[k]!;
    const r = totC[k]! - l;
    if (l > 0) s += l * Math.log(l / wL);
    if (r > 0) s += r * Math.log(r / wR);
  }
  return s;
}

/** Wraps trees into the shared ensemble shape (forests and single trees: averaged, no transform). */
export function averagedTreeModel(task: Task, nFeatures: number, nClasses: number, trees: readonly Tree[]): TreeEnsembleModel {
  const nOutputs = task === 'classification' ? nClasses : 1;
  return {
    kind: 'trees',
    task,
    nFeatures,
    nOutputs,
    nClasses: task === 'classification' ? nClasses : 0,
    trees,
    baseValues: new Float64Array(nOutputs),
    aggregate: 'average',
    postTransform: 'none',
  };
}

/**
 * Estimated work above which a single tree is grown on a worker thread: about half a second, so
 * that a cancellation (which terminates the worker) never waits for a long tree to finish.
 */
const TREE_WORKER_THRESHOLD = 1e8;

/**
 * Fits one CART decision tree (scikit-learn `DecisionTreeClassifier`/`Regressor` semantics).
 * Classification leaves hold class-probability vectors; regression leaves the target mean.
 * Features are compared in float32 (see the module comment). Large trees grow on a worker thread,
 * reporting the share of rows in leaves; an exception from `onProgress` or an aborted `signal`
 * stops them at once.
 */
export async function fitDecisionTree(
  data: TrainingData,
  params: DecisionTreeParams = {},
  onProgress?: ProgressFn,
  signal?: AbortSignal,
): Promise<TreeEnsembleModel> {
  validateTrainingData(data);
  const n = data.x.rows;
  const p = data.x.cols;
  const gp = resolveGrowParams(params, data.task, n, p, null);
  const seed = params.seed ?? 0;
  const nClasses = data.task === 'classification' ? data.nClasses : 0;
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
  onProgress?.(0, 'growing tree');
  let tree: Tree;
  if (forestWork(1, n, gp.maxFeatures) >= TREE_WORKER_THRESHOLD) {
    const trees: Tree[] = [];
    const init = { data: prepareTreeData(data, true), grow: gp, bootstrap: false };
    await growOnWorkers(init, Float64Array.of(seed), 1, trees, (fraction) => onProgress?.(fraction, `${Math.round(fraction * n)}/${n} rows in leaves`), signal);
    tree = trees[0]!;
  } else {
    const prepared = prepareTreeData(data);
    let lastReported = 0;
    tree = growTree(prepared, null, gp, createRng(seed), (settled, total) => {
      const frac = settled / total;
      if (onProgress && frac - lastReported >= 0.05) {
        lastReported = frac;
        onProgress(frac, `${settled}/${total} rows in leaves`);
      }
    });
  }
  onProgress?.(1, `tree with ${tree.left.length} nodes`);
  return averagedTreeModel(data.task, p, nClasses, [tree]);
}
