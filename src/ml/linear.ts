/**
 * Linear models: least squares / ridge regression (exact, normal equations with Cholesky) and
 * L2-regularised logistic regression (binary or multinomial, L-BFGS). Features are expected to be
 * imputed and, for logistic regression, standardised (see `preprocess.ts`); NaN inputs are rejected.
 */
import type { LinearModel, ProgressFn, TrainingData } from './types.ts';

// ---------------------------------------------------------------------------------------------
// Linear regression
// ---------------------------------------------------------------------------------------------

/** Options of {@link fitLinearRegression}. */
export interface LinearRegressionOptions {
  /** L2 penalty `alpha * ||w||^2` on the coefficients (not the intercept); 0 = ordinary least squares. Default 0. */
  readonly alpha?: number;
  /** Fit an unpenalised intercept. Default true. */
  readonly fitIntercept?: boolean;
  readonly onProgress?: ProgressFn | undefined;
}

/** A fitted linear regression and how it was solved. */
export interface LinearRegressionFit {
  readonly model: LinearModel;
  /**
   * Ridge term added to the diagonal because the normal equations were singular (e.g. collinear or
   * constant features with alpha 0); 0 when the system was solved as posed.
   */
  readonly jitter: number;
}

/**
 * Fits `y ~ x w + b` minimising `||y - x w - b||^2 + alpha ||w||^2` (scikit-learn's LinearRegression
 * for alpha 0, Ridge otherwise).
 *
 * With an intercept, x and y are centred first, so the intercept is unpenalised and the Gram
 * matrix is built from centred values (better conditioned). The system `(Xc'Xc + alpha I) w = Xc'yc`
 * is solved by Cholesky. When it is not positive definite (collinear or constant features without
 * a penalty), a small ridge term is added to the diagonal, starting at sqrt(machine epsilon)
 * (~1.5e-8) of the mean diagonal and growing tenfold until the factorisation succeeds; this picks
 * the near-minimum-norm solution among the equally good ones, and the amount is reported in
 * {@link LinearRegressionFit.jitter}.
 */
export function trainLinearRegression(data: TrainingData, options: LinearRegressionOptions = {}): LinearRegressionFit {
  const alpha = options.alpha ?? 0;
  const fitIntercept = options.fitIntercept ?? true;
  const progress = options.onProgress;
  if (!(alpha >= 0) || !Number.isFinite(alpha)) throw new RangeError(`alpha must be >= 0, got ${alpha}`);
  const { rows: n, cols: p, values: x } = data.x;
  checkData(data);
  const y = data.y;
  if (n === 0) throw new RangeError('cannot fit a linear regression on 0 rows');

  const xMean = new Float64Array(p);
  let yMean = 0;
  if (fitIntercept) {
    for (let i = 0; i < n; i++) {
      const row = i * p;
      for (let j = 0; j < p; j++) xMean[j]! += x[row + j]!;
      yMean += y[i]!;
    }
    for (let j = 0; j < p; j++) xMean[j]! /= n;
    yMean /= n;
  }

  // Upper triangle of the Gram matrix and the right-hand side, from centred rows.
  const gram = new Float64Array(p * p);
  const rhs = new Float64Array(p);
  const xc = new Float64Array(p);
  for (let i = 0; i < n; i++) {
    const row = i * p;
    for (let j = 0; j < p; j++) xc[j] = x[row + j]! - xMean[j]!;
    const yc = y[i]! - yMean;
    for (let j = 0; j < p; j++) {
      const a = xc[j]!;
      if (a === 0) continue;
      rhs[j]! += a * yc;
      const gRow = j * p;
      for (let k = j; k < p; k++) gram[gRow + k]! += a * xc[k]!;
    }
  }
  for (let j = 0; j < p; j++) {
    gram[j * p + j]! += alpha;
    for (let k = j + 1; k < p; k++) gram[k * p + j] = gram[j * p + k]!;
  }
  progress?.(0.5, `normal equations built (${p} features, ${n} rows)`);

  let meanDiag = 0;
  for (let j = 0; j < p; j++) meanDiag += gram[j * p + j]!;
  meanDiag = p > 0 ? meanDiag / p : 0;
  const factor = new Float64Array(p * p);
  let jitter = 0;
  for (let attempt = 0; ; attempt++) {
    factor.set(gram);
    if (jitter > 0) for (let j = 0; j < p; j++) factor[j * p + j]! += jitter;
    if (choleskyInPlace(factor, p)) break;
    if (attempt >= 16) throw new Error('normal equations could not be factorised (non-finite features?)');
    // sqrt(eps) of the diagonal: the system is numerically singular, so rounding noise of relative
    // size eps sits in the null directions; dividing it by a smaller jitter would amplify it into
    // visible coefficient noise, while sqrt(eps) biases the determined directions by only ~1e-8.
    // An all-zero Gram matrix (only constant features) has a zero right-hand side too: any jitter gives w = 0.
    jitter = jitter === 0 ? (meanDiag > 0 ? meanDiag : 1) * Math.sqrt(Number.EPSILON) : jitter * 10;
  }
  const w = choleskySolve(factor, p, rhs);

  let b = 0;
  if (fitIntercept) {
    b = yMean;
    for (let j = 0; j < p; j++) b -= xMean[j]! * w[j]!;
  }
  progress?.(1, jitter > 0 ? `solved with diagonal jitter ${jitter.toExponential(2)}` : 'solved');
  const model: LinearModel = {
    kind: 'linear',
    task: 'regression',
    nFeatures: p,
    nTargets: 1,
    coefficients: w,
    intercepts: Float64Array.of(b),
    postTransform: 'none',
    nClasses: 0,
  };
  return { model, jitter };
}

/** Fits a least squares / ridge regression; see {@link trainLinearRegression}. */
export function fitLinearRegression(data: TrainingData, options: LinearRegressionOptions = {}): LinearModel {
  return trainLinearRegression(data, options).model;
}

/**
 * Cholesky factorisation `A = L L'` in place (lower triangle holds L; the upper triangle is left
 * as is and ignored). Returns false when A is not (numerically) positive definite.
 */
function choleskyInPlace(a: Float64Array, p: number): boolean {
  for (let j = 0; j < p; j++) {
    const rj = j * p;
    let d = a[rj + j]!;
    for (let k = 0; k < j; k++) d -= a[rj + k]! * a[rj + k]!;
    if (!(d > 0) || !Number.isFinite(d)) return false;
    const ljj = Math.sqrt(d);
    a[rj + j] = ljj;
    for (let i = j + 1; i < p; i++) {
      const ri = i * p;
      let s = a[ri + j]!;
      for (let k = 0; k < j; k++) s -= a[ri + k]! * a[rj + k]!;
      a[ri + j] = s / ljj;
    }
  }
  return true;
}

/** Solves `L L' x = b` given the factor from {@link choleskyInPlace}. */
function choleskySolve(l: Float64Array, p: number, b: Float64Array): Float64Array {
  const z = new Float64Array(p);
  for (let i = 0; i < p; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * p + k]! * z[k]!;
    z[i] = s / l[i * p + i]!;
  }
  const x = new Float64Array(p);
  for (let i = p - 1; i >= 0; i--) {
    let s = z[i]!;
    for (let k = i + 1; k < p; k++) s -= l[k * p + i]! * x[k]!;
    x[i] = s / l[i * p + i]!;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Logistic regression
// ---------------------------------------------------------------------------------------------

/** Options of {@link fitLogisticRegression}; defaults follow scikit-learn's LogisticRegression. */
export interface LogisticRegressionOptions {
  /** Inverse L2 strength: penalty `||W||^2 / (2C)` against the summed log-loss. Default 1. */
  readonly C?: number;
  /** Maximum L-BFGS iterations. Default 100. */
  readonly maxIter?: number;
  /** Stop when the largest gradient component of the mean objective is <= tol. Default 1e-4. */
  readonly tol?: number;
  /**
   * `auto`: sigmoid for two classes, softmax for more. `multinomial`: softmax (one coefficient row
   * per class) even for two classes. Default `auto`.
   */
  readonly multiClass?: 'auto' | 'multinomial';
  /** Fit unpenalised intercepts. Default true. */
  readonly fitIntercept?: boolean;
  readonly onProgress?: ProgressFn | undefined;
}

/** A fitted logistic regression and how the optimiser ended. */
export interface LogisticRegressionFit {
  readonly model: LinearModel;
  readonly iterations: number;
  /** True when a stopping test (gradient or relative decrease) was met before `maxIter`. */
  readonly converged: boolean;
  /** Final objective: mean log-loss + `||W||^2 / (2 C n)`. */
  readonly loss: number;
}

/**
 * Fits L2-regularised logistic regression, minimising
 * `(1/n) * sum_i logloss_i + ||W||^2 / (2 C n)` (scikit-learn's objective `C * sum + ||W||^2 / 2`
 * divided by `C n`; same minimiser, better scaled) with L-BFGS from zero. Binary problems use one
 * logit (nTargets 1, postTransform `logistic`); multinomial ones one row per class (softmax).
 * The stopping rules are those scikit-learn passes to scipy: largest gradient component <= tol, or
 * relative objective decrease <= 64 machine epsilons, or maxIter iterations.
 */
export function trainLogisticRegression(data: TrainingData, options: LogisticRegressionOptions = {}): LogisticRegressionFit {
  const C = options.C ?? 1;
  const maxIter = options.maxIter ?? 100;
  const tol = options.tol ?? 1e-4;
  const fitIntercept = options.fitIntercept ?? true;
  if (!(C > 0)) throw new RangeError(`C must be > 0, got ${C}`);
  if (!(maxIter >= 1)) throw new RangeError(`maxIter must be >= 1, got ${maxIter}`);
  if (!(tol >= 0)) throw new RangeError(`tol must be >= 0, got ${tol}`);
  if (data.task !== 'classification') throw new Error('logistic regression needs a classification task');
  checkData(data);
  const nClasses = data.nClasses;
  if (nClasses < 2) throw new RangeError(`logistic regression needs at least 2 classes, got ${nClasses}`);
  const { rows: n, cols: p } = data.x;
  if (n === 0) throw new RangeError('cannot fit a logistic regression on 0 rows');
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = data.y[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= nClasses) throw new RangeError(`row ${i}: class ${c} not in [0, ${nClasses})`);
    labels[i] = c;
  }

  const binary = nClasses === 2 && (options.multiClass ?? 'auto') === 'auto';
  const k = binary ? 1 : nClasses;
  const objective = logisticObjective(data.x.values, labels, n, p, k, binary, 1 / (C * n), fitIntercept);
  const result = minimizeLbfgs(objective, new Float64Array(k * (p + 1)), {
    maxIter,
    gtol: tol,
    onIteration: options.onProgress
      ? (iter, f) => options.onProgress?.(Math.min(1, iter / maxIter), `iteration ${iter}, loss ${f.toPrecision(6)}`)
      : undefined,
  });
  options.onProgress?.(1, `${result.converged ? 'converged' : 'stopped'} after ${result.iterations} iterations, loss ${result.f.toPrecision(6)}`);

  const model: LinearModel = {
    kind: 'linear',
    task: 'classification',
    nFeatures: p,
    nTargets: k,
    coefficients: result.x.slice(0, k * p),
    intercepts: result.x.slice(k * p),
    postTransform: binary ? 'logistic' : 'softmax',
    nClasses,
  };
  return { model, iterations: result.iterations, converged: result.converged, loss: result.f };
}

/** Fits logistic regression; see {@link trainLogisticRegression}. */
export function fitLogisticRegression(data: TrainingData, options: LogisticRegressionOptions = {}): LinearModel {
  return trainLogisticRegression(data, options).model;
}

/**
 * Objective and gradient of logistic regression over parameters laid out as `[W (k x p) row-major,
 * b (k)]`. `l2` is the coefficient penalty weight in the mean-loss scaling (`1 / (C n)`).
 */
function logisticObjective(
  x: Float64Array,
  labels: Int32Array,
  n: number,
  p: number,
  k: number,
  binary: boolean,
  l2: number,
  fitIntercept: boolean,
): Objective {
  const z = new Float64Array(k);
  return (w, grad) => {
    grad.fill(0);
    const bOff = k * p;
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const row = i * p;
      for (let t = 0; t < k; t++) {
        let s = w[bOff + t]!;
        const wRow = t * p;
        for (let j = 0; j < p; j++) s += w[wRow + j]! * x[row + j]!;
        z[t] = s;
      }
      const label = labels[i]!;
      if (binary) {
        const zi = z[0]!;
        const yi = label;
        // log(1 + e^z) - y z, and its derivative sigmoid(z) - y, both without overflow.
        loss += (zi > 0 ? zi + Math.log1p(Math.exp(-zi)) : Math.log1p(Math.exp(zi))) - yi * zi;
        z[0] = (zi >= 0 ? 1 / (1 + Math.exp(-zi)) : Math.exp(zi) / (1 + Math.exp(zi))) - yi;
      } else {
        let m = -Infinity;
        for (let t = 0; t < k; t++) if (z[t]! > m) m = z[t]!;
        let s = 0;
        for (let t = 0; t < k; t++) s += Math.exp(z[t]! - m);
        const lse = m + Math.log(s);
        loss += lse - z[label]!;
        for (let t = 0; t < k; t++) z[t] = Math.exp(z[t]! - lse) - (t === label ? 1 : 0);
      }
      // z now holds the residuals d loss_i / d score_t.
      for (let t = 0; t < k; t++) {
        const r = z[t]!;
        if (r === 0) continue;
        grad[bOff + t]! += r;
        const wRow = t * p;
        for (let j = 0; j < p; j++) grad[wRow + j]! += r * x[row + j]!;
      }
    }
    const invN = 1 / n;
    let penalty = 0;
    for (let q = 0; q < bOff; q++) {
      const wq = w[q]!;
      penalty += wq * wq;
      grad[q] = grad[q]! * invN + l2 * wq;
    }
    for (let t = 0; t < k; t++) grad[bOff + t] = fitIntercept ? grad[bOff + t]! * invN : 0;
    return loss * invN + 0.5 * l2 * penalty;
  };
}

function checkData(data: TrainingData): void {
  const { rows, cols, values } = data.x;
  if (values.length !== rows * cols) throw new RangeError(`matrix ${rows}x${cols} holds ${values.length} values`);
  if (data.y.length !== rows) throw new RangeError(`x has ${rows} rows but y has ${data.y.length} values`);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new RangeError(`feature value at row ${Math.floor(i / cols)}, column ${i % cols} is not finite; impute before fitting a linear model`);
    }
  }
  for (let i = 0; i < rows; i++) {
    if (!Number.isFinite(data.y[i]!)) throw new RangeError(`target at row ${i} is not finite`);
  }
}

// ---------------------------------------------------------------------------------------------
// L-BFGS
// ---------------------------------------------------------------------------------------------

/** Smooth objective: returns f(w) and writes the gradient into `grad`. */
export type Objective = (w: Float64Array, grad: Float64Array) => number;

/** Options of {@link minimizeLbfgs}. */
export interface LbfgsOptions {
  /** Iteration limit. Default 100. */
  readonly maxIter?: number;
  /** Stop when max |gradient component| <= gtol. Default 1e-5. */
  readonly gtol?: number;
  /** Stop when (f_prev - f) / max(|f_prev|, |f|, 1) <= ftol. Default 64 machine epsilons. */
  readonly ftol?: number;
  /** Number of correction pairs kept. Default 10. */
  readonly memory?: number;
  /** Objective evaluations allowed per line search. Default 50. */
  readonly maxLineSearch?: number;
  readonly onIteration?: ((iteration: number, f: number) => void) | undefined;
}

export interface LbfgsResult {
  readonly x: Float64Array;
  readonly f: number;
  readonly iterations: number;
  readonly converged: boolean;
}

/**
 * Unconstrained minimisation with limited-memory BFGS (two-loop recursion, initial Hessian scaled
 * by s'y / y'y) and a line search satisfying the strong Wolfe conditions (c1 1e-4, c2 0.9) by
 * bracketing and safeguarded cubic interpolation. Correction pairs with too little curvature are
 * skipped, and a failed line search along the quasi-Newton direction falls back to steepest descent
 * once before giving up (which happens only at the limit of floating-point precision).
 */
export function minimizeLbfgs(fg: Objective, x0: Float64Array, options: LbfgsOptions = {}): LbfgsResult {
  const maxIter = options.maxIter ?? 100;
  const gtol = options.gtol ?? 1e-5;
  const ftol = options.ftol ?? 64 * Number.EPSILON;
  const m = options.memory ?? 10;
  const maxLs = options.maxLineSearch ?? 50;
  const dim = x0.length;

  const x = Float64Array.from(x0);
  const g = new Float64Array(dim);
  let f = fg(x, g);
  if (!Number.isFinite(f)) throw new Error('objective is not finite at the starting point');
  if (maxAbs(g) <= gtol) return { x, f, iterations: 0, converged: true };

  const sHist: Float64Array[] = [];
  const yHist: Float64Array[] = [];
  const rhoHist: number[] = [];
  const alphaTmp = new Float64Array(m);
  const d = new Float64Array(dim);
  const xNew = new Float64Array(dim);
  const gNew = new Float64Array(dim);
  const ls = new LineSearch(fg, dim, maxLs);

  let converged = false;
  let iter = 0;
  while (iter < maxIter) {
    // Search direction d = -H g by the two-loop recursion.
    d.set(g);
    const h = sHist.length;
    for (let i = h - 1; i >= 0; i--) {
      const a = rhoHist[i]! * dot(sHist[i]!, d);
      alphaTmp[i] = a;
      axpy(-a, yHist[i]!, d);
    }
    if (h > 0) {
      const yLast = yHist[h - 1]!;
      scale(d, 1 / (rhoHist[h - 1]! * dot(yLast, yLast)));
    }
    for (let i = 0; i < h; i++) {
      const bCoef = rhoHist[i]! * dot(yHist[i]!, d);
      axpy(alphaTmp[i]! - bCoef, sHist[i]!, d);
    }
    scale(d, -1);
    let dg = dot(d, g);
    if (!(dg < 0)) {
      // Not a descent direction (numerical trouble): forget the curvature pairs.
      sHist.length = yHist.length = rhoHist.length = 0;
      d.set(g);
      scale(d, -1);
      dg = dot(d, g);
    }

    // The first step has no curvature information: keep it short relative to the gradient.
    let step = sHist.length === 0 ? Math.min(1, 1 / Math.sqrt(dot(d, d))) : 1;
    let fNew = ls.search(x, f, dg, d, step, xNew, gNew);
    if (Number.isNaN(fNew) && sHist.length > 0) {
      sHist.length = yHist.length = rhoHist.length = 0;
      d.set(g);
      scale(d, -1);
      dg = dot(d, g);
      step = Math.min(1, 1 / Math.sqrt(dot(d, d)));
      fNew = ls.search(x, f, dg, d, step, xNew, gNew);
    }
    if (Number.isNaN(fNew)) {
      // No decrease is possible along any direction we can compute: precision limit reached.
      converged = true;
      break;
    }
    iter++;

    const s = new Float64Array(dim);
    const yv = new Float64Array(dim);
    for (let q = 0; q < dim; q++) {
      s[q] = xNew[q]! - x[q]!;
      yv[q] = gNew[q]! - g[q]!;
    }
    const sy = dot(s, yv);
    if (sy > 1e-10 * dot(yv, yv)) {
      if (sHist.length === m) {
        sHist.shift();
        yHist.shift();
        rhoHist.shift();
      }
      sHist.push(s);
      yHist.push(yv);
      rhoHist.push(1 / sy);
    }
    const fPrev = f;
    x.set(xNew);
    g.set(gNew);
    f = fNew;
    options.onIteration?.(iter, f);
    if (maxAbs(g) <= gtol || (fPrev - f) / Math.max(Math.abs(fPrev), Math.abs(f), 1) <= ftol) {
      converged = true;
      break;
    }
  }
  return { x, f, iterations: iter, converged };
}

/**
 * Strong Wolfe line search (Nocedal & Wright, algorithms 3.5 and 3.6). Reused across iterations
 * so its trial buffers are allocated once.
 */
class LineSearch {
  private readonly xt: Float64Array;
  private readonly gt: Float64Array;
  private static readonly c1 = 1e-4;
  private static readonly c2 = 0.9;

  constructor(
    private readonly fg: Objective,
    dim: number,
    private readonly maxEval: number,
  ) {
    this.xt = new Float64Array(dim);
    this.gt = new Float64Array(dim);
  }

  /**
   * Finds a step along `d` from `x`. On success writes the new point and gradient into `xOut`,
   * `gOut` and returns its objective; returns NaN when no step with sufficient decrease was found.
   */
  search(x: Float64Array, f0: number, dg0: number, d: Float64Array, step0: number, xOut: Float64Array, gOut: Float64Array): number {
    const { c1, c2 } = LineSearch;
    let evals = 0;
    const evaluate = (a: number): [number, number] => {
      evals++;
      const xt = this.xt;
      for (let q = 0; q < xt.length; q++) xt[q] = x[q]! + a * d[q]!;
      const f = this.fg(xt, this.gt);
      return [f, dot(this.gt, d)];
    };
    const accept = (f: number): number => {
      xOut.set(this.xt);
      gOut.set(this.gt);
      return f;
    };

    let aPrev = 0;
    let fPrev = f0;
    let dPrev = dg0;
    let a = step0;
    // Bracketing phase: grow the step until it overshoots or satisfies both conditions.
    let lo: number, fLo: number, dLo: number, hi: number, fHi: number, dHi: number;
    for (;;) {
      const [f, dg] = evaluate(a);
      if (!Number.isFinite(f) || f > f0 + c1 * a * dg0 || (evals > 1 && f >= fPrev)) {
        lo = aPrev; fLo = fPrev; dLo = dPrev;
        hi = a; fHi = Number.isFinite(f) ? f : Infinity; dHi = Number.isFinite(dg) ? dg : Number.NaN;
        break;
      }
      if (Math.abs(dg) <= -c2 * dg0) return accept(f);
      if (dg >= 0) {
        lo = a; fLo = f; dLo = dg;
        hi = aPrev; fHi = fPrev; dHi = dPrev;
        break;
      }
      if (evals >= this.maxEval) return this.fallback(evaluate, accept, a, f, f0);
      aPrev = a; fPrev = f; dPrev = dg;
      a *= 2;
    }

    // Zoom phase: shrink [lo, hi] (lo always satisfies sufficient decrease) until strong Wolfe holds.
    while (evals < this.maxEval) {
      a = interpolate(lo, fLo, dLo, hi, fHi, dHi);
      if (Math.abs(hi - lo) <= 1e-16 * Math.max(1, Math.abs(lo))) break;
      const [f, dg] = evaluate(a);
      if (!Number.isFinite(f) || f > f0 + c1 * a * dg0 || f >= fLo) {
        hi = a; fHi = Number.isFinite(f) ? f : Infinity; dHi = Number.isFinite(dg) ? dg : Number.NaN;
      } else {
        if (Math.abs(dg) <= -c2 * dg0) return accept(f);
        if (dg * (hi - lo) >= 0) {
          hi = lo; fHi = fLo; dHi = dLo;
        }
        lo = a; fLo = f; dLo = dg;
      }
    }
    return this.fallback(evaluate, accept, lo, fLo, f0);
  }

  /** Accepts the best sufficient-decrease step seen (curvature condition not met), if any. */
  private fallback(evaluate: (a: number) => [number, number], accept: (f: number) => number, a: number, fa: number, f0: number): number {
    if (a > 0 && fa < f0) {
      const [f] = evaluate(a);
      return accept(f);
    }
    return Number.NaN;
  }
}

/**
 * Minimiser of the cubic through (a, fa, da) and (b, fb, db), kept inside the middle 80% of the
 * interval; bisection when the cubic is undefined (no derivative at an infinite end, or no real
 * minimiser).
 */
function interpolate(a: number, fa: number, da: number, b: number, fb: number, db: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  const width = hi - lo;
  let t = Number.NaN;
  if (Number.isFinite(fb) && Number.isFinite(db) && a !== b) {
    const d1 = da + db - (3 * (fa - fb)) / (a - b);
    const disc = d1 * d1 - da * db;
    if (disc >= 0) {
      const d2 = Math.sign(b - a) * Math.sqrt(disc);
      t = b - ((b - a) * (db + d2 - d1)) / (db - da + 2 * d2);
    }
  }
  if (!Number.isFinite(t) || t < lo + 0.1 * width || t > hi - 0.1 * width) t = lo + 0.5 * width;
  return t;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function axpy(alpha: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += alpha * x[i]!;
}

function scale(x: Float64Array, alpha: number): void {
  for (let i = 0; i < x.length; i++) x[i]! *= alpha;
}

function maxAbs(x: Float64Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Math.abs(x[i]!);
    if (v > m) m = v;
  }
  return m;
}
