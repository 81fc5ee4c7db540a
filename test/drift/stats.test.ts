import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  chi2Sf,
  chiSquare,
  jensenShannonDistance,
  kolmogorovSmirnovSf,
  ks2Samp,
  normalSf,
  populationStabilityIndex,
  proportionZTest,
  wassersteinDistance,
} from '../../src/drift/stats.ts';

/** Values computed with scipy by fixtures/make.py. */
const fx = JSON.parse(readFileSync(path.join(import.meta.dirname, 'fixtures', 'stats.json'), 'utf8')) as {
  ks_2samp: { name: string; a: number[]; b: number[]; method: 'auto' | 'exact' | 'asymp'; statistic: number; p_value: number }[];
  kstwo_sf: { n: number; x: number; sf: number }[];
  chisquare: { observed: number[]; expected: number[]; statistic: number; p_value: number }[];
  normal_sf: { z: number; sf: number }[];
  chi2_sf: { x: number; df: number; sf: number }[];
  proportion_z: { k1: number; n1: number; k2: number; n2: number; statistic: number; p_value: number }[];
  wasserstein: { a: number[]; b: number[]; distance: number }[];
  jensenshannon: { p: number[]; q: number[]; distance: number }[];
  psi: { reference: number[]; current: number[]; psi: number }[];
};

/** `actual` within a relative tolerance of `expected` (absolute near zero). */
function close(actual: number, expected: number, rel: number, what: string): void {
  const tol = Math.max(rel * Math.abs(expected), 1e-300);
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, scipy ${expected}`);
}

const sorted = (xs: number[]): Float64Array => Float64Array.from(xs).sort();

describe('drift statistics against scipy', { timeout: 60_000 }, () => {
  test('two-sample KS: statistic and p-value (exact and asymptotic, ties, unequal and tiny samples)', () => {
    for (const c of fx.ks_2samp) {
      const r = ks2Samp(sorted(c.a), sorted(c.b), c.method);
      close(r.statistic, c.statistic, 1e-12, `${c.name} statistic`);
      close(r.pValue, c.p_value, 1e-9, `${c.name} p-value`);
    }
  });

  test('a budget on the exact recursion hands wide bands to the asymptotic law', () => {
    const c = fx.ks_2samp.find((k) => k.name === 'unequal 1000 vs 2500 tiny p')!;
    const a = sorted(c.a);
    const b = sorted(c.b);
    assert.deepEqual(ks2Samp(a, b, 'auto', 1000), ks2Samp(a, b, 'asymp'));
    assert.deepEqual(ks2Samp(a, b, 'auto', 1e12), ks2Samp(a, b, 'exact'));
  });

  test('one-sample KS survival function (kstwo.sf) across its regimes', () => {
    for (const c of fx.kstwo_sf) close(kolmogorovSmirnovSf(c.n, c.x), c.sf, 1e-9, `kstwo.sf(${c.x}, ${c.n})`);
  });

  test('chi-square goodness of fit and its survival function', () => {
    for (const c of fx.chisquare) {
      const r = chiSquare(c.observed, c.expected);
      close(r.statistic, c.statistic, 1e-12, 'chi-square statistic');
      close(r.pValue, c.p_value, 1e-9, `chi-square p-value ${JSON.stringify(c.observed)}`);
    }
    for (const c of fx.chi2_sf) close(chi2Sf(c.x, c.df), c.sf, 1e-9, `chi2.sf(${c.x}, ${c.df})`);
  });

  test('normal tail and the two-proportion Z-test', () => {
    for (const c of fx.normal_sf) close(normalSf(c.z), c.sf, 1e-9, `norm.sf(${c.z})`);
    for (const c of fx.proportion_z) {
      const r = proportionZTest(c.k1, c.n1, c.k2, c.n2);
      close(r.statistic, c.statistic, 1e-12, 'z statistic');
      close(r.pValue, c.p_value, 1e-7, `z p-value ${c.k1}/${c.n1} vs ${c.k2}/${c.n2}`);
    }
  });

  test('Wasserstein distance, Jensen-Shannon distance, PSI', () => {
    for (const c of fx.wasserstein) close(wassersteinDistance(sorted(c.a), sorted(c.b)), c.distance, 1e-10, 'wasserstein');
    for (const c of fx.jensenshannon) close(jensenShannonDistance(c.p, c.q), c.distance, 1e-10, `jensenshannon ${JSON.stringify(c.p)}`);
    for (const c of fx.psi) close(populationStabilityIndex(c.reference, c.current), c.psi, 1e-10, `psi ${JSON.stringify(c.reference)}`);
  });

  test('degenerate inputs give defined answers', () => {
    assert.throws(() => ks2Samp(new Float64Array(0), sorted([1])), RangeError);
    assert.deepEqual(ks2Samp(sorted([2, 2, 2]), sorted([2, 2])), { statistic: 0, pValue: 1 });
    assert.deepEqual(proportionZTest(0, 10, 0, 20), { statistic: 0, pValue: 1 });
    assert.ok(Number.isNaN(jensenShannonDistance([0, 0], [1, 1])));
    assert.equal(wassersteinDistance(sorted([1, 1]), sorted([1])), 0);
  });
});
