/**
 * The per-feature report without a server: Evidently's default test choice by reference size and
 * feature kind, the categorical signals (unseen rate, chi-square, Z-test, Jensen-Shannon), PSI on
 * request, and columns that are empty, constant or missing never breaking the report.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareFeatures, type DriftReference, type LiveColumn } from '../../src/drift/report.ts';
import { categoricalReference, numericReference } from '../../src/training/pipeline-reference.ts';

function normalSample(n: number, seed: number, mean = 0, sd = 1): Float64Array {
  let s = seed;
  const u = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s + 0.5) / 2147483648;
  };
  return Float64Array.from({ length: n }, () => mean + sd * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

function catReference(values: string[]) {
  const labels = [...new Set(values)];
  return categoricalReference(Float64Array.from(values, (v) => labels.indexOf(v)), labels);
}

const repeat = (pattern: string[], n: number): string[] => Array.from({ length: n }, (_, i) => pattern[i % pattern.length]!);

describe('drift report', { timeout: 60_000 }, () => {
  test('small references: KS, chi-square and Z; large: Wasserstein and Jensen-Shannon', () => {
    const small: DriftReference = {
      rows: 500,
      feature_names: ['x', 'color', 'flag'],
      features: { x: numericReference(normalSample(500, 1)), color: catReference(repeat(['red', 'green', 'blue'], 500)), flag: catReference(repeat(['yes', 'no'], 500)) },
    };
    const live = new Map<string, LiveColumn>([
      ['x', { type: 'numeric', values: normalSample(300, 2, 1) }],
      ['color', { type: 'categorical', values: repeat(['red', 'red', 'red', 'green', 'blue', 'purple'], 300) }],
      ['flag', { type: 'categorical', values: repeat(['yes', 'no'], 300) }],
    ]);
    const r = compareFeatures(small, live, 300, { shareThreshold: 0.5 });
    const [x, color, flag] = r.features;
    assert.equal(x!.method, 'ks');
    assert.ok(x!.drifted && x!.p_value! < 1e-10);
    assert.equal(color!.method, 'chisquare');
    assert.equal(color!.drifted, true);
    assert.equal(color!.unseen_rate, round(50 / 300));
    assert.equal(flag!.method, 'z');
    assert.equal(flag!.drifted, false);
    assert.equal(flag!.p_value, 1);
    assert.equal(r.drifted_features, 2);
    assert.equal(r.dataset_drift, true);

    const large: DriftReference = {
      rows: 5000,
      feature_names: ['x', 'color'],
      features: { x: numericReference(normalSample(5000, 3)), color: catReference(repeat(['red', 'green', 'blue'], 5000)) },
    };
    const calm = compareFeatures(large, new Map<string, LiveColumn>([['x', { type: 'numeric', values: normalSample(2000, 4) }], ['color', { type: 'categorical', values: repeat(['red', 'green', 'blue'], 2000) }]]), 2000, { shareThreshold: 0.5 });
    assert.deepEqual(calm.features.map((f) => f.method), ['wasserstein', 'jensenshannon']);
    assert.deepEqual(calm.features.map((f) => f.drifted), [false, false]);
    assert.equal(calm.features[0]!.p_value, null);
    assert.equal(calm.dataset_drift, false);
  });

  test('PSI on request uses the reference bins, with overflow bins for values outside the training range', () => {
    const ref: DriftReference = { rows: 2000, feature_names: ['x'], features: { x: numericReference(normalSample(2000, 5)) } };
    const out = compareFeatures(ref, new Map<string, LiveColumn>([['x', { type: 'numeric', values: normalSample(500, 6, 10) }]]), 500, { shareThreshold: 0.5, method: 'psi' });
    const x = out.features[0]!;
    assert.equal(x.method, 'psi');
    assert.equal(x.drifted, true);
    assert.equal(x.distribution.current[x.distribution.current.length - 1], 1);
    assert.equal(x.distribution.labels.length, x.distribution.reference.length);
  });

  test('empty, constant, missing and few-valued columns never break the report', () => {
    const ref: DriftReference = {
      rows: 100,
      feature_names: ['const', 'empty_ref', 'missing', 'few', 'all_null'],
      features: {
        const: numericReference(new Float64Array(100).fill(3)),
        empty_ref: numericReference(new Float64Array(100).fill(Number.NaN)),
        missing: numericReference(normalSample(100, 7)),
        few: numericReference(Float64Array.from({ length: 100 }, (_, i) => i % 3)),
        all_null: catReference(repeat(['a', 'b'], 100)),
      },
    };
    const live = new Map<string, LiveColumn>([
      ['const', { type: 'numeric', values: new Float64Array(80).fill(3) }],
      ['empty_ref', { type: 'numeric', values: normalSample(80, 8) }],
      ['few', { type: 'numeric', values: Float64Array.from({ length: 80 }, (_, i) => i % 3) }],
      ['all_null', { type: 'categorical', values: new Array<null>(80).fill(null) }],
    ]);
    const r = compareFeatures(ref, live, 80, { shareThreshold: 0.5 });
    const by = Object.fromEntries(r.features.map((f) => [f.feature, f]));
    assert.equal(by['const']!.drifted, false);
    assert.equal(by['const']!.method, 'z');
    assert.equal(by['empty_ref']!.method, null);
    assert.equal(by['empty_ref']!.note, 'no reference values');
    assert.equal(by['missing']!.null_rate, 1);
    assert.equal(by['missing']!.note, 'no live values');
    assert.equal(by['few']!.method, 'chisquare');
    assert.equal(by['few']!.drifted, false);
    assert.equal(by['all_null']!.unseen_rate, null);
    assert.equal(by['all_null']!.drifted, false);
    assert.equal(r.dataset_drift, false);
    // Every number is JSON-safe.
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(r)));
    assert.ok(!JSON.stringify(r).includes('NaN'));
  });
});

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
