/**
 * Counters and histograms for the request hot path, registered in a prom-client `Registry` like
 * prom-client's own metrics (same exposition, same cluster aggregation through `get()`).
 *
 * prom-client hashes the label set on every `inc`/`observe`, even through a `labels()` child, and
 * searches the buckets of a histogram from the start; at several metrics per prediction that was a
 * measurable share of a request's CPU. Here a child is resolved once per label set and then only
 * adds to numbers it owns: an increment is one addition, an observation one short bucket search.
 */
import type { Registry } from 'prom-client';

/** What `get()` returns: the shape prom-client's registry formats and aggregates. */
export interface MetricSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
}

type Labels = Record<string, string>;

/** A counter child: `inc()` adds 1, `inc(n)` adds n. */
export interface FastCounterChild {
  inc(value?: number): void;
}

/** A histogram child. */
export interface FastHistogramChild {
  observe(value: number): void;
}

interface MetricConfig<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
  readonly registers: readonly Registry[];
}

abstract class FastMetric<L extends string, C> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  protected readonly labelNames: readonly L[];
  protected readonly children = new Map<string, { labels: Labels; child: C }>();

  constructor(config: MetricConfig<L>) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames ?? [];
    for (const r of config.registers) r.registerMetric(this as never);
  }

  /** The child of one label set, values in `labelNames` order (cache it on hot paths). */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new Error(`metric ${this.name} takes ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (entry === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      entry = { labels, child: this.newChild() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  /** Forgets every label set (prom-client's `registry.resetMetrics()` calls this). */
  reset(): void {
    this.children.clear();
    if (this.labelNames.length === 0) this.labels();
  }

  protected abstract newChild(): C;
}

class CounterChild implements FastCounterChild {
  value = 0;
  inc(value = 1): void {
    this.value += value;
  }
}

/** A counter (`type: counter`). */
export class FastCounter<L extends string = never> extends FastMetric<L, CounterChild> {
  readonly type = 'counter' as const;

  constructor(config: MetricConfig<L>) {
    super(config);
    // Like prom-client, a counter without labels is exposed (as 0) before its first increment.
    if (this.labelNames.length === 0) this.labels();
  }

  /** Increments the counter without labels. */
  inc(value = 1): void {
    this.labels().inc(value);
  }

  protected newChild(): CounterChild {
    return new CounterChild();
  }

  get(): Promise<MetricSnapshot> {
    const values: MetricSnapshot['values'] = [];
    for (const { labels, child } of this.children.values()) values.push({ labels: { ...labels }, value: child.value });
    return Promise.resolve({ name: this.name, help: this.help, type: 'counter', aggregator: this.aggregator, values });
  }
}

class HistogramChild implements FastHistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** A histogram (`type: histogram`) with fixed upper bounds. */
export class FastHistogram<L extends string = never> extends FastMetric<L, HistogramChild> {
  readonly type = 'histogram' as const;
  private readonly bounds: Float64Array;

  constructor(config: MetricConfig<L> & { readonly buckets: readonly number[] }) {
    super(config);
    this.bounds = Float64Array.from([...config.buckets].sort((a, b) => a - b));
    if (this.labelNames.length === 0) this.labels();
  }

  /** Observes a value without labels. */
  observe(value: number): void {
    this.labels().observe(value);
  }

  protected newChild(): HistogramChild {
    return new HistogramChild(this.bounds);
  }

  get(): Promise<MetricSnapshot> {
    const values: MetricSnapshot['values'] = [];
    for (const { labels, child } of this.children.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += child.counts[i]!;
        values.push({ labels: { le: this.bounds[i]!, ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { le: '+Inf', ...labels }, value: child.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...labels }, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: child.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', aggregator: this.aggregator, values });
  }
}
