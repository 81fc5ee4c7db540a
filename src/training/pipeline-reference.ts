/**
 * The training-data reference stored with a model version (`reference.json`): what the drift
 * monitor compares live inputs against, computed once at training time from the rows the model
 * was fitted on.
 *
 * Numeric features: decile bin edges with the training counts per bin, mean, standard deviation,
 * min/max, null rate, and a bounded sorted sample (for KS / Wasserstein tests). Bins are
 * open-ended at both ends, so they double as overflow bins for live values outside the training
 * range: with interior edges `e[0] < ... < e[m-1]`, bin `k` holds `e[k-1] <= x < e[k]` (bin 0
 * everything below `e[0]`, bin m everything from `e[m-1]` up), i.e. the bin of `x` is the number
 * of edges `<= x`. Categorical features: category frequencies.
 */
import { quantileSorted, sortedPresentValues } from '../util/stats.ts';
import type { Matrix, Preprocessing, Task } from '../ml/types.ts';

/** Bins of the numeric summaries. */
export const REFERENCE_BINS = 10;
/** Largest sorted sample kept per numeric feature. */
export const REFERENCE_SAMPLE_SIZE = 1000;
export const REFERENCE_FORMAT = 'modelplane.reference/v1';

export interface NumericReference {
  readonly type: 'numeric';
  /** Non-missing training values. */
  readonly count: number;
  /** Share of training rows where the value is missing. */
  readonly null_rate: number;
  readonly mean: number | null;
  /** Population standard deviation. */
  readonly std: number | null;
  readonly min: number | null;
  readonly max: number | null;
  /** Interior quantile edges (ascending, distinct) and `edges.length + 1` counts (see module comment). */
  readonly bins: { readonly edges: number[]; readonly counts: number[] };
  /** Ascending; every value when there are at most `REFERENCE_SAMPLE_SIZE`, else evenly spaced order statistics. */
  readonly sample: number[];
}

export interface CategoricalReference {
  readonly type: 'categorical';
  readonly count: number;
  readonly null_rate: number;
  /** Training count of each category (categories unseen in training are absent). */
  readonly frequencies: Record<string, number>;
}

export type FeatureReference = NumericReference | CategoricalReference;

/** The whole reference of one model version. */
export interface TrainingReference {
  readonly format: typeof REFERENCE_FORMAT;
  /** Training rows summarised. */
  readonly rows: number;
  /** Feature names in model input order. */
  readonly feature_names: string[];
  readonly features: Record<string, FeatureReference>;
  /** The target: class frequencies (classification) or a numeric summary (regression). */
  readonly target: { readonly name: string; readonly task: Task; readonly summary: FeatureReference };
  readonly dataset: { readonly name: string; readonly version: number; readonly sha256: string };
}

/** Summary of numeric values (`NaN` = missing). */
export function numericReference(values: Float64Array): NumericReference {
  const sorted = sortedPresentValues(values);
  const n = sorted.length;
  const nullRate = values.length === 0 ? 0 : (values.length - n) / values.length;
  if (n === 0) {
    return { type: 'numeric', count: 0, null_rate: nullRate, mean: null, std: null, min: null, max: null, bins: { edges: [], counts: [0] }, sample: [] };
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (sorted[i]! - mean) ** 2;
  const edges: number[] = [];
  for (let k = 1; k < REFERENCE_BINS; k++) {
    const q = quantileSorted(sorted, k / REFERENCE_BINS);
    if (edges.length === 0 || q > edges[edges.length - 1]!) edges.push(q);
  }
  const counts = new Array<number>(edges.length + 1).fill(0);
  // Values are sorted, so one merge-like pass assigns every value to its bin.
  let bin = 0;
  for (let i = 0; i < n; i++) {
    const v = sorted[i]!;
    while (bin < edges.length && edges[bin]! <= v) bin++;
    counts[bin]!++;
  }
  const sample: number[] = [];
  if (n <= REFERENCE_SAMPLE_SIZE) {
    for (let i = 0; i < n; i++) sample.push(sorted[i]!);
  } else {
    for (let i = 0; i < REFERENCE_SAMPLE_SIZE; i++) sample.push(sorted[Math.floor(((i + 0.5) * n) / REFERENCE_SAMPLE_SIZE)]!);
  }
  return { type: 'numeric', count: n, null_rate: nullRate, mean, std: Math.sqrt(ss / n), min: sorted[0]!, max: sorted[n - 1]!, bins: { edges, counts }, sample };
}

/** Summary of category codes (`NaN` = missing) with their labels. */
export function categoricalReference(codes: Float64Array, labels: readonly string[]): CategoricalReference {
  const counts = new Float64Array(labels.length);
  let missing = 0;
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (Number.isInteger(c) && c >= 0 && c < labels.length) counts[c]!++;
    else missing++;
  }
  const frequencies: Record<string, number> = {};
  labels.forEach((label, k) => {
    if (counts[k]! > 0) frequencies[label] = counts[k]!;
  });
  return { type: 'categorical', count: codes.length - missing, null_rate: codes.length === 0 ? 0 : missing / codes.length, frequencies };
}

/** One column of a row-major matrix. */
function column(m: Matrix, j: number): Float64Array {
  const out = new Float64Array(m.rows);
  for (let i = 0; i < m.rows; i++) out[i] = m.values[i * m.cols + j]!;
  return out;
}

/**
 * Builds the reference from the raw (encoded, untransformed) training matrix: numeric columns as
 * numbers, categorical columns as codes into `pre.columns[j].categories`.
 */
export function buildReference(
  pre: Preprocessing,
  rawTrain: Matrix,
  target: { name: string; task: Task; values: Float64Array; classLabels: readonly (number | string)[] | null },
  dataset: { name: string; version: number; sha256: string },
): TrainingReference {
  const features: Record<string, FeatureReference> = {};
  pre.columns.forEach((c, j) => {
    const values = column(rawTrain, j);
    features[c.name] = c.kind === 'numeric' ? numericReference(values) : categoricalReference(values, c.categories);
  });
  const summary =
    target.task === 'classification' && target.classLabels !== null
      ? categoricalReference(target.values, target.classLabels.map(String))
      : numericReference(target.values);
  return {
    format: REFERENCE_FORMAT,
    rows: rawTrain.rows,
    feature_names: pre.columns.map((c) => c.name),
    features,
    target: { name: target.name, task: target.task, summary },
    dataset,
  };
}
