import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../../src/platform/fast-metrics.ts';

describe('fast metrics', () => {
  test('a counter exposes every label set and its total', async () => {
    const registry = new Registry();
    const c = new FastCounter({ name: 'things_total', help: 'Things', labelNames: ['kind', 'where'], registers: [registry] });
    c.labels('a', 'x').inc();
    c.labels('a', 'x').inc(2);
    c.labels('b', 'y').inc(0.5);
    const text = await registry.metrics();
    assert.match(text, /# HELP things_total Things\n# TYPE things_total counter/);
    assert.match(text, /things_total\{kind="a",where="x"\} 3\n/);
    assert.match(text, /things_total\{kind="b",where="y"\} 0.5\n/);
  });

  test('a counter without labels shows 0 before the first increment', async () => {
    const registry = new Registry();
    const c = new FastCounter({ name: 'hits_total', help: 'Hits', registers: [registry] });
    assert.match(await registry.metrics(), /^hits_total 0$/m);
    c.inc();
    c.inc(4);
    assert.match(await registry.metrics(), /^hits_total 5$/m);
    registry.resetMetrics();
    assert.match(await registry.metrics(), /^hits_total 0$/m);
  });

  test('a wrong number of label values is refused', () => {
    const c = new FastCounter({ name: 'x_total', help: 'x', labelNames: ['a'], registers: [new Registry()] });
    assert.throws(() => c.labels(), /takes 1 label values, got 0/);
  });

  test('a histogram renders exactly like prom-client for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const buckets = [0.001, 0.01, 0.1, 1];
    const h = new FastHistogram({ name: 'latency_seconds', help: 'Latency', labelNames: ['endpoint'], buckets, registers: [ours] });
    const ref = new Histogram({ name: 'latency_seconds', help: 'Latency', labelNames: ['endpoint'], buckets, registers: [theirs] });
    // Values on a bound belong to that bucket (le = less or equal).
    for (const [endpoint, v] of [['/a', 0.0005], ['/a', 0.01], ['/a', 0.5], ['/a', 7], ['/b', 0.001]] as const) {
      h.labels(endpoint).observe(v);
      ref.labels(endpoint).observe(v);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  test('cluster aggregation adds workers up', async () => {
    const workers = [new Registry(), new Registry()];
    workers.forEach((registry, i) => {
      const c = new FastCounter({ name: 'req_total', help: 'Requests', labelNames: ['endpoint'], registers: [registry] });
      const h = new FastHistogram({ name: 'dur_seconds', help: 'Duration', labelNames: ['endpoint'], buckets: [1], registers: [registry] });
      c.labels('/p').inc(i + 1);
      h.labels('/p').observe(0.5 + i);
    });
    const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((r) => r.getMetricsAsJSON())));
    const text = await merged.metrics();
    assert.match(text, /req_total\{endpoint="\/p"\} 3/);
    assert.match(text, /dur_seconds_bucket\{le="1",endpoint="\/p"\} 1/);
    assert.match(text, /dur_seconds_bucket\{le="\+Inf",endpoint="\/p"\} 2/);
    assert.match(text, /dur_seconds_count\{endpoint="\/p"\} 2/);
  });
});
