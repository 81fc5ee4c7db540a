/**
 * Reading the server's own `/metrics` (Prometheus text format) in the browser: samples by name and
 * labels, rates between two scrapes, and quantiles of histograms the way PromQL's
 * `histogram_quantile` estimates them (linear within the bucket).
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Scrape {
  /** Milliseconds (client clock) when the scrape was read. */
  readonly at: number;
  readonly samples: readonly Sample[];
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string, at: number): Scrape {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    if (m[2] !== undefined) {
      for (const l of m[2].matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const v = m[3]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    samples.push({ name: m[1]!, labels, value });
  }
  return { at, samples };
}

/** Sum of a metric's samples, grouped by one label (or all together with `by` undefined). */
export function sumBy(scrape: Scrape, name: string, by?: string, where: (labels: Readonly<Record<string, string>>) => boolean = () => true): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of scrape.samples) {
    if (s.name !== name || !where(s.labels)) continue;
    const key = by === undefined ? '' : (s.labels[by] ?? '');
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** Per-second increase of a counter between two scrapes, by a label (counter resets count from zero). */
export function rateBy(older: Scrape, newer: Scrape, name: string, by?: string): Map<string, number> {
  const a = sumBy(older, name, by);
  const b = sumBy(newer, name, by);
  const seconds = Math.max((newer.at - older.at) / 1000, 1e-3);
  const out = new Map<string, number>();
  for (const [k, v] of b) {
    const before = a.get(k) ?? 0;
    out.set(k, (v >= before ? v - before : v) / seconds);
  }
  return out;
}

/** Cumulative bucket counts (`le` -> count) of a histogram, by a label. */
export function bucketsBy(scrape: Scrape, name: string, by?: string): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const s of scrape.samples) {
    if (s.name !== `${name}_bucket`) continue;
    const key = by === undefined ? '' : (s.labels[by] ?? '');
    const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
    let buckets = out.get(key);
    if (buckets === undefined) out.set(key, (buckets = new Map()));
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  return out;
}

/** Bucket counts of `newer` minus those of `older` (observations between the two scrapes). */
export function bucketDelta(older: Map<number, number> | undefined, newer: Map<number, number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [le, n] of newer) out.set(le, Math.max(0, n - (older?.get(le) ?? 0)));
  return out;
}

/** The q-quantile of cumulative buckets, interpolated linearly inside its bucket; undefined without observations. */
export function histogramQuantile(q: number, buckets: Map<number, number>): number | undefined {
  const sorted = [...buckets.entries()].sort((x, y) => x[0] - y[0]);
  const total = sorted[sorted.length - 1]?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = count - prevCount;
      return inBucket <= 0 ? le : prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** Total observations of cumulative buckets. */
export const observations = (buckets: Map<number, number> | undefined): number => (buckets === undefined ? 0 : Math.max(0, ...buckets.values()));
