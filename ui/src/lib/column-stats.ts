/**
 * Column statistics of a dataset version, and the histogram bars drawn from them. The API types
 * `stats` as an open object (its fields depend on the column type), documented as: numeric: count,
 * missing, min, max, mean, std, quantiles (p01..p99), distinct, integer, valueCounts (when at most
 * 50 distinct values); categorical/boolean: count, missing, distinct, top, otherCount.
 */
import type { Bin } from './bins.ts';

export interface NumericStats {
  readonly count: number;
  readonly missing: number;
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
  readonly std: number | null;
  readonly distinct: number;
  readonly quantiles: Readonly<Record<'p01' | 'p05' | 'p25' | 'p50' | 'p75' | 'p95' | 'p99', number>> | null;
  readonly valueCounts?: readonly { value: number; count: number }[];
}

export interface CategoricalStats {
  readonly count: number;
  readonly missing: number;
  readonly distinct: number;
  readonly top?: readonly { value: string; count: number }[];
  readonly otherCount?: number;
}

const QUANTILES = [
  ['p01', 0.01],
  ['p05', 0.05],
  ['p25', 0.25],
  ['p50', 0.5],
  ['p75', 0.75],
  ['p95', 0.95],
  ['p99', 0.99],
] as const;

/**
 * Bars for a column: exact counts where the API lists them (categories, numeric columns with few
 * distinct values), otherwise the share of rows between successive quantiles (min, p01 … p99,
 * max), drawn as density. `exact` says which.
 */
export function histogramOf(type: string, raw: Record<string, unknown>): { bins: Bin[]; exact: boolean } {
  if (type === 'numeric') {
    const s = raw as unknown as NumericStats;
    if (s.valueCounts !== undefined && s.valueCounts.length > 0) {
      return { bins: [...s.valueCounts].sort((a, b) => a.value - b.value).map((v) => ({ label: String(v.value), value: v.count })), exact: true };
    }
    if (s.quantiles === null || s.min === null || s.max === null || s.count === 0) return { bins: [], exact: true };
    const points: [number, number][] = [[s.min, 0], ...QUANTILES.map(([k, p]) => [s.quantiles![k], p] as [number, number]), [s.max, 1]];
    const bins: Bin[] = [];
    for (let i = 1; i < points.length; i++) {
      const [x0, p0] = points[i - 1]!;
      const [x1, p1] = points[i]!;
      const share = (p1 - p0) * s.count;
      const last = bins[bins.length - 1];
      // Equal quantiles (many equal values): fold the share into the previous bin.
      if (x1 <= x0) {
        if (last !== undefined) bins[bins.length - 1] = { ...last, value: last.value + share };
        continue;
      }
      bins.push({ label: `${x0}–${x1}`, value: share, start: x0, end: x1 });
    }
    return { bins, exact: false };
  }
  const c = raw as unknown as CategoricalStats;
  const bins: Bin[] = (c.top ?? []).map((t) => ({ label: t.value, value: t.count }));
  if ((c.otherCount ?? 0) > 0) bins.push({ label: 'other', value: c.otherCount! });
  return { bins, exact: true };
}
