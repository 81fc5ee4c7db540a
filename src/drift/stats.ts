/**
 * The statistics of drift tests, written here because no kept JavaScript library computes the
 * two-sample Kolmogorov-Smirnov test with exact p-values. Pure functions over numbers and typed
 * arrays; every result is checked against scipy in test/drift/stats.test.ts (fixtures made by
 * test/drift/fixtures/make.py).
 *
 * Conventions follow scipy: `ks2Samp` matches `scipy.stats.ks_2samp` (two-sided, method 'auto':
 * exact when both samples have at most 10,000 values, else the asymptotic `kstwo` distribution),
 * `chiSquare` matches `scipy.stats.chisquare`, `jensenShannonDistance` matches
 * `scipy.spatial.distance.jensenshannon` (natural logarithm) and `wassersteinDistance` matches
 * `scipy.stats.wasserstein_distance`.
 */

/** A test's statistic and, where the test has one, its p-value. */
export interface TestResult {
  readonly statistic: number;
  readonly pValue: number;
}

// ---------------------------------------------------------------------------------------------
// Special functions

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
  9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** `ln Γ(x)` for `x > 0` (Lanczos, g = 7; about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * The regularised upper incomplete gamma function `Q(a, x) = Γ(a, x) / Γ(a)`: a power series for
 * `x < a + 1`, a continued fraction (modified Lentz) above, each where it converges fast.
 */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (!Number.isFinite(x)) return 0;
  const logPrefix = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-17) break;
    }
    return Math.max(0, 1 - sum * Math.exp(logPrefix));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(logPrefix) * h;
}

/** Survival function of the chi-square distribution with `df` degrees of freedom. */
export function chi2Sf(x: number, df: number): number {
  return gammaQ(df / 2, x / 2);
}

/** Survival function of the standard normal distribution, accurate in the far tail. */
export function normalSf(z: number): number {
  if (z < 0) return 1 - normalSf(-z);
  // erfc(t) = Q(1/2, t^2) for t >= 0.
  return 0.5 * gammaQ(0.5, (z * z) / 2);
}

// ---------------------------------------------------------------------------------------------
// Two-sample Kolmogorov-Smirnov

/** `ks_2samp`'s sample size up to which method 'auto' computes the exact distribution. */
export const KS_EXACT_MAX_N = 10_000;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** The largest distance between the empirical CDFs of two ascending samples (no `NaN`). */
export function ksStatistic(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n1 = a.length;
  const n2 = b.length;
  let i = 0;
  let j = 0;
  let d = 0;
  // Walk the merged values; at each distinct value both CDFs jump past every copy of it (ties).
  while (i < n1 && j < n2) {
    const v = Math.min(a[i]!, b[j]!);
    while (i < n1 && a[i]! <= v) i++;
    while (j < n2 && b[j]! <= v) j++;
    const diff = Math.abs(i / n1 - j / n2);
    if (diff > d) d = diff;
  }
  return d;
}

/**
 * P(D >= h/n) for two samples of equal size n: the share of lattice paths that leave the band
 * |x - y| < h, summed as an alternating series of binomial ratios evaluated from the innermost
 * term outwards (Horner form), which avoids the cancellation of the plain series.
 */
function probOutsideSquare(n: number, h: number): number {
  let p = 0;
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let term = 1;
    for (let j = 0; j < h; j++) term = ((n - k * h - j) * term) / (n + k * h + j + 1);
    p = term * (1 - p);
  }
  return 2 * p;
}

/**
 * P(D >= h / lcm(m, n)) for samples of sizes m and n: one minus the share of lattice paths from
 * (0, 0) to (m, n) staying strictly inside |x/m - y/n| < h / lcm. Hodges' "inside" recursion kept
 * as the complement in every cell (Viehmann 2021, arXiv:2102.08037, scipy's
 * `_compute_outer_prob_inside_method`), so the result keeps its precision when it is tiny.
 *
 * Cell (i, j) is the average of the cell to its left and the cell below, weighted by i and j:
 * within a column each cell waits for the one below, a chain of dependent operations that decides
 * the cost (a 10,000 x 1000 lattice has a few hundred thousand cells in a calm feature's band). So
 * the weights come from a table of reciprocals (no division in the chain; results differ from
 * scipy's divisions in the last few bits), and columns are computed two at a time, the second one
 * cell behind the first, so two independent chains overlap. One array holds the column by
 * absolute row j: the band only moves up, so cells above it were never written and read as 1
 * (outside the band), and cells below it are never read again.
 */
function probOutsideBand(m0: number, n0: number, g: number, h: number): number {
  const m = Math.max(m0, n0);
  const n = Math.min(m0, n0);
  const mg = m / g;
  const ng = n / g;
  // The band of column i: rows [bandLow(i), bandHigh(i)).
  const bandLow = (i: number): number => Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n);
  const bandHigh = (i: number): number => Math.min(Math.ceil((ng * i + h) / mg), n + 1);
  const reciprocal = new Float64Array(m + n + 1);
  for (let k = 1; k <= m + n; k++) reciprocal[k] = 1 / k;
  const col = new Float64Array(n + 1).fill(1);
  col.fill(0, 0, bandHigh(0));
  let i = 1;
  for (; i < m; i += 2) {
    const a = i;
    const b = i + 1;
    const a0 = bandLow(a);
    const a1 = bandHigh(a);
    const b0 = bandLow(b);
    const b1 = bandHigh(b);
    if (a1 <= a0 || b1 <= b0) return 1;
    // The cell below the band's lowest one is outside it (complement 1); row 0 has none (weight 0).
    let va = a0 === 0 ? 0 : 1;
    let vb = b0 === 0 ? 0 : 1;
    let j = a0;
    // Column b starts at b0 >= a0: first column a alone, up to the row where b can follow.
    for (const end = Math.min(a1, b0 + 1); j < end; j++) {
      const r = reciprocal[a + j]!;
      va = col[j]! * (a * r) + va * (j * r);
      col[j] = va;
    }
    for (; j < a1; j++) {
      const r = reciprocal[a + j]!;
      va = col[j]! * (a * r) + va * (j * r);
      col[j] = va;
      const k = j - 1;
      const s = reciprocal[b + k]!;
      vb = col[k]! * (b * s) + vb * (k * s);
      col[k] = vb;
    }
    for (let k = Math.max(b0, a1 - 1); k < b1; k++) {
      const s = reciprocal[b + k]!;
      vb = col[k]! * (b * s) + vb * (k * s);
      col[k] = vb;
    }
  }
  if (i === m) {
    const a0 = bandLow(i);
    const a1 = bandHigh(i);
    if (a1 <= a0) return 1;
    let va = a0 === 0 ? 0 : 1;
    for (let j = a0; j < a1; j++) {
      const r = reciprocal[i + j]!;
      va = col[j]! * (i * r) + va * (j * r);
      col[j] = va;
    }
  }
  return col[bandHigh(m) - 1]!;
}

/** Exact p-value of the two-sided statistic `d`, or `undefined` where floating point cannot hold it. */
function ksExactPValue(n1: number, n2: number, d: number): { d: number; p: number } | undefined {
  const g = gcd(n1, n2);
  const lcm = (n1 / g) * n2;
  // scipy rounds d onto the lattice of attainable values, so the reported statistic is that one.
  const h = Math.round(d * lcm);
  const dd = h / lcm;
  if (h === 0) return { d: dd, p: 1 };
  const p = n1 === n2 ? probOutsideSquare(n1, h) : probOutsideBand(n1, n2, g, h);
  if (!(p >= 0 && p <= 1)) return undefined;
  return { d: dd, p };
}

/**
 * Two-sided two-sample KS test over ascending samples (each non-empty, no `NaN`), as scipy's
 * `ks_2samp`: exact p-value when `method` is 'exact', or 'auto' and neither sample exceeds
 * {@link KS_EXACT_MAX_N}; otherwise the distribution of the one-sample statistic for the
 * effective size `round(mn / (m + n))`.
 * @param maxExactCells most lattice cells the exact recursion for unequal sizes may visit (about
 *   the larger size times the band width 2 d min(m, n)); beyond it the asymptotic law answers, as
 *   scipy's does beyond 10,000 values. Default: no limit (scipy's choice exactly). Drift reports set
 *   one: a wide band means a large statistic, whose p-value is tiny either way.
 */
export function ks2Samp(a: ArrayLike<number>, b: ArrayLike<number>, method: 'auto' | 'exact' | 'asymp' = 'auto', maxExactCells = Number.POSITIVE_INFINITY): TestResult {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) throw new RangeError('ks2Samp needs two non-empty samples');
  let d = ksStatistic(a, b);
  const exactWanted = method === 'exact' || (method === 'auto' && Math.max(n1, n2) <= KS_EXACT_MAX_N);
  const g = gcd(n1, n2);
  // Like scipy, fall back to the asymptotic law when the lattice is too fine or floating point fails.
  const big0 = Math.max(n1, n2);
  const small0 = Math.min(n1, n2);
  const cells = n1 === n2 ? 0 : big0 * Math.min(small0 + 1, 2 * d * small0 + 2);
  if (exactWanted && n1 / g < 2 ** 31 / (n2 / g) && cells <= maxExactCells) {
    const exact = ksExactPValue(n1, n2, d);
    if (exact !== undefined) return { statistic: exact.d, pValue: exact.p };
  }
  const big = Math.max(n1, n2);
  const small = Math.min(n1, n2);
  const en = Math.round((big * small) / (big + small));
  d = Math.min(Math.max(d, 0), 1);
  return { statistic: d, pValue: Math.min(Math.max(kolmogorovSmirnovSf(en, d), 0), 1) };
}

/** `ln(n! / n^n)`. */
function logFactorialOverPower(n: number): number {
  return logGamma(n + 1) - n * Math.log(n);
}

/**
 * Smirnov's one-sided survival function P(D+_n >= x), exactly (Birnbaum-Tingey sum, each term
 * in logarithms so large n neither overflows nor underflows).
 */
export function smirnovSf(n: number, x: number): number {
  if (x <= 0) return 1;
  if (x >= 1) return 0;
  const jmax = Math.floor(n * (1 - x));
  const lnN = logGamma(n + 1);
  let sum = 0;
  for (let j = 0; j <= jmax; j++) {
    const a = 1 - x - j / n;
    const b = x + j / n;
    if (a <= 0) continue;
    const lt = lnN - logGamma(j + 1) - logGamma(n - j + 1) + (n - j) * Math.log(a) + (j - 1) * Math.log(b);
    sum += Math.exp(lt);
  }
  return Math.min(1, x * sum);
}

/**
 * Pelz-Good approximation of P(D_n <= x) (Simard and L'Ecuyer 2011, section 2.2): the
 * Kolmogorov limit plus terms in n^-1/2, n^-1, n^-3/2, written with Jacobi theta sums.
 */
function pelzGoodCdf(n: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const z = Math.sqrt(n) * x;
  const z2 = z * z;
  const z3 = z2 * z;
  const z4 = z2 * z2;
  const z6 = z4 * z2;
  const pi2 = Math.PI * Math.PI;
  const pi4 = pi2 * pi2;
  const pi6 = pi4 * pi2;
  const qlog = -pi2 / 8 / z2;
  if (qlog < -745) return 0;
  const q = Math.exp(qlog);
  const k1a = -z2;
  const k1b = pi2 / 4;
  const k2a = 6 * z6 + 2 * z4;
  const k2b = ((2 * z4 - 5 * z2) * pi2) / 4;
  const k2c = (pi4 * (1 - 2 * z2)) / 16;
  const k3d = (pi6 * (5 - 30 * z2)) / 64;
  const k3c = (pi4 * (-60 * z2 + 212 * z4)) / 16;
  const k3b = (pi2 * (135 * z4 - 96 * z6)) / 4;
  const k3a = -30 * z6 - 90 * z6 * z2;
  const kk = [0, 0, 0, 0];
  const maxk = Math.ceil((16 * z) / Math.PI);
  for (let k = maxk; k > 0; k--) {
    const m = 2 * k - 1;
    const m2 = m * m;
    const m4 = m2 * m2;
    const m6 = m4 * m2;
    const qp = Math.pow(q, 8 * k);
    const coeffs = [1, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6];
    for (let t = 0; t < 4; t++) kk[t] = kk[t]! * qp + coeffs[t]!;
  }
  const sqrt2pi = Math.sqrt(2 * Math.PI);
  const div = [z, 6 * z4, 72 * z6 * z, 6480 * z6 * z4];
  for (let t = 0; t < 4; t++) kk[t] = (kk[t]! * q * sqrt2pi) / div[t]!;
  const q2 = Math.exp(-pi2 / 2 / z2);
  let k2extra = 0;
  let k3extra = 0;
  const sqrt3z = Math.sqrt(3) * z;
  for (let k = maxk; k > 0; k--) {
    const k2 = k * k;
    const qk = Math.pow(q2, k2);
    k2extra += k2 * qk;
    const kpi = Math.PI * k;
    k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qk;
  }
  kk[2] = kk[2]! + (k2extra * pi2 * sqrt2pi) / (-36 * z3);
  kk[3] = kk[3]! + (k3extra * pi2 * sqrt2pi) / (216 * z6);
  let sum = 0;
  for (let t = 0; t < 4; t++) sum += kk[t]! / Math.pow(n, t / 2);
  return sum;
}

/**
 * Durbin's matrix formula for P(D_n <= d) (Marsaglia, Tsang and Wang 2003): the k-th diagonal
 * entry of H^n scaled by n!/n^n, with H of order 2k - 1 (k = ceil(nd)), powered by squaring and
 * rescaled so neither the power nor n!/n^n leaves the floating-point range.
 */
function durbinCdf(n: number, d: number): number {
  const nd = n * d;
  if (nd <= 0.5) return 0;
  const k = Math.ceil(nd);
  const h = k - nd;
  const m = 2 * k - 1;
  const v = new Float64Array(m);
  const w = new Float64Array(m);
  let fac = 1;
  for (let j = 1; j <= m; j++) {
    w[j - 1] = fac;
    fac /= j;
    v[j - 1] = (1 - Math.pow(h, j)) * fac;
  }
  v[m - 1] = (1 + Math.pow(Math.max(2 * h - 1, 0), m) - 2 * Math.pow(h, m)) * fac;
  let H: Float64Array = new Float64Array(m * m);
  for (let i = 1; i < m; i++) for (let r = i - 1; r < m; r++) H[r * m + i] = w[r - i + 1]!;
  for (let r = 0; r < m; r++) H[r * m] = v[r]!;
  for (let c = 0; c < m; c++) H[(m - 1) * m + c] = v[m - 1 - c]!;
  const mul = (A: Float64Array, B: Float64Array): Float64Array => {
    const C = new Float64Array(m * m);
    for (let i = 0; i < m; i++)
      for (let l = 0; l < m; l++) {
        const a = A[i * m + l]!;
        if (a === 0) continue;
        for (let j = 0; j < m; j++) C[i * m + j]! += a * B[l * m + j]!;
      }
    return C;
  };
  let P: Float64Array = new Float64Array(m * m);
  for (let i = 0; i < m; i++) P[i * m + i] = 1;
  let nn = n;
  let expP = 0;
  let expH = 0;
  const E = 2 ** 128;
  while (nn > 0) {
    if (nn % 2 === 1) {
      P = mul(P, H);
      expP += expH;
    }
    H = mul(H, H);
    expH *= 2;
    if (Math.abs(H[(k - 1) * m + (k - 1)]!) > E) {
      for (let i = 0; i < m * m; i++) H[i] = H[i]! / E;
      expH += 128;
    }
    nn = Math.floor(nn / 2);
  }
  let p = P[(k - 1) * m + (k - 1)]!;
  for (let i = 1; i <= n; i++) {
    p = (i * p) / n;
    if (Math.abs(p) < 2 ** -128) {
      p *= E;
      expP -= 128;
    }
  }
  return p * 2 ** expP;
}

/**
 * Survival function P(D_n >= x) of the two-sided one-sample KS statistic (scipy's `kstwo.sf`),
 * choosing per region among exact formulas and approximations as Simard and L'Ecuyer (2011)
 * recommend: Ruben-Gambino at the ends, twice Smirnov's one-sided law in the upper tail, Durbin's
 * matrix for small n or small n x^1.5, and Pelz-Good elsewhere.
 */
export function kolmogorovSmirnovSf(n: number, x: number): number {
  if (x >= 1) return 0;
  if (x <= 0) return 1;
  const t = n * x;
  if (t <= 1) {
    if (t <= 0.5) return 1;
    const cdf = Math.exp(logFactorialOverPower(n) + n * Math.log(2 * t - 1));
    return 1 - cdf;
  }
  if (t >= n - 1) return 2 * Math.pow(1 - x, n);
  if (x >= 0.5) return 2 * smirnovSf(n, x);
  const nx2 = t * x;
  if (n <= 140) {
    // Durbin's matrix is exact; scipy uses Pomeranz's recursion for 0.75 < n x^2 <= 4, which agrees.
    if (nx2 <= 4) return 1 - durbinCdf(n, x);
    return 2 * smirnovSf(n, x);
  }
  if (nx2 >= 370) return 0;
  if (nx2 >= 2.2) return 2 * smirnovSf(n, x);
  const cdf = n <= 100_000 && n * Math.pow(x, 1.5) <= 1.4 ? durbinCdf(n, x) : pelzGoodCdf(n, x);
  return 1 - cdf;
}

// ---------------------------------------------------------------------------------------------
// Other tests and distances

/**
 * Pearson's chi-square goodness of fit of `observed` counts to `expected` counts (scipy's
 * `chisquare`, `k - 1` degrees of freedom). Categories with zero expected count must be merged
 * or smoothed by the caller.
 */
export function chiSquare(observed: ArrayLike<number>, expected: ArrayLike<number>): TestResult & { readonly df: number } {
  let stat = 0;
  for (let i = 0; i < observed.length; i++) {
    const e = expected[i]!;
    const diff = observed[i]! - e;
    stat += (diff * diff) / e;
  }
  const df = observed.length - 1;
  return { statistic: stat, pValue: df <= 0 ? Number.NaN : chi2Sf(stat, df), df };
}

/**
 * Two-sided Z-test of two proportions with a pooled variance (Evidently's test for binary
 * features): `k1` successes of `n1` against `k2` of `n2`. Equal constant proportions give z = 0.
 */
export function proportionZTest(k1: number, n1: number, k2: number, n2: number): TestResult {
  const p1 = k1 / n1;
  const p2 = k2 / n2;
  const pooled = (k1 + k2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return { statistic: 0, pValue: 1 };
  const z = (p1 - p2) / se;
  return { statistic: z, pValue: 2 * normalSf(Math.abs(z)) };
}

/**
 * The first Wasserstein distance between two ascending samples (scipy's `wasserstein_distance`
 * with equal weights): the area between their empirical CDFs.
 */
export function wassersteinDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return Number.NaN;
  let i = 0;
  let j = 0;
  let area = 0;
  let prev = Math.min(a[0]!, b[0]!);
  while (i < n1 || j < n2) {
    const v = j >= n2 || (i < n1 && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    area += Math.abs(i / n1 - j / n2) * (v - prev);
    prev = v;
    while (i < n1 && a[i]! <= v) i++;
    while (j < n2 && b[j]! <= v) j++;
  }
  return area;
}

/**
 * The Jensen-Shannon distance (square root of the divergence, natural logarithm) between two
 * distributions given as non-negative weights, each normalised first (scipy's `jensenshannon`).
 */
export function jensenShannonDistance(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i]!;
    sq += q[i]!;
  }
  if (sp <= 0 || sq <= 0) return Number.NaN;
  let js = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]! / sp;
    const b = q[i]! / sq;
    const m = (a + b) / 2;
    if (a > 0) js += a * Math.log(a / m);
    if (b > 0) js += b * Math.log(b / m);
  }
  return Math.sqrt(Math.max(js / 2, 0));
}

/** Share given to an empty bin in PSI (Evidently's choice), so the logarithm stays finite. */
export const PSI_EMPTY_SHARE = 0.0001;

/**
 * Population stability index over matching bins of reference and current counts:
 * sum of (r - c) ln(r / c) over bin shares, empty bins counted as {@link PSI_EMPTY_SHARE}.
 */
export function populationStabilityIndex(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  let sr = 0;
  let sc = 0;
  for (let i = 0; i < reference.length; i++) {
    sr += reference[i]!;
    sc += current[i]!;
  }
  if (sr <= 0 || sc <= 0) return Number.NaN;
  let psi = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = reference[i]! / sr || PSI_EMPTY_SHARE;
    const c = current[i]! / sc || PSI_EMPTY_SHARE;
    psi += (r - c) * Math.log(r / c);
  }
  return psi;
}
