/**
 * Evaluation metrics with scikit-learn's definitions. Class labels are integer indices
 * `0..nClasses-1` (as floats or ints); probabilities are N x nClasses row-major.
 */
import { argmaxRows } from './predict.ts';

/** Anything indexable by row that holds numbers (typed arrays or plain arrays). */
export type Labels = ArrayLike<number>;

/** Share of rows whose predicted class equals the true class (NaN when there are no rows). */
export function accuracy(yTrue: Labels, yPred: Labels): number {
  checkSameLength(yTrue, yPred);
  const n = yTrue.length;
  let ok = 0;
  for (let i = 0; i < n; i++) if (yTrue[i] === yPred[i]) ok++;
  return n === 0 ? Number.NaN : ok / n;
}

/**
 * Confusion matrix, `nClasses x nClasses`: entry `[t][p]` counts rows of true class `t` predicted as
 * `p` (rows are truth, columns predictions, as scikit-learn). Labels outside the range are ignored.
 */
export function confusionMatrix(yTrue: Labels, yPred: Labels, nClasses: number): number[][] {
  checkSameLength(yTrue, yPred);
  const m: number[][] = Array.from({ length: nClasses }, () => new Array<number>(nClasses).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i]!;
    const p = yPred[i]!;
    if (isLabel(t, nClasses) && isLabel(p, nClasses)) m[t]![p]! += 1;
  }
  return m;
}

/** Per-class precision, recall and F1, plus their macro averages. */
export interface PrecisionRecallF1 {
  readonly precision: Float64Array;
  readonly recall: Float64Array;
  readonly f1: Float64Array;
  /** Classes that occur in yTrue or yPred: the ones the macro averages are taken over. */
  readonly present: Uint8Array;
  readonly precisionMacro: number;
  readonly recallMacro: number;
  readonly f1Macro: number;
}

/**
 * Precision, recall and F1 per class and macro-averaged, as scikit-learn's
 * `precision_recall_fscore_support` with `zero_division=0`: a ratio with a zero denominator is 0,
 * and the macro average runs over the classes present in `yTrue` or `yPred` (a class absent from
 * both is not counted, as when scikit-learn infers the labels from the data).
 */
export function precisionRecallF1(yTrue: Labels, yPred: Labels, nClasses: number): PrecisionRecallF1 {
  checkSameLength(yTrue, yPred);
  const tp = new Float64Array(nClasses);
  const predCount = new Float64Array(nClasses);
  const trueCount = new Float64Array(nClasses);
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i]!;
    const p = yPred[i]!;
    if (isLabel(t, nClasses)) trueCount[t]! += 1;
    if (isLabel(p, nClasses)) predCount[p]! += 1;
    if (t === p && isLabel(t, nClasses)) tp[t]! += 1;
  }
  const precision = new Float64Array(nClasses);
  const recall = new Float64Array(nClasses);
  const f1 = new Float64Array(nClasses);
  const present = new Uint8Array(nClasses);
  let sp = 0;
  let sr = 0;
  let sf = 0;
  let nPresent = 0;
  for (let c = 0; c < nClasses; c++) {
    const pr = predCount[c]! > 0 ? tp[c]! / predCount[c]! : 0;
    const rc = trueCount[c]! > 0 ? tp[c]! / trueCount[c]! : 0;
    // F1 = 2 tp / (2 tp + fp + fn); zero when that denominator is zero.
    const denom = trueCount[c]! + predCount[c]!;
    const f = denom > 0 ? (2 * tp[c]!) / denom : 0;
    precision[c] = pr;
    recall[c] = rc;
    f1[c] = f;
    if (denom > 0) {
      present[c] = 1;
      nPresent++;
      sp += pr;
      sr += rc;
      sf += f;
    }
  }
  const avg = (s: number): number => (nPresent > 0 ? s / nPresent : 0);
  return { precision, recall, f1, present, precisionMacro: avg(sp), recallMacro: avg(sr), f1Macro: avg(sf) };
}

/**
 * Area under the ROC curve of a binary problem from the positive-class scores, through the
 * Mann-Whitney statistic with average ranks for ties (equal to scikit-learn's trapezoidal
 * `roc_auc_score`). `yTrue` holds 1 for positives and 0 for negatives. NaN when only one class is
 * present (scikit-learn raises there).
 */
export function rocAuc(yTrue: Labels, scores: Labels): number {
  checkSameLength(yTrue, scores);
  const n = yTrue.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[a]! - scores[b]!);
  let nPos = 0;
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    // Rows i..j-1 share one score: each gets the average of ranks i+1..j.
    let j = i + 1;
    while (j < n && scores[order[j]!] === scores[order[i]!]) j++;
    const avgRank = (i + 1 + j) / 2;
    for (let q = i; q < j; q++) {
      if (yTrue[order[q]!] === 1) {
        nPos++;
        rankSumPos += avgRank;
      }
    }
    i = j;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return Number.NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * Mean negative log-likelihood of the true classes, probabilities clipped to [1e-15, 1 - 1e-15]
 * (scikit-learn's historical `eps`) so a confident mistake costs about 34.5 instead of infinity.
 */
export function logLoss(yTrue: Labels, proba: Float64Array, nClasses: number): number {
  const n = yTrue.length;
  if (proba.length !== n * nClasses) throw new RangeError(`probabilities hold ${proba.length} values for ${n} rows x ${nClasses} classes`);
  const eps = 1e-15;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const t = yTrue[i]!;
    if (!isLabel(t, nClasses)) throw new RangeError(`row ${i}: class ${t} not in [0, ${nClasses})`);
    const p = Math.min(Math.max(proba[i * nClasses + t]!, eps), 1 - eps);
    s -= Math.log(p);
  }
  return n === 0 ? Number.NaN : s / n;
}

/** Root mean squared error. */
export function rmse(yTrue: Labels, yPred: Labels): number {
  return Math.sqrt(mse(yTrue, yPred));
}

/** Mean squared error. */
export function mse(yTrue: Labels, yPred: Labels): number {
  checkSameLength(yTrue, yPred);
  let s = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const e = yTrue[i]! - yPred[i]!;
    s += e * e;
  }
  return yTrue.length === 0 ? Number.NaN : s / yTrue.length;
}

/** Mean absolute error. */
export function mae(yTrue: Labels, yPred: Labels): number {
  checkSameLength(yTrue, yPred);
  let s = 0;
  for (let i = 0; i < yTrue.length; i++) s += Math.abs(yTrue[i]! - yPred[i]!);
  return yTrue.length === 0 ? Number.NaN : s / yTrue.length;
}

/**
 * Coefficient of determination `1 - SS_res / SS_tot`. For a constant `yTrue` it is 1 when the
 * predictions are perfect and 0 otherwise (scikit-learn's `force_finite`).
 */
export function r2(yTrue: Labels, yPred: Labels): number {
  checkSameLength(yTrue, yPred);
  const n = yTrue.length;
  if (n === 0) return Number.NaN;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += yTrue[i]!;
  mean /= n;
  let ssRes = 0;
  let ssTot = 0;
  for (let i = 0; i < n; i++) {
    const e = yTrue[i]! - yPred[i]!;
    const d = yTrue[i]! - mean;
    ssRes += e * e;
    ssTot += d * d;
  }
  if (ssTot === 0) return ssRes === 0 ? 1 : 0;
  return 1 - ssRes / ssTot;
}

/**
 * Hold-out metrics of a classifier, keyed as they are logged to a run: `accuracy`,
 * `precision_macro`, `recall_macro`, `f1_macro`, `log_loss`, and `roc_auc` for two classes
 * (omitted when the hold-out set holds only one class). The predicted class is the most probable
 * one. Use {@link confusionMatrix} for the matrix.
 */
export function classificationReport(yTrue: Labels, proba: Float64Array, nClasses: number): Record<string, number> {
  const yPred = argmaxRows(proba, nClasses);
  if (yPred.length !== yTrue.length) throw new RangeError(`probabilities hold ${yPred.length} rows for ${yTrue.length} labels`);
  const prf = precisionRecallF1(yTrue, yPred, nClasses);
  const report: Record<string, number> = {
    accuracy: accuracy(yTrue, yPred),
    precision_macro: prf.precisionMacro,
    recall_macro: prf.recallMacro,
    f1_macro: prf.f1Macro,
    log_loss: logLoss(yTrue, proba, nClasses),
  };
  if (nClasses === 2) {
    const pos = new Float64Array(yTrue.length);
    for (let i = 0; i < pos.length; i++) pos[i] = proba[2 * i + 1]!;
    const auc = rocAuc(yTrue, pos);
    if (!Number.isNaN(auc)) report.roc_auc = auc;
  }
  return report;
}

/** Hold-out metrics of a regressor: `rmse`, `mae`, `r2`. */
export function regressionReport(yTrue: Labels, yPred: Labels): Record<string, number> {
  return { rmse: rmse(yTrue, yPred), mae: mae(yTrue, yPred), r2: r2(yTrue, yPred) };
}

function isLabel(v: number, nClasses: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < nClasses;
}

function checkSameLength(a: Labels, b: Labels): void {
  if (a.length !== b.length) throw new RangeError(`length mismatch: ${a.length} vs ${b.length}`);
}
