/**
 * ONNX export of the built-in models (`src/ml/types.ts`), preprocessing included, so a served
 * model takes the raw input matrix and needs no separate transform.
 *
 * Graph contract (what `prepareForServing` and the serving adapters rely on):
 * - input `input`: float32 `[N, pre.columns.length]`, columns in `pre.columns` order; a categorical
 *   column carries its category code (NaN for missing or unseen);
 * - classification: `label` (int64 `[N]` for numeric class labels, string `[N]` for string labels)
 *   and `probabilities` float32 `[N, C]` in `classLabels` order; `label` is always
 *   `classLabels[argmax(probabilities)]` (first maximum on ties);
 * - regression: `variable` float32 `[N, 1]`;
 * - metadata_props: `feature_names`, `feature_types`, `categories`, `task`, `class_labels` (JSON,
 *   see `METADATA_KEYS`), `model_kind`, plus the caller's entries.
 * Operators: ai.onnx opset 15 and, for trees, ai.onnx.ml opset 5 (`TreeEnsemble`), all run by
 * onnxruntime's CPU provider.
 */
import type { ColumnTransform, FittedModel, LinearModel, Preprocessing, Tree, TreeEnsembleModel } from '../ml/types.ts';
import { ModelTooLargeError, ONNX_MAX_BYTES } from './errors.ts';
import { GraphBuilder } from './graph-builder.ts';
import { InvalidModelError, serializeModel, validateModel } from './model-file.ts';
import { DataType, type ModelProto, type ValueInfoProto } from './proto.ts';
import { METADATA_KEYS } from './signature.ts';
import { treeEnsembleArrays, treeEnsembleAttributes, type TreeEnsembleArrays } from './tree-ensemble.ts';
import { attributeField, editGraphNodes, type Piece } from './wire.ts';

export { floorToFloat32 } from './tree-ensemble.ts';

/** Descriptive inputs of {@link exportModel}. */
export interface ExportMeta {
  /** Raw input column names, one per `pre.columns` entry (normally the same names). */
  readonly featureNames: readonly string[];
  /** Class labels in class-index order (classification), `null` for regression. */
  readonly classLabels: readonly (number | string)[] | null;
  /** Written as the model's producer_version (producer_name is `modelplane`). */
  readonly producerVersion: string;
  /** Extra metadata_props; the exporter's own keys take precedence. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** How {@link exportModel} lays the model out. */
export interface ExportOptions {
  /** Most tree nodes in one `TreeEnsemble` operator; default {@link MAX_NODES_PER_TREE_OPERATOR}. */
  readonly maxNodesPerTreeOperator?: number;
  /** Largest model written, bytes; default (and at most) {@link ONNX_MAX_BYTES}. */
  readonly maxBytes?: number;
}

export const EXPORT_OPSET = 15;
export const EXPORT_ML_OPSET = 5;
export const EXPORT_IR_VERSION = 8;
/**
 * Most tree nodes in one `TreeEnsemble` operator. onnxruntime builds a tree kernel through several
 * temporary copies of its attributes (int64 vectors over every node, leaves included, and a hash
 * map of node ids), and frees one kernel's copies before it builds the next; so a large forest
 * split into operators of this size loads with a fraction of the memory of one operator. Measured
 * on the default forest of California housing (100 trees, 2.5 million nodes, 25 MB file):
 * loading peaked 810 MiB above the process's size as one operator and 270 MiB as 39 (0.8 s
 * instead of 1.5 s), for about 0.02 ms more per single-row run. Boosted ensembles of default sizes
 * (a few thousand nodes) stay one operator.
 */
export const MAX_NODES_PER_TREE_OPERATOR = 1 << 16;

export const INPUT_NAME = 'input';
export const LABEL_OUTPUT = 'label';
export const PROBABILITY_OUTPUT = 'probabilities';
export const VALUE_OUTPUT = 'variable';

/**
 * Exports a fitted model with its preprocessing as a self-contained ONNX model.
 *
 * In-graph preprocessing, the same rule as the trainer's `transform` (`src/ml/preprocess.ts`):
 * first, numeric columns: NaN replaced by `fill` (a NaN `fill` leaves it NaN), then
 * `(x - offset) * scale`; categorical columns are neither imputed nor scaled. Then the model
 * features are assembled, for each column in `pre.columns` order: a numeric column or a
 * categorical column without `oneHot` gives one feature (its value or code); a categorical column
 * with `oneHot` gives `categories.length` features, feature k being 1 when the code equals k (a
 * NaN or unknown code gives all zeros). All arithmetic is float32, as at serving time.
 *
 * Linear models: `MatMul` + `Add`, then `Sigmoid` (binary: probabilities `[1 - p, p]`) or
 * `Softmax`. Tree ensembles: ai.onnx.ml `TreeEnsemble` operators (opset 5, see `tree-ensemble.ts`;
 * several summed when the trees hold more than `maxNodesPerTreeOperator` nodes) computing the raw scores (`BRANCH_LEQ`, `nodes_missing_value_tracks_true` from
 * `missingGoesLeft`, averaging folded into the leaf weights), an `Add` of `baseValues` when any is
 * nonzero, then `Sigmoid`/`Softmax` in standard operators, so that probabilities are exactly the
 * documented transform of the raw scores. Thresholds are rounded down to float32, which makes
 * `x <= threshold` give the same answer for every float32 `x` as the float64 comparison of the
 * in-memory model. Node covers are not exported (use {@link treeCoverJson}). The tree attributes
 * are written from the model's typed arrays straight into the returned buffer, which is allocated
 * once at its exact size.
 * @throws InvalidModelError when the model, preprocessing and labels disagree
 * @throws ModelTooLargeError when the file would be over `options.maxBytes` (before it is written)
 */
export function exportModel(model: FittedModel, pre: Preprocessing, meta: ExportMeta, options: ExportOptions = {}): Uint8Array {
  const nRaw = pre.columns.length;
  if (nRaw === 0) throw new InvalidModelError('preprocessing has no columns');
  if (meta.featureNames.length !== nRaw) {
    throw new InvalidModelError(`${meta.featureNames.length} feature names for ${nRaw} input columns`);
  }
  const nFeatures = pre.columns.reduce((n, c) => n + featureWidth(c), 0);
  if (nFeatures !== model.nFeatures) {
    throw new InvalidModelError(`preprocessing yields ${nFeatures} features but the model expects ${model.nFeatures}`);
  }
  const labels = checkLabels(model, meta.classLabels);
  const width = model.kind === 'linear' ? model.nTargets : model.nOutputs;
  if (model.task === 'regression' && (width !== 1 || model.postTransform !== 'none')) {
    throw new InvalidModelError(`a regressor must have one output and no post-transform (has ${width}, '${model.postTransform}')`);
  }

  const g = new GraphBuilder([INPUT_NAME, LABEL_OUTPUT, PROBABILITY_OUTPUT, VALUE_OUTPUT]);
  const features = buildPreprocessing(g, pre);
  const usesMl = model.kind === 'trees';
  const scoresOut = model.task === 'regression' ? VALUE_OUTPUT : undefined;
  const pending: PendingTrees = new Map();
  const scores =
    model.kind === 'linear'
      ? buildLinear(g, model, features, scoresOut)
      : buildTrees(g, model, features, scoresOut, pending, options.maxNodesPerTreeOperator ?? MAX_NODES_PER_TREE_OPERATOR);

  const outputs: ValueInfoProto[] = [];
  if (model.task === 'regression') {
    outputs.push(tensorInfo(VALUE_OUTPUT, DataType.FLOAT, ['N', 1]));
  } else {
    const probs = buildProbabilities(g, model, scores);
    const index = g.node('ArgMax', [probs], { axis: { int: 1 }, keepdims: { int: 0 } });
    const numeric = labels.every((l) => typeof l === 'number');
    const labelConst = numeric
      ? g.int64Const('class_labels', labels, [labels.length])
      : g.stringConst('class_labels', labels.map(String), [labels.length]);
    g.node('Gather', [labelConst, index], { axis: { int: 0 } }, { output: LABEL_OUTPUT });
    outputs.push(tensorInfo(LABEL_OUTPUT, numeric ? DataType.INT64 : DataType.STRING, ['N']));
    outputs.push(tensorInfo(PROBABILITY_OUTPUT, DataType.FLOAT, ['N', labels.length]));
  }

  const metadata: Record<string, string> = { ...meta.metadata };
  metadata[METADATA_KEYS.featureNames] = JSON.stringify(meta.featureNames);
  metadata[METADATA_KEYS.featureTypes] = JSON.stringify(pre.columns.map((c) => c.kind));
  const categories: Record<string, readonly string[]> = {};
  pre.columns.forEach((c, j) => {
    if (c.kind === 'categorical') categories[meta.featureNames[j]!] = c.categories;
  });
  if (Object.keys(categories).length > 0) metadata[METADATA_KEYS.categories] = JSON.stringify(categories);
  metadata[METADATA_KEYS.task] = model.task;
  if (model.task === 'classification') metadata[METADATA_KEYS.classLabels] = JSON.stringify(labels);
  metadata.model_kind = model.kind;

  const onnxModel: ModelProto = {
    irVersion: EXPORT_IR_VERSION,
    producerName: 'modelplane',
    producerVersion: meta.producerVersion,
    opsetImport: [
      { domain: '', version: EXPORT_OPSET },
      ...(usesMl ? [{ domain: 'ai.onnx.ml', version: EXPORT_ML_OPSET }] : []),
    ],
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: `modelplane_${model.kind}_${model.task}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [tensorInfo(INPUT_NAME, DataType.FLOAT, ['N', nRaw])],
      output: outputs,
    },
  };
  validateModel(onnxModel);
  const small = serializeModel(onnxModel);
  const maxBytes = Math.min(options.maxBytes ?? ONNX_MAX_BYTES, ONNX_MAX_BYTES);
  if (pending.size === 0) {
    if (small.length > maxBytes) throw new ModelTooLargeError(small.length, maxBytes);
    return small;
  }
  // The tree attributes go straight from the typed arrays into the final buffer.
  return editGraphNodes(
    small,
    (index, node) => {
      const arrays = pending.get(index);
      if (arrays === undefined) return null;
      const pieces: Piece[] = [node];
      for (const a of treeEnsembleAttributes(arrays)) pieces.push(...attributeField(a));
      return pieces;
    },
    maxBytes,
  );
}

/**
 * Exact node covers of a tree ensemble as JSON, `{"trees": [[cover of node 0, ...], ...]}`, for
 * storing beside the model (e.g. in `reference.json`); the ONNX file does not carry them.
 */
export function treeCoverJson(model: TreeEnsembleModel): string {
  return JSON.stringify({ trees: model.trees.map((t) => Array.from(t.cover)) });
}

function featureWidth(c: ColumnTransform): number {
  return c.kind === 'categorical' && c.oneHot ? c.categories.length : 1;
}

function checkLabels(model: FittedModel, labels: readonly (number | string)[] | null): (number | string)[] {
  if (model.task === 'regression') {
    if (labels && labels.length > 0) throw new InvalidModelError('class labels were given for a regression model');
    return [];
  }
  if (!labels) throw new InvalidModelError('a classifier needs its class labels');
  if (labels.length !== model.nClasses || model.nClasses < 2) {
    throw new InvalidModelError(`${labels.length} class labels for a model with ${model.nClasses} classes`);
  }
  const numeric = labels.every((l) => typeof l === 'number');
  if (!numeric && !labels.every((l) => typeof l === 'string')) {
    throw new InvalidModelError('class labels must be all numbers or all strings');
  }
  if (numeric && !labels.every((l) => Number.isSafeInteger(l))) {
    throw new InvalidModelError('numeric class labels must be integers (the label output is int64); pass them as strings');
  }
  return [...labels];
}

/** Imputation, scaling and one-hot expansion; returns the name of the `[N, F]` feature tensor. */
function buildPreprocessing(g: GraphBuilder, pre: Preprocessing): string {
  const cols = pre.columns;
  const n = cols.length;
  let x = INPUT_NAME;

  const isNumeric = (c: ColumnTransform): boolean => c.kind === 'numeric';
  if (cols.some((c) => isNumeric(c) && !Number.isNaN(c.fill))) {
    // A NaN in the fill row (categorical or "keep missing" columns) puts NaN back where NaN was.
    const fill = cols.map((c) => (isNumeric(c) ? c.fill : Number.NaN));
    const missing = g.node('IsNaN', [x]);
    x = g.node('Where', [missing, g.floatConst('fill', fill, [n]), x]);
  }
  if (cols.some((c) => isNumeric(c) && c.offset !== 0)) {
    x = g.node('Sub', [x, g.floatConst('offset', cols.map((c) => (isNumeric(c) ? c.offset : 0)), [n])]);
  }
  if (cols.some((c) => isNumeric(c) && c.scale !== 1)) {
    x = g.node('Mul', [x, g.floatConst('scale', cols.map((c) => (isNumeric(c) ? c.scale : 1)), [n])]);
  }
  if (!cols.some((c) => c.kind === 'categorical' && c.oneHot)) return x;

  const axes = g.int64Const('axis1', [1], [1]);
  const slice = (from: number, to: number): string =>
    g.node('Slice', [x, g.int64Const('start', [from], [1]), g.int64Const('end', [to], [1]), axes]);
  const pieces: string[] = [];
  let runStart = -1;
  for (let j = 0; j <= n; j++) {
    const c = cols[j];
    const expands = c !== undefined && c.kind === 'categorical' && c.oneHot;
    if (c !== undefined && !expands) {
      if (runStart < 0) runStart = j;
      continue;
    }
    if (runStart >= 0) {
      pieces.push(slice(runStart, j));
      runStart = -1;
    }
    if (c === undefined || c.categories.length === 0) continue;
    const codes = Array.from({ length: c.categories.length }, (_, k) => k);
    // [N, 1] == [K] broadcasts to [N, K]; NaN equals nothing, so missing codes give a zero block.
    const equal = g.node('Equal', [slice(j, j + 1), g.floatConst(`codes_${j}`, codes, [codes.length])]);
    pieces.push(g.node('Cast', [equal], { to: { int: DataType.FLOAT } }));
  }
  return pieces.length === 1 ? pieces[0]! : g.node('Concat', pieces, { axis: { int: 1 } });
}

/** Raw scores `[N, nTargets]` of a linear model. */
function buildLinear(g: GraphBuilder, m: LinearModel, features: string, output: string | undefined): string {
  const { nFeatures: f, nTargets: t } = m;
  if (m.coefficients.length !== f * t || m.intercepts.length !== t) {
    throw new InvalidModelError(`linear model arrays do not match ${t} targets x ${f} features`);
  }
  // Stored target-major (t x f); MatMul wants f x t.
  const w = new Float64Array(f * t);
  for (let k = 0; k < t; k++) for (let j = 0; j < f; j++) w[j * t + k] = m.coefficients[k * f + j]!;
  const product = g.node('MatMul', [features, g.floatConst('coefficients', w, [f, t])]);
  return g.node('Add', [product, g.floatConst('intercepts', m.intercepts, [t])], {}, output ? { output } : {});
}

/**
 * Raw scores `[N, nOutputs]` of a tree ensemble: ai.onnx.ml `TreeEnsemble` nodes over consecutive
 * runs of trees of at most `maxNodes` nodes (a larger tree alone), whose
 * large attributes are laid out now (see `tree-ensemble.ts`) but only written when the model is
 * serialized; a `Sum` of their scores when there are several; an `Add` of the base values when any
 * is nonzero.
 */
function buildTrees(g: GraphBuilder, m: TreeEnsembleModel, features: string, output: string | undefined, pending: PendingTrees, maxNodes: number): string {
  if (m.baseValues.length !== m.nOutputs) {
    throw new InvalidModelError(`${m.baseValues.length} base values for ${m.nOutputs} outputs`);
  }
  if (m.trees.length === 0) throw new InvalidModelError('the tree ensemble has no trees');
  const hasBase = m.baseValues.some((v) => v !== 0);
  const parts: (readonly Tree[])[] = [];
  let part: Tree[] = [];
  let nodes = 0;
  for (const tree of m.trees) {
    if (part.length > 0 && nodes + tree.left.length > maxNodes) {
      parts.push(part);
      part = [];
      nodes = 0;
    }
    part.push(tree);
    nodes += tree.left.length;
  }
  parts.push(part);
  const last = output !== undefined && !hasBase ? { output } : {};
  const scores = parts.map((trees) => {
    pending.set(g.nodes.length, treeEnsembleArrays(m, trees));
    return g.node('TreeEnsemble', [features], {}, { domain: 'ai.onnx.ml', ...(parts.length === 1 ? last : {}) });
  });
  const raw = scores.length === 1 ? scores[0]! : g.node('Sum', scores, {}, last);
  if (!hasBase) return raw;
  return g.node('Add', [raw, g.floatConst('base_values', m.baseValues, [m.nOutputs])], {}, output ? { output } : {});
}

/** Tree nodes (by index in the graph) whose attributes are spliced in at serialization. */
type PendingTrees = Map<number, TreeEnsembleArrays>;

/** Probabilities `[N, C]` from raw scores, named {@link PROBABILITY_OUTPUT}. */
function buildProbabilities(g: GraphBuilder, m: FittedModel, scores: string): string {
  const width = m.kind === 'linear' ? m.nTargets : m.nOutputs;
  if (m.postTransform === 'logistic' && width === 1 && m.nClasses === 2) {
    const p = g.node('Sigmoid', [scores]);
    const q = g.node('Sub', [g.floatConst('one', [1], [1]), p]);
    return g.node('Concat', [q, p], { axis: { int: 1 } }, { output: PROBABILITY_OUTPUT });
  }
  if (m.postTransform === 'softmax' && width === m.nClasses) {
    return g.node('Softmax', [scores], { axis: { int: 1 } }, { output: PROBABILITY_OUTPUT });
  }
  if (m.postTransform === 'none' && m.kind === 'trees' && width === m.nClasses) {
    // Forest leaves already hold class probabilities.
    return g.node('Identity', [scores], {}, { output: PROBABILITY_OUTPUT });
  }
  throw new InvalidModelError(
    `unsupported classifier: ${width} outputs with post-transform '${m.postTransform}' for ${m.nClasses} classes`,
  );
}

function tensorInfo(name: string, elemType: number, dims: readonly (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}
