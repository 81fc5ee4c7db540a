/**
 * A reference evaluator of the built-in model shapes, written independently of the exporter, to
 * check exported graphs against. Preprocessing reproduces float32 arithmetic step by step (as
 * onnxruntime does) so tree routing near thresholds is compared exactly; model arithmetic is float64.
 */
import type { FittedModel, Matrix, Preprocessing, Tree } from '../../src/ml/types.ts';

const f32 = Math.fround;

/** Raw rows -> model features, float32 at each step like the exported graph. */
export function referenceFeatures(pre: Preprocessing, raw: Matrix): { cols: number; values: Float64Array } {
  let cols = 0;
  for (const c of pre.columns) cols += c.kind === 'categorical' && c.oneHot ? c.categories.length : 1;
  const values = new Float64Array(raw.rows * cols);
  for (let i = 0; i < raw.rows; i++) {
    let at = i * cols;
    pre.columns.forEach((c, j) => {
      const x = f32(raw.values[i * raw.cols + j]!);
      if (c.kind === 'categorical') {
        if (c.oneHot) {
          for (let k = 0; k < c.categories.length; k++) values[at + k] = x === k ? 1 : 0;
          at += c.categories.length;
        } else values[at++] = x;
        return;
      }
      const filled = Number.isNaN(x) ? f32(c.fill) : x;
      values[at++] = f32(f32(filled - f32(c.offset)) * f32(c.scale));
    });
  }
  return { cols, values };
}

function leafOf(tree: Tree, x: Float64Array, base: number): number {
  let node = 0;
  while (tree.left[node] !== -1) {
    const v = x[base + tree.feature[node]!]!;
    const goLeft = Number.isNaN(v) ? tree.missingGoesLeft[node] === 1 : v <= tree.threshold[node]!;
    node = goLeft ? tree.left[node]! : tree.right[node]!;
  }
  return node;
}

/** Raw scores `[rows, width]` of a model on feature rows. */
function rawScores(model: FittedModel, x: Float64Array, cols: number, rows: number): { width: number; scores: Float64Array } {
  if (model.kind === 'linear') {
    const t = model.nTargets;
    const scores = new Float64Array(rows * t);
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < t; k++) {
        let s = f32(model.intercepts[k]!);
        for (let j = 0; j < cols; j++) s += f32(model.coefficients[k * cols + j]!) * x[i * cols + j]!;
        scores[i * t + k] = s;
      }
    }
    return { width: t, scores };
  }
  const w = model.nOutputs;
  const scores = new Float64Array(rows * w);
  for (let i = 0; i < rows; i++) {
    for (const tree of model.trees) {
      const leaf = leafOf(tree, x, i * cols);
      for (let k = 0; k < w; k++) scores[i * w + k] = scores[i * w + k]! + tree.value[leaf * w + k]!;
    }
    for (let k = 0; k < w; k++) {
      const sum = scores[i * w + k]!;
      scores[i * w + k] = model.baseValues[k]! + (model.aggregate === 'average' ? sum / model.trees.length : sum);
    }
  }
  return { width: w, scores };
}

export interface ReferencePrediction {
  /** Row-major `[rows, C]` for classifiers. */
  readonly probabilities?: Float64Array;
  readonly classIndex?: Int32Array;
  /** `[rows]` for regressors. */
  readonly values?: Float64Array;
}

/** Predictions of `model` with preprocessing `pre` on raw rows. */
export function referencePredict(model: FittedModel, pre: Preprocessing, raw: Matrix): ReferencePrediction {
  const { cols, values: x } = referenceFeatures(pre, raw);
  const rows = raw.rows;
  const { width, scores } = rawScores(model, x, cols, rows);
  if (model.task === 'regression') return { values: scores };
  const c = model.nClasses;
  const probabilities = new Float64Array(rows * c);
  const classIndex = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const row = probabilities.subarray(i * c, (i + 1) * c);
    if (model.postTransform === 'logistic' && width === 1) {
      const p = 1 / (1 + Math.exp(-scores[i]!));
      row[0] = 1 - p;
      row[1] = p;
    } else if (model.postTransform === 'softmax') {
      let max = -Infinity;
      for (let k = 0; k < c; k++) max = Math.max(max, scores[i * width + k]!);
      let sum = 0;
      for (let k = 0; k < c; k++) sum += row[k] = Math.exp(scores[i * width + k]! - max);
      for (let k = 0; k < c; k++) row[k] = row[k]! / sum;
    } else {
      for (let k = 0; k < c; k++) row[k] = scores[i * width + k]!;
    }
    let best = 0;
    for (let k = 1; k < c; k++) if (row[k]! > row[best]!) best = k;
    classIndex[i] = best;
  }
  return { probabilities, classIndex };
}
