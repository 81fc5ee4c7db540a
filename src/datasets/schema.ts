/**
 * Column schema and per-column statistics of a table. The result is plain JSON (no `NaN`, no typed
 * arrays) so it can be stored beside a dataset version and returned by the API as is; the drift
 * monitor and the trainers read the same shape.
 */
import { quantileSorted, sortedPresentValues } from '../util/stats.ts';
import type { Column, ColumnType, Table } from './table.ts';

/** Quantiles reported for numeric columns (linear interpolation between order statistics). */
export interface Quantiles {
  readonly p01: number;
  readonly p05: number;
  readonly p25: number;
  readonly p50: number;
  readonly p75: number;
  readonly p95: number;
  readonly p99: number;
}

/** One value and how many rows hold it. */
export interface ValueCount<V> {
  readonly value: V;
  readonly count: number;
}

/** Statistics of a numeric column. `null` where undefined because no value is present. */
export interface NumericStats {
  /** Non-missing cells. */
  readonly count: number;
  /** Missing cells. */
  readonly missing: number;
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
  /** Sample standard deviation (n - 1 denominator); 0 for a single value. */
  readonly std: number | null;
  readonly quantiles: Quantiles | null;
  /** Number of distinct non-missing values (exact: computed on the sorted values). */
  readonly distinct: number;
  /** True when every present value is an integer (a hint for classification targets). */
  readonly integer: boolean;
  /**
   * Counts of each value, most frequent first, only when there are at most
   * `NUMERIC_VALUE_COUNTS_MAX` distinct values (class labels, ordinal codes).
   */
  readonly valueCounts?: readonly ValueCount<number>[];
}

/** Statistics of a categorical or boolean column (boolean values are `"true"` / `"false"`). */
export interface CategoricalStats {
  readonly count: number;
  readonly missing: number;
  readonly distinct: number;
  /** The most frequent values (at most `TOP_CATEGORIES`), by count descending then value. */
  readonly top: readonly ValueCount<string>[];
  /** Rows holding a value not listed in `top`. */
  readonly otherCount: number;
}

export type ColumnStats = NumericStats | CategoricalStats;

/** One column of a schema: its type decides the shape of `stats`. */
export type ColumnSchema =
  | { readonly name: string; readonly type: 'numeric'; readonly stats: NumericStats }
  | { readonly name: string; readonly type: 'categorical' | 'boolean'; readonly stats: CategoricalStats };

/** Schema of a dataset version: column names, types and statistics, in table order. */
export interface DatasetSchema {
  readonly columns: readonly ColumnSchema[];
}

/** Most categories listed in `top`. */
export const TOP_CATEGORIES = 50;
/** Numeric columns with at most this many distinct values also get `valueCounts`. */
export const NUMERIC_VALUE_COUNTS_MAX = 50;


/** Statistics of numeric values (`NaN` = missing). */
export function numericStats(values: Float64Array): NumericStats {
  const sorted = sortedPresentValues(values);
  const count = sorted.length;
  const missing = values.length - count;
  if (count === 0) {
    return { count, missing, min: null, max: null, mean: null, std: null, quantiles: null, distinct: 0, integer: false };
  }
  // Two passes (mean, then squared deviations) stay accurate where the one-pass formula cancels.
  let sum = 0;
  for (let i = 0; i < count; i++) sum += sorted[i] ?? 0;
  const mean = sum / count;
  let ss = 0;
  let integer = true;
  let distinct = 0;
  let prev = Number.NaN;
  for (let i = 0; i < count; i++) {
    const v = sorted[i] ?? 0;
    const d = v - mean;
    ss += d * d;
    if (integer && !Number.isInteger(v)) integer = false;
    if (v !== prev) distinct++;
    prev = v;
  }
  const std = count > 1 ? Math.sqrt(ss / (count - 1)) : 0;
  const quantiles: Quantiles = {
    p01: quantileSorted(sorted, 0.01),
    p05: quantileSorted(sorted, 0.05),
    p25: quantileSorted(sorted, 0.25),
    p50: quantileSorted(sorted, 0.5),
    p75: quantileSorted(sorted, 0.75),
    p95: quantileSorted(sorted, 0.95),
    p99: quantileSorted(sorted, 0.99),
  };
  const stats: NumericStats = {
    count,
    missing,
    min: sorted[0] ?? null,
    max: sorted[count - 1] ?? null,
    mean,
    std,
    quantiles,
    distinct,
    integer,
  };
  if (distinct > NUMERIC_VALUE_COUNTS_MAX) return stats;
  const counts: ValueCount<number>[] = [];
  let run = 0;
  for (let i = 0; i < count; i++) {
    const v = sorted[i] ?? 0;
    run++;
    if (i === count - 1 || sorted[i + 1] !== v) {
      counts.push({ value: v, count: run });
      run = 0;
    }
  }
  counts.sort((a, b) => b.count - a.count || a.value - b.value);
  return { ...stats, valueCounts: counts };
}

function topOf(counts: Map<string, number>, present: number, missing: number): CategoricalStats {
  const entries = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const top = entries.slice(0, TOP_CATEGORIES).map(([value, count]) => ({ value, count }));
  let listed = 0;
  for (const t of top) listed += t.count;
  return { count: present, missing, distinct: counts.size, top, otherCount: present - listed };
}

/** Statistics of categorical values (`null` = missing). */
export function categoricalStats(values: readonly (string | null)[]): CategoricalStats {
  const counts = new Map<string, number>();
  let missing = 0;
  for (const v of values) {
    if (v === null) {
      missing++;
    } else {
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
  }
  return topOf(counts, values.length - missing, missing);
}

/** Statistics of boolean values (1 true, 0 false, `NaN` missing), as categories `"true"`/`"false"`. */
export function booleanStats(values: Float64Array): CategoricalStats {
  let t = 0;
  let f = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === 1) t++;
    else if (v === 0) f++;
  }
  const counts = new Map<string, number>();
  if (t > 0) counts.set('true', t);
  if (f > 0) counts.set('false', f);
  return topOf(counts, t + f, values.length - t - f);
}

/** Statistics of one column, in the shape its type calls for. */
export function columnSchema(column: Column): ColumnSchema {
  switch (column.type) {
    case 'numeric':
      return { name: column.name, type: 'numeric', stats: numericStats(column.values) };
    case 'boolean':
      return { name: column.name, type: 'boolean', stats: booleanStats(column.values) };
    case 'categorical':
      return { name: column.name, type: 'categorical', stats: categoricalStats(column.values) };
  }
}

/** Schema (types and statistics of every column) of a table. */
export function inferSchema(table: Table): DatasetSchema {
  return { columns: table.columns.map(columnSchema) };
}

/** The column types of a schema by name, e.g. to check a training request against a version. */
export function schemaTypes(schema: DatasetSchema): Map<string, ColumnType> {
  return new Map(schema.columns.map((c) => [c.name, c.type]));
}
