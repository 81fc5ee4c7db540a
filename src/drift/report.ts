/**
 * One drift report: live rows against a model version's reference, feature by feature, with
 * Evidently's default choice of test. References of at most {@link SMALL_REFERENCE} rows: two-sample
 * KS for numeric features, chi-square for categorical ones, the two-proportion Z-test for binary
 * ones (p-value below 0.05 = drift); larger references: Wasserstein distance normalised by the
 * reference standard deviation for numeric features, Jensen-Shannon distance for categorical ones
 * (distance at or above 0.1 = drift). A numeric feature with at most five distinct values is
 * tested as categorical. PSI (threshold 0.1) replaces the default when asked for. Null rate and
 * unseen-category rate are reported beside the test. Pure functions: no I/O.
 */
import { sortedPresentValues } from '../util/stats.ts';
import type { CategoricalReference, FeatureReference, NumericReference } from '../training/pipeline-reference.ts';
import { chiSquare, jensenShannonDistance, ks2Samp, populationStabilityIndex, proportionZTest, wassersteinDistance } from './stats.ts';

/** Reference rows up to which the statistical tests (KS, chi-square, Z) are used. */
export const SMALL_REFERENCE = 1000;
/** Distinct values up to which a numeric feature is tested as categorical. */
const FEW_VALUES = 5;
const P_THRESHOLD = 0.05;
/**
 * Budget of the exact KS recursion per feature (lattice cells, see `ks2Samp`): enough for exact
 * p-values of every calm feature of a 10,000-row window against a 1000-value reference, while a
 * strongly drifted feature (wide band, p-value far below the threshold) takes the asymptotic law.
 */
const KS_EXACT_CELLS = 2_000_000;
const DISTANCE_THRESHOLD = 0.1;
/** Most categories shown in a feature's distribution. */
const MAX_SHOWN_CATEGORIES = 20;

export type DriftMethod = 'ks' | 'chisquare' | 'z' | 'wasserstein' | 'jensenshannon' | 'psi';

/** What a report compares live rows with: one feature summary per model input. */
export interface DriftReference {
  readonly rows: number;
  readonly feature_names: readonly string[];
  readonly features: Readonly<Record<string, FeatureReference>>;
}

/** Live values of one feature: numbers (`NaN` missing) or labels (`null` missing). */
export type LiveColumn = { readonly type: 'numeric'; readonly values: Float64Array } | { readonly type: 'categorical'; readonly values: readonly (string | null)[] };

export interface FeatureDrift {
  readonly feature: string;
  readonly type: 'numeric' | 'categorical';
  /** `null` when there was nothing to test (no live or no reference values). */
  readonly method: DriftMethod | null;
  readonly statistic: number | null;
  readonly p_value: number | null;
  readonly threshold: number;
  readonly drifted: boolean;
  readonly null_rate: number;
  readonly reference_null_rate: number;
  /** Share of live values in categories the reference never saw (categorical features). */
  readonly unseen_rate: number | null;
  readonly current_count: number;
  readonly note?: string;
  /** Reference and live shares per bin (numeric: reference quantile bins with overflow bins) or category. */
  readonly distribution: { readonly labels: string[]; readonly reference: number[]; readonly current: number[] };
}

export interface FeatureSummaryReport {
  readonly features: FeatureDrift[];
  readonly drifted_features: number;
  readonly share_drifted: number;
  readonly dataset_drift: boolean;
}

/** Finite numbers stay, anything else becomes `null` (JSON has no NaN). */
const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);
const round = (v: number): number => Math.round(v * 1e6) / 1e6;

/** Tests every feature of `reference` against the live columns (a missing column = all missing). */
export function compareFeatures(reference: DriftReference, live: ReadonlyMap<string, LiveColumn>, rows: number, options: { method?: 'psi'; shareThreshold: number }): FeatureSummaryReport {
  const features: FeatureDrift[] = [];
  for (const name of reference.feature_names) {
    const ref = reference.features[name];
    if (ref === undefined) continue;
    const col = live.get(name);
    features.push(ref.type === 'numeric' ? numericDrift(name, ref, col, rows, options.method) : categoricalDrift(name, ref, col, rows, options.method));
  }
  const drifted = features.filter((f) => f.drifted).length;
  const share = features.length === 0 ? 0 : drifted / features.length;
  return { features, drifted_features: drifted, share_drifted: round(share), dataset_drift: features.length > 0 && share >= options.shareThreshold };
}

function numericValues(col: LiveColumn | undefined, rows: number): Float64Array {
  if (col === undefined) return new Float64Array(rows).fill(Number.NaN);
  if (col.type === 'numeric') return col.values;
  // Labels where numbers were expected: numbers where they parse, missing otherwise.
  return Float64Array.from(col.values, (v) => (v === null || v.trim() === '' ? Number.NaN : Number(v)));
}

/** The bin of `x` among ascending interior `edges`: how many edges are `<= x`. */
function binOf(edges: readonly number[], x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function shares(counts: readonly number[]): number[] {
  let total = 0;
  for (const c of counts) total += c;
  return counts.map((c) => (total === 0 ? 0 : round(c / total)));
}

function numericDrift(name: string, ref: NumericReference, col: LiveColumn | undefined, rows: number, method: 'psi' | undefined): FeatureDrift {
  const values = numericValues(col, rows);
  const current = sortedPresentValues(values);
  const n = current.length;
  const nullRate = values.length === 0 ? 0 : (values.length - n) / values.length;
  const edges = ref.bins.edges;
  const currentCounts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < n; i++) currentCounts[binOf(edges, current[i]!)]!++;
  // Edges are quantiles of float32 inputs: six significant digits, not 6.5200000000000005.
  const edge = (i: number): number => Number(edges[i]!.toPrecision(6));
  const labels = edges.length === 0 ? ['all'] : [`< ${edge(0)}`, ...edges.slice(1).map((_e, i) => `${edge(i)} – ${edge(i + 1)}`), `≥ ${edge(edges.length - 1)}`];
  const distribution = { labels, reference: shares(ref.bins.counts), current: shares(currentCounts) };
  const base = { feature: name, type: 'numeric' as const, null_rate: round(nullRate), reference_null_rate: round(ref.null_rate), unseen_rate: null, current_count: n, distribution };
  const sample = Float64Array.from(ref.sample);
  if (n === 0 || sample.length === 0) {
    return { ...base, method: null, statistic: null, p_value: null, threshold: method === 'psi' ? DISTANCE_THRESHOLD : P_THRESHOLD, drifted: false, note: n === 0 ? 'no live values' : 'no reference values' };
  }
  if (method === 'psi') {
    const psi = populationStabilityIndex(ref.bins.counts, currentCounts);
    return { ...base, method: 'psi', statistic: finite(round(psi)), p_value: null, threshold: DISTANCE_THRESHOLD, drifted: psi >= DISTANCE_THRESHOLD };
  }
  const distinct = distinctValues(sample, current, FEW_VALUES + 1);
  if (distinct.length <= FEW_VALUES) {
    // Few distinct values: compared as categories (reference shares from its sample).
    const keys = distinct.map(String);
    const refCounts = countMatches(sample, distinct);
    const curCounts = countMatches(current, distinct);
    return { ...base, ...categoryTest(keys, refCounts, curCounts, ref.count) };
  }
  if (ref.count <= SMALL_REFERENCE) {
    const r = ks2Samp(sample, current, 'auto', KS_EXACT_CELLS);
    return { ...base, method: 'ks', statistic: round(r.statistic), p_value: r.pValue, threshold: P_THRESHOLD, drifted: r.pValue < P_THRESHOLD };
  }
  const d = wassersteinDistance(sample, current) / Math.max(ref.std ?? 0, 0.001);
  return { ...base, method: 'wasserstein', statistic: finite(round(d)), p_value: null, threshold: DISTANCE_THRESHOLD, drifted: d >= DISTANCE_THRESHOLD };
}

/** Up to `limit` distinct values of two ascending samples, ascending. */
function distinctValues(a: Float64Array, b: Float64Array, limit: number): number[] {
  const set = new Set<number>();
  for (const s of [a, b]) {
    for (let i = 0; i < s.length; i++) {
      if (i > 0 && s[i] === s[i - 1]) continue;
      set.add(s[i]!);
      if (set.size >= limit) return [...set].sort((x, y) => x - y);
    }
  }
  return [...set].sort((x, y) => x - y);
}

function countMatches(values: Float64Array, keys: readonly number[]): number[] {
  const counts = new Array<number>(keys.length).fill(0);
  for (let i = 0; i < values.length; i++) {
    const k = keys.indexOf(values[i]!);
    if (k >= 0) counts[k]!++;
  }
  return counts;
}

/**
 * Chi-square (more than two categories) or Z-test (two) of small references, Jensen-Shannon
 * of large ones, over matching category counts. Categories the reference never saw get half a
 * reference observation in the chi-square expectation, so one unseen value raises the statistic
 * without making it infinite (the unseen rate reports them on its own).
 */
function categoryTest(keys: readonly string[], refCounts: readonly number[], curCounts: readonly number[], referenceRows: number): Pick<FeatureDrift, 'method' | 'statistic' | 'p_value' | 'threshold' | 'drifted'> {
  const nRef = refCounts.reduce((a, b) => a + b, 0);
  const nCur = curCounts.reduce((a, b) => a + b, 0);
  if (referenceRows > SMALL_REFERENCE) {
    const d = jensenShannonDistance(refCounts, curCounts);
    return { method: 'jensenshannon', statistic: finite(round(d)), p_value: null, threshold: DISTANCE_THRESHOLD, drifted: d >= DISTANCE_THRESHOLD };
  }
  if (keys.length <= 2) {
    // Binary: the share of the first category in both samples.
    const r = proportionZTest(refCounts[0] ?? 0, nRef, curCounts[0] ?? 0, nCur);
    return { method: 'z', statistic: round(r.statistic), p_value: r.pValue, threshold: P_THRESHOLD, drifted: r.pValue < P_THRESHOLD };
  }
  const expected = refCounts.map((c) => ((c === 0 ? 0.5 : c) * nCur) / nRef);
  const r = chiSquare(curCounts, expected);
  const p = Number.isNaN(r.pValue) ? 1 : r.pValue;
  return { method: 'chisquare', statistic: finite(round(r.statistic)), p_value: p, threshold: P_THRESHOLD, drifted: p < P_THRESHOLD };
}

function categoricalDrift(name: string, ref: CategoricalReference, col: LiveColumn | undefined, rows: number, method: 'psi' | undefined): FeatureDrift {
  const labels: readonly (string | null)[] =
    col === undefined ? new Array<null>(rows).fill(null) : col.type === 'categorical' ? col.values : Array.from(col.values, (v) => (Number.isNaN(v) ? null : String(v)));
  const liveCounts = new Map<string, number>();
  let present = 0;
  for (const v of labels) {
    if (v === null) continue;
    present++;
    liveCounts.set(v, (liveCounts.get(v) ?? 0) + 1);
  }
  const keys = [...new Set([...Object.keys(ref.frequencies), ...liveCounts.keys()])];
  const refCounts = keys.map((k) => ref.frequencies[k] ?? 0);
  const curCounts = keys.map((k) => liveCounts.get(k) ?? 0);
  let unseen = 0;
  for (const [k, c] of liveCounts) if (ref.frequencies[k] === undefined) unseen += c;
  const order = keys.map((_, i) => i).sort((a, b) => refCounts[b]! + curCounts[b]! - (refCounts[a]! + curCounts[a]!)).slice(0, MAX_SHOWN_CATEGORIES);
  const refShares = shares(refCounts);
  const curShares = shares(curCounts);
  const base = {
    feature: name,
    type: 'categorical' as const,
    null_rate: round(labels.length === 0 ? 0 : (labels.length - present) / labels.length),
    reference_null_rate: round(ref.null_rate),
    unseen_rate: present === 0 ? null : round(unseen / present),
    current_count: present,
    distribution: { labels: order.map((i) => keys[i]!), reference: order.map((i) => refShares[i]!), current: order.map((i) => curShares[i]!) },
  };
  if (present === 0 || ref.count === 0) {
    return { ...base, method: null, statistic: null, p_value: null, threshold: method === 'psi' ? DISTANCE_THRESHOLD : P_THRESHOLD, drifted: false, note: present === 0 ? 'no live values' : 'no reference values' };
  }
  if (method === 'psi') {
    const psi = populationStabilityIndex(refCounts, curCounts);
    return { ...base, method: 'psi', statistic: finite(round(psi)), p_value: null, threshold: DISTANCE_THRESHOLD, drifted: psi >= DISTANCE_THRESHOLD };
  }
  return { ...base, ...categoryTest(keys, refCounts, curCounts, ref.count) };
}
