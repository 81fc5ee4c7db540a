/**
 * What the drift page shows of a report (`GET /drift/{model}`, API.md "Drift"), as pure functions
 * over the report's generated types: the test's name and decision rule per feature, reference
 * against live shares as bars, the sentence that sums the report up, the history as a series over
 * time, and the window field read into the `?window=` the route accepts. No DOM, no fetch, so
 * `test/ui/ui-logic.test.ts` runs them in Node.
 */
import type { paths } from '../api/schema.d.ts';
import type { Bin } from './bins.ts';

export type DriftReport = paths['/drift/{model}']['get']['responses'][200]['content']['application/json'];
export type DriftHistory = paths['/drift/{model}/history']['get']['responses'][200]['content']['application/json'];
export type FeatureDrift = DriftReport['features'][number];

/** Most rows a window may hold (`MAX_WINDOW` of src/drift/drift.service.ts, the route's maximum). */
export const MAX_WINDOW = 100_000;

const METHOD_NAMES: Readonly<Record<string, string>> = {
  ks: 'Kolmogorov–Smirnov',
  chisquare: 'chi-square',
  z: 'two-proportion Z',
  wasserstein: 'Wasserstein (normed)',
  jensenshannon: 'Jensen–Shannon',
  psi: 'PSI',
};

/** The test's readable name; `null` (nothing tested) as a dash, an unknown code as sent. */
export function methodName(method: string | null): string {
  if (method === null) return '—';
  return METHOD_NAMES[method] ?? method;
}

export interface Decision {
  /** `drifted`, `no drift`, or `not tested` with the server's reason. */
  readonly label: string;
  readonly drifted: boolean;
  /** When the test calls drift: `p < 0.05` for the statistical tests, `≥ 0.1` for distances. */
  readonly rule: string;
}

/**
 * The decision on one feature and the rule it follows. A test with a p-value decides on it
 * (drift below the threshold); a distance or PSI decides on the statistic (drift at or above).
 */
export function decisionOf(f: FeatureDrift): Decision {
  if (f.method === null) return { label: `not tested (${f.note ?? 'nothing to compare'})`, drifted: false, rule: '—' };
  const rule = typeof f.p_value === 'number' ? `p < ${f.threshold}` : `statistic ≥ ${f.threshold}`;
  return { label: f.drifted ? 'drifted' : 'no drift', drifted: f.drifted, rule };
}

/** Reference against live shares of a feature, one bar pair per bin or category. */
export function distributionBins(f: FeatureDrift): Bin[] {
  const d = f.distribution;
  return d.labels.map((label, i) => ({ label, value: d.reference[i] ?? 0, compare: d.current[i] ?? 0 }));
}

const percent = (v: number): string => `${Math.round(v * 1000) / 10}%`;

/** The sentence that sums a report up: dataset drift or not, and how many features drifted. */
export function summaryOf(r: DriftReport): string {
  if (r.status === 'not_enough_data') return r.message ?? `not enough data: ${r.current_rows} row(s) in the window, at least ${r.min_window} needed`;
  const drifted = r.drifted_features ?? r.features.filter((f) => f.drifted).length;
  const share = r.share_drifted ?? (r.n_features === 0 ? 0 : drifted / r.n_features);
  const head = r.dataset_drift === true ? 'dataset drift detected' : 'no dataset drift';
  return `${head}: ${drifted} of ${r.n_features} feature${r.n_features === 1 ? '' : 's'} drifted (${percent(share)}; dataset drift from ${percent(r.share_threshold)})`;
}

/** Which rows a report covers, in words. */
export function windowOf(r: DriftReport): string {
  const source = r.window.source === 'request' ? 'rows sent in the request' : 'logged predictions';
  if (r.window.since !== undefined) return `${source} since ${r.window.since}`;
  return r.window.rows === undefined ? source : `latest ${r.window.rows} ${source}`;
}

/**
 * Where the reference comes from, in words: a trained model's training split (of the dataset it
 * was trained on, when known), or a dataset version set with `PUT /drift/{model}/reference`.
 */
export function referenceOf(r: DriftReport): string {
  const d = r.reference.dataset;
  const dataset = d === null ? undefined : `dataset ${d.name} version ${d.version}`;
  const from = r.reference.source === 'training' ? (dataset === undefined ? 'training split' : `training split of ${dataset}`) : (dataset ?? r.reference.source);
  return `${r.reference.rows} rows (${from})`;
}

export interface HistoryPoint {
  /** Seconds since the epoch (the chart's time axis). */
  readonly x: number;
  readonly y: number | null;
}

/**
 * The share of drifted features over time, oldest first (the route sends newest first); reports
 * without a test (not enough data) are gaps.
 */
export function historyPoints(reports: readonly DriftReport[]): HistoryPoint[] {
  return reports
    .map((r) => ({ x: Date.parse(r.computed_at) / 1000, y: r.status === 'ok' ? r.share_drifted : null }))
    .filter((p) => Number.isFinite(p.x))
    .sort((a, b) => a.x - b.x);
}

/** The names of a report's drifted features, in the report's order. */
export const driftedFeatures = (r: DriftReport): string[] => r.features.filter((f) => f.drifted).map((f) => f.feature);

/**
 * The window field read for `?window=`: empty = the server's default (DRIFT_WINDOW); otherwise a
 * whole number from 1 to {@link MAX_WINDOW}, or the reason it is not one (nothing is sent then).
 */
export function readWindow(text: string): { readonly window?: number; readonly invalid?: string } {
  const t = text.trim();
  if (t === '') return {};
  const n = Number(t);
  if (!/^\d+$/.test(t) || n < 1 || n > MAX_WINDOW) return { invalid: `the window must be a whole number of rows from 1 to ${MAX_WINDOW}` };
  return { window: n };
}
