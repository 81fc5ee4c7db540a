import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ingestCsv } from '../../src/datasets/csv-ingest.ts';
import { booleanStats, categoricalStats, inferSchema, numericStats, TOP_CATEGORIES } from '../../src/datasets/schema.ts';
import { quantileSorted, sortedPresentValues } from '../../src/util/stats.ts';

void describe('numericStats', () => {
  void test('hand-checked small column', () => {
    // Present values 1, 2, 2, 4, 6 (two missing). mean 3, squared deviations 4+1+1+1+9 = 16,
    // sample variance 16/4 = 4, std 2. Quantile p at position 4p: p25 -> 2, p50 -> 2, p75 -> 4,
    // p05 -> 1 + 0.2 * (2 - 1) = 1.2, p95 -> 4 + 0.8 * (6 - 4) = 5.6.
    const s = numericStats(new Float64Array([4, NaN, 2, 6, 1, NaN, 2]));
    assert.equal(s.count, 5);
    assert.equal(s.missing, 2);
    assert.equal(s.min, 1);
    assert.equal(s.max, 6);
    assert.equal(s.mean, 3);
    assert.equal(s.std, 2);
    assert.equal(s.distinct, 4);
    assert.equal(s.integer, true);
    assert.ok(s.quantiles);
    assert.equal(s.quantiles.p25, 2);
    assert.equal(s.quantiles.p50, 2);
    assert.equal(s.quantiles.p75, 4);
    assert.ok(Math.abs(s.quantiles.p05 - 1.2) < 1e-12);
    assert.ok(Math.abs(s.quantiles.p95 - 5.6) < 1e-12);
    assert.ok(Math.abs(s.quantiles.p01 - 1.04) < 1e-12);
    assert.ok(Math.abs(s.quantiles.p99 - 5.92) < 1e-12);
    assert.deepEqual(s.valueCounts, [
      { value: 2, count: 2 },
      { value: 1, count: 1 },
      { value: 4, count: 1 },
      { value: 6, count: 1 },
    ]);
  });

  void test('no values: nulls, and JSON-safe', () => {
    const s = numericStats(new Float64Array([NaN, NaN]));
    assert.deepEqual(s, { count: 0, missing: 2, min: null, max: null, mean: null, std: null, quantiles: null, distinct: 0, integer: false });
    assert.equal(numericStats(new Float64Array([3.5])).std, 0);
  });

  void test('many distinct values: no valueCounts, not integer', () => {
    const v = Float64Array.from({ length: 100 }, (_, i) => i / 2);
    const s = numericStats(v);
    assert.equal(s.distinct, 100);
    assert.equal(s.integer, false);
    assert.equal(s.valueCounts, undefined);
    assert.equal(s.quantiles?.p50, 24.75);
  });

  void test('the radix sort used for large columns agrees with a plain sort', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const v = Float64Array.from({ length: 100_000 }, () => (rand() - 0.5) * Math.exp(rand() * 40 - 20));
    v[10] = NaN;
    v[11] = -0;
    v[12] = 0;
    v[13] = -1e308;
    v[14] = 5e-324;
    const got = sortedPresentValues(v);
    const want = Float64Array.from(v.filter((x) => !Number.isNaN(x))).sort();
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.ok(Object.is(got[i], want[i]), `index ${i}`);
  });

  void test('the radix sort of float32 values (model inputs) agrees with a plain sort', () => {
    let seed = 11;
    const rand = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const v = Float64Array.from({ length: 5000 }, () => Math.fround((rand() - 0.5) * Math.exp(rand() * 40 - 20)));
    v.set([NaN, -0, 0, Infinity, -Infinity, Math.fround(1e-45), -Math.fround(1e-45), 3.4028234663852886e38, 0, -0], 100);
    const got = sortedPresentValues(v);
    const want = Float64Array.from(v.filter((x) => !Number.isNaN(x))).sort();
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.ok(Object.is(got[i], want[i]), `index ${i}`);
  });

  void test('quantileSorted interpolates linearly', () => {
    assert.equal(quantileSorted(new Float64Array([10, 20]), 0.5), 15);
    assert.equal(quantileSorted(new Float64Array([10]), 0.99), 10);
    assert.ok(Number.isNaN(quantileSorted(new Float64Array(0), 0.5)));
  });
});

void describe('categorical and boolean stats', () => {
  void test('top values by count then value, other count beyond the cap', () => {
    const values: (string | null)[] = ['b', 'a', 'b', null, 'c', 'a', 'b'];
    for (let i = 0; i < TOP_CATEGORIES + 5; i++) values.push(`z${String(i).padStart(3, '0')}`);
    const s = categoricalStats(values);
    assert.equal(s.count, values.length - 1);
    assert.equal(s.missing, 1);
    assert.equal(s.distinct, 3 + TOP_CATEGORIES + 5);
    assert.equal(s.top.length, TOP_CATEGORIES);
    assert.deepEqual(s.top.slice(0, 4), [
      { value: 'b', count: 3 },
      { value: 'a', count: 2 },
      { value: 'c', count: 1 },
      { value: 'z000', count: 1 },
    ]);
    // Listed: b, a, c and z000..z046 (47 singles); left over: z047..z054 = 8 rows.
    assert.equal(s.otherCount, 8);
  });

  void test('booleans are counted as "true"/"false"', () => {
    assert.deepEqual(booleanStats(new Float64Array([1, 0, 1, NaN])), {
      count: 3,
      missing: 1,
      distinct: 2,
      top: [
        { value: 'true', count: 2 },
        { value: 'false', count: 1 },
      ],
      otherCount: 0,
    });
  });
});

void describe('inferSchema', () => {
  void test('one entry per column, in order, JSON round-trips unchanged', async () => {
    const { table, schema } = await ingestCsv('n,c,b\n1,x,yes\n2,,no\nNA,x,\n');
    assert.deepEqual(inferSchema(table), schema);
    assert.deepEqual(
      schema.columns.map((c) => [c.name, c.type, c.stats.count, c.stats.missing]),
      [
        ['n', 'numeric', 2, 1],
        ['c', 'categorical', 2, 1],
        ['b', 'boolean', 2, 1],
      ],
    );
    assert.deepEqual(JSON.parse(JSON.stringify(schema)), schema);
  });
});
