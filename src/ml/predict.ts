/**
 * In-memory inference for the fitted models of `types.ts`. The training pipeline uses it to
 * evaluate a model and to check that the exported ONNX graph agrees with it, so it follows the
 * semantics documented on {@link LinearModel} and {@link TreeEnsembleModel} to the letter.
 */
import type { FittedModel, LinearModel, Matrix, TreeEnsembleModel } from './types.ts';

/**
 * Model outputs for N rows. Classification: `probabilities`, N x C row-major with C >= 2 (a
 * single positive-class output is expanded to `[1 - p, p]`). Regression: `values`, length N.
 */
export interface Predictions {
  readonly probabilities?: Float64Array;
  readonly values?: Float64Array;
}

/**
 * Raw linear scores `x W' + b`, N x nTargets row-major (logits for classification). NaN features
 * propagate to NaN scores.
 */
export function linearScores(model: LinearModel, x: Matrix): Float64Array {
  const p = model.nFeatures;
  const k = model.nTargets;
  checkInput(x, p);
  const n = x.rows;
  const xv = x.values;
  const w = model.coefficients;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const row = i * p;
    for (let t = 0; t < k; t++) {
      let s = model.intercepts[t]!;
      const wRow = t * p;
      for (let j = 0; j < p; j++) s += w[wRow + j]! * xv[row + j]!;
      out[i * k + t] = s;
    }
  }
  return out;
}

/** Predicts with a linear model: probabilities for classification, values for regression. */
export function predictLinear(model: LinearModel, x: Matrix): Predictions {
  const raw = linearScores(model, x);
  return finish(model.task, model.nClasses, model.nTargets, model.postTransform, raw, x.rows);
}

/**
 * Raw tree-ensemble scores, N x nOutputs row-major: `baseValues[k] + aggregate` of the leaf values
 * reached in every tree, where aggregate is the sum or the mean over trees. Walks each tree from the
 * root: left when `x[feature] <= threshold`, and a NaN goes left iff `missingGoesLeft` is 1.
 */
export function treeScores(model: TreeEnsembleModel, x: Matrix): Float64Array {
  const p = model.nFeatures;
  const k = model.nOutputs;
  checkInput(x, p);
  const n = x.rows;
  const xv = x.values;
  const out = new Float64Array(n * k);
  for (const tree of model.trees) {
    const { feature, threshold, left, right, missingGoesLeft, value } = tree;
    for (let i = 0; i < n; i++) {
      const row = i * p;
      let node = 0;
      while (left[node]! !== -1) {
        const v = xv[row + feature[node]!]!;
        // Compare in float32 like onnxruntime does, so the exported model routes every row the same way.
        const goLeft = Number.isNaN(v) ? missingGoesLeft[node] === 1 : Math.fround(v) <= threshold[node]!;
        node = goLeft ? left[node]! : right[node]!;
      }
      const leaf = node * k;
      const o = i * k;
      for (let t = 0; t < k; t++) out[o + t]! += value[leaf + t]!;
    }
  }
  const div = model.aggregate === 'average' && model.trees.length > 0 ? model.trees.length : 1;
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const o = i * k + t;
      out[o] = out[o]! / div + (model.baseValues[t] ?? 0);
    }
  }
  return out;
}

/** Predicts with a tree ensemble: probabilities for classification, values for regression. */
export function predictTrees(model: TreeEnsembleModel, x: Matrix): Predictions {
  const raw = treeScores(model, x);
  return finish(model.task, model.nClasses, model.nOutputs, model.postTransform, raw, x.rows);
}

/** Predicts with any fitted model. */
export function predictScores(model: FittedModel, x: Matrix): Predictions {
  return model.kind === 'linear' ? predictLinear(model, x) : predictTrees(model, x);
}

/** Index of the largest entry of each row of an N x C matrix (first one on ties, as numpy). */
export function argmaxRows(values: Float64Array, nCols: number): Int32Array {
  const n = nCols > 0 ? Math.floor(values.length / nCols) : 0;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * nCols;
    let best = 0;
    let bestV = values[o]!;
    for (let c = 1; c < nCols; c++) {
      const v = values[o + c]!;
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Predicted class of every row, from probabilities N x nClasses. */
export function predictClasses(pred: Predictions, nClasses: number): Int32Array {
  if (pred.probabilities === undefined) throw new Error('predictions hold no probabilities');
  return argmaxRows(pred.probabilities, nClasses);
}

/** Applies the post transform to raw scores and shapes the result by task. */
function finish(
  task: 'classification' | 'regression',
  nClasses: number,
  nOut: number,
  post: 'none' | 'logistic' | 'softmax',
  raw: Float64Array,
  n: number,
): Predictions {
  if (post === 'logistic') {
    for (let q = 0; q < raw.length; q++) raw[q] = sigmoid(raw[q]!);
  } else if (post === 'softmax') {
    for (let i = 0; i < n; i++) softmaxInPlace(raw, i * nOut, nOut);
  }
  if (task === 'regression') {
    if (nOut !== 1) throw new Error(`regression model has ${nOut} outputs, expected 1`);
    return { values: raw };
  }
  if (nOut === 1) {
    // One output is the positive-class probability of a binary problem.
    const proba = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      const pPos = raw[i]!;
      proba[2 * i] = 1 - pPos;
      proba[2 * i + 1] = pPos;
    }
    return { probabilities: proba };
  }
  if (nOut !== nClasses) throw new Error(`classifier has ${nOut} outputs for ${nClasses} classes`);
  return { probabilities: raw };
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

function softmaxInPlace(a: Float64Array, off: number, k: number): void {
  let m = -Infinity;
  for (let t = 0; t < k; t++) if (a[off + t]! > m) m = a[off + t]!;
  let s = 0;
  for (let t = 0; t < k; t++) {
    const e = Math.exp(a[off + t]! - m);
    a[off + t] = e;
    s += e;
  }
  for (let t = 0; t < k; t++) a[off + t] = a[off + t]! / s;
}

function checkInput(x: Matrix, nFeatures: number): void {
  if (x.cols !== nFeatures) throw new RangeError(`input has ${x.cols} columns, model expects ${nFeatures}`);
  if (x.values.length !== x.rows * x.cols) throw new RangeError(`matrix ${x.rows}x${x.cols} holds ${x.values.length} values`);
}
