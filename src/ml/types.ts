/**
 * Shared shapes of the built-in trainers: the numeric matrix they learn from and the fitted models
 * they return. The ONNX exporters in `src/onnx/` consume these shapes, so they are the contract
 * between training and serving. Pure data, no behaviour.
 */

export type Task = 'classification' | 'regression';

/**
 * A dense, row-major numeric matrix: value of row `i`, column `j` is `values[i * cols + j]`.
 * Missing values are `NaN`.
 */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly values: Float64Array;
}

/**
 * Training data after preprocessing. For classification `y` holds class indices `0..nClasses-1`
 * (as floats); for regression the target values.
 */
export interface TrainingData {
  readonly x: Matrix;
  readonly y: Float64Array;
  readonly task: Task;
  /** Number of classes for classification, 0 for regression. */
  readonly nClasses: number;
}

/** Progress callback: `fraction` in [0, 1], a short human message. */
export type ProgressFn = (fraction: number, message: string) => void;

/**
 * A fitted linear model. `coefficients` is `nTargets x nFeatures` row-major, where `nTargets` is
 * 1 for regression, 1 for binary classification (the positive-class logit) and `nClasses` for
 * multinomial classification.
 */
export interface LinearModel {
  readonly kind: 'linear';
  readonly task: Task;
  readonly nFeatures: number;
  readonly nTargets: number;
  readonly coefficients: Float64Array;
  readonly intercepts: Float64Array;
  /** `logistic` for binary, `softmax` for multinomial, `none` for regression. */
  readonly postTransform: 'none' | 'logistic' | 'softmax';
  /** Classes for classification (`nClasses`), empty for regression. */
  readonly nClasses: number;
}

/**
 * One binary decision tree in flat arrays (index = node id, root is 0). A node is a leaf when
 * `left[i] === -1`. Decision rule: go left when `x[feature[i]] <= threshold[i]`; a missing value
 * (`NaN`) goes left when `missingGoesLeft[i] === 1`, right otherwise.
 * `value` is `nodeCount x nOutputs` row-major and only meaningful at leaves (internal nodes may hold
 * the node's mean for explanations). `cover` is the number (or weight) of training samples that
 * reached the node, kept for exact (TreeSHAP-style) explanations.
 */
export interface Tree {
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  readonly left: Int32Array;
  readonly right: Int32Array;
  readonly missingGoesLeft: Uint8Array;
  readonly value: Float64Array;
  readonly cover: Float64Array;
}

/**
 * A fitted tree ensemble (one tree, a forest or boosted trees).
 * Raw score of output k = `baseValues[k] + aggregate_t(value of leaf reached in tree t, output k)`
 * where `aggregate` is `sum` (boosting; learning rate already folded into leaf values) or `average`
 * (forests, single trees). Then `postTransform` maps raw scores to probabilities.
 * Classification: `nOutputs` is `nClasses`, except binary boosting which has one output (the
 * positive-class logit, postTransform `logistic`). Forest leaves hold class probabilities
 * (postTransform `none`). Regression: one output, postTransform `none`.
 */
export interface TreeEnsembleModel {
  readonly kind: 'trees';
  readonly task: Task;
  readonly nFeatures: number;
  readonly nOutputs: number;
  readonly nClasses: number;
  readonly trees: readonly Tree[];
  readonly baseValues: Float64Array;
  readonly aggregate: 'sum' | 'average';
  readonly postTransform: 'none' | 'logistic' | 'softmax';
}

export type FittedModel = LinearModel | TreeEnsembleModel;

/**
 * How raw table columns become the model's numeric features. Applied identically by the trainer
 * (in TypeScript) and by the exported ONNX graph, so serving needs no separate transform.
 * Raw model input is one float tensor `[N, columns.length]` in `columns` order; a categorical
 * column carries the category's index in `categories` (NaN for missing or unseen).
 */
export interface ColumnTransform {
  readonly name: string;
  readonly kind: 'numeric' | 'categorical';
  /**
   * Value substituted for NaN (numeric: training mean). `NaN` here means "leave missing values
   * as NaN" (tree models route them with `missingGoesLeft`). Ignored for categorical.
   */
  readonly fill: number;
  /** Standardisation applied after imputation (linear models): (x - offset) * scale. */
  readonly offset: number;
  readonly scale: number;
  /** Category labels, index = code (categorical only). */
  readonly categories: readonly string[];
  /** Categorical: expand to one-hot columns (linear models) instead of keeping the code (trees). */
  readonly oneHot: boolean;
}

export interface Preprocessing {
  readonly columns: readonly ColumnTransform[];
}
