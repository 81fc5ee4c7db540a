/**
 * The serving signature of a model: how to build its input tensor from named features and how to
 * read its outputs. Stored as `signature.json` beside `model.onnx` in a model version bundle.
 */
import { InvalidModelError } from './errors.ts';
import {
  guessLabelOutput,
  guessProbabilityOutput,
  inspectModel,
  type ModelInfo,
  type ValueDescription,
} from './inspect.ts';
import type { ModelProto } from './proto.ts';
import { removeZipMap } from './zipmap.ts';

export type FeatureType = 'numeric' | 'categorical';
export type ClassLabel = number | string;

/**
 * JSON-serialisable description of how to call a model.
 *
 * Input: one float32/double tensor. `rank` 2 means `[N, nFeatures]` (split requests into chunks of
 * `fixedBatch` rows when it is not null); `rank` 1 means a single row `[nFeatures]` (`fixedBatch`
 * is then 1). Features are in `featureNames` order; a categorical feature carries the index of its
 * label in `categories[name]` (NaN when missing or unknown).
 * Outputs: for classification `probabilities` (float `[N, C]`, columns in `classLabels` order)
 * and/or `label` (`[N]`, int64 or string per `labelType`); when `label` is absent, the label is
 * `classLabels[argmax(probabilities)]`. For regression `value` (float `[N, 1]` or `[N]`).
 */
export interface ModelSignature {
  input: {
    name: string;
    elementType: 'float32' | 'double';
    nFeatures: number;
    fixedBatch: number | null;
    rank: 1 | 2;
  };
  featureNames: string[];
  featureTypes: FeatureType[];
  categories?: Record<string, string[]>;
  task: 'classification' | 'regression';
  classLabels: ClassLabel[] | null;
  labelType: 'int64' | 'string' | 'float' | null;
  outputs: { label?: string; probabilities?: string; value?: string };
}

/** What the registering user may tell us that the file does not say (or says differently). */
export interface SignatureHints {
  /** One name per input column, in column order. */
  featureNames?: readonly string[];
  /** One type per input column; default numeric, or the model's `feature_types` metadata. */
  featureTypes?: readonly FeatureType[];
  /** Labels of categorical features (index = code), keyed by feature name. */
  categories?: Readonly<Record<string, readonly string[]>>;
  /** Class labels in probability-column order. */
  classLabels?: readonly ClassLabel[];
  task?: 'classification' | 'regression';
}

/**
 * Metadata keys (model `metadata_props`) read by {@link inferSignature} and written by the
 * built-in exporter: `feature_names` (JSON array or comma-separated list), `feature_types` (JSON
 * array of `numeric`/`categorical`), `categories` (JSON object name -> labels), `class_labels`
 * (JSON array), `task`.
 */
export const METADATA_KEYS = {
  featureNames: 'feature_names',
  featureTypes: 'feature_types',
  categories: 'categories',
  classLabels: 'class_labels',
  task: 'task',
} as const;

/**
 * Infers the serving signature of a model, as it will be served: ZipMap outputs are taken as
 * replaced by their probability tensors (see `removeZipMap`; `prepareForServing` does both).
 *
 * Supports models with ONE float32/double input `[N, F]` or `[F]`; multi-input models are
 * refused (a known limit: the serving adapter builds exactly one tensor). Feature names come from
 * `hints`, else the `feature_names` metadata, else `f0..f{F-1}`; F is the input's last dimension
 * (a symbolic F needs names). The task is classification when the model has a label or probability
 * output or a classifier operator (or `hints.task` says so, for e.g. a torch model returning
 * probabilities). Hint counts are checked against the model.
 * @throws InvalidModelError when the model cannot be served this way or the hints disagree with it
 */
export function inferSignature(model: ModelProto, hints: SignatureHints = {}): ModelSignature {
  const removal = removeZipMap(model);
  return signatureFromInfo(inspectModel(removal.model), hints, removal.changed ? removal : undefined);
}

/** What `removeZipMap` learnt about a classifier's outputs. */
export interface RewriteFindings {
  readonly probabilityOutput: string | null;
  readonly labelOutput: string | null;
  readonly classLabels: ClassLabel[] | null;
}

/**
 * {@link inferSignature} on an already inspected (ZipMap-free) model; `fromRewrite`, when the
 * model was rewritten, names the outputs and labels found there, which beat guessing from names.
 */
export function signatureFromInfo(info: ModelInfo, hints: SignatureHints = {}, fromRewrite?: RewriteFindings): ModelSignature {
  const input = singleInput(info);
  const shape = input.shape ?? [];
  const rank = shape.length as 1 | 2;
  const lastDim = shape[shape.length - 1] ?? null;

  // Features.
  const metaNames = parseNameList(info.metadata[METADATA_KEYS.featureNames], METADATA_KEYS.featureNames);
  let featureNames: string[];
  if (hints.featureNames) {
    featureNames = [...hints.featureNames];
    if (lastDim !== null && featureNames.length !== lastDim) {
      throw new InvalidModelError(
        `${featureNames.length} feature names were given but input '${input.name}' has ${lastDim} features`,
      );
    }
  } else if (metaNames) {
    if (lastDim !== null && metaNames.length !== lastDim) {
      throw new InvalidModelError(
        `metadata '${METADATA_KEYS.featureNames}' lists ${metaNames.length} names but input '${input.name}' has ${lastDim} features; give the feature names`,
      );
    }
    featureNames = metaNames;
  } else if (lastDim !== null) {
    featureNames = Array.from({ length: lastDim }, (_, i) => `f${i}`);
  } else {
    throw new InvalidModelError(
      `input '${input.name}' has a symbolic feature dimension; give the feature names so the feature count is known`,
    );
  }
  checkUnique(featureNames);
  const nFeatures = featureNames.length;
  if (nFeatures === 0) throw new InvalidModelError(`input '${input.name}' has no features (last dimension is 0)`);

  const metaTypes = parseJson(info.metadata[METADATA_KEYS.featureTypes], METADATA_KEYS.featureTypes);
  let featureTypes: FeatureType[];
  if (hints.featureTypes) featureTypes = [...hints.featureTypes];
  else if (isFeatureTypeArray(metaTypes) && metaTypes.length === nFeatures) featureTypes = metaTypes;
  else featureTypes = featureNames.map(() => 'numeric');
  if (featureTypes.length !== nFeatures) {
    throw new InvalidModelError(`${featureTypes.length} feature types were given for ${nFeatures} features`);
  }

  const metaCategories = parseJson(info.metadata[METADATA_KEYS.categories], METADATA_KEYS.categories);
  const categorySource = hints.categories ?? (isCategoryRecord(metaCategories) ? metaCategories : undefined);
  let categories: Record<string, string[]> | undefined;
  featureTypes.forEach((t, i) => {
    if (t !== 'categorical') return;
    const name = featureNames[i]!;
    const labels = categorySource?.[name];
    if (!labels) throw new InvalidModelError(`categorical feature '${name}' has no category labels`);
    categories ??= {};
    categories[name] = [...labels];
  });

  // Outputs and task.
  const rewritten = fromRewrite?.probabilityOutput
    ? info.outputs.find((o) => o.name === fromRewrite.probabilityOutput)
    : undefined;
  // A float output merely named "prob..." counts only when it could hold two or more classes.
  const guessed = guessProbabilityOutput(info.outputs);
  const probability = rewritten ?? (guessed && guessed.shape?.[1] !== 1 ? guessed : undefined);
  const hasClassifierOp = info.classifierOps.length > 0;
  const metaTask = info.metadata[METADATA_KEYS.task];
  const exclude = new Set(probability ? [probability.name] : []);
  const labelOut =
    (fromRewrite?.labelOutput ? info.outputs.find((o) => o.name === fromRewrite.labelOutput) : undefined) ??
    guessLabelOutput(info.outputs, exclude, hasClassifierOp || hints.task === 'classification');

  const looksClassifier = Boolean(probability || labelOut || hasClassifierOp || metaTask === 'classification');
  // Name-based guesses give way to the user's word; operators, ZipMaps and label outputs do not.
  const surelyClassifier = Boolean(rewritten || labelOut || hasClassifierOp);
  if (hints.task === 'regression' && surelyClassifier) {
    throw new InvalidModelError(
      `the model is a classifier (${describeClassifier(probability, labelOut, info)}) but task 'regression' was given`,
    );
  }
  const task = hints.task ?? (looksClassifier ? 'classification' : 'regression');

  if (task === 'regression') {
    const value = info.outputs.find(
      (o) => o.kind === 'tensor' && (o.elementType === 'float32' || o.elementType === 'double'),
    );
    if (!value) {
      throw new InvalidModelError(
        `no float tensor output to read a regression value from (outputs: ${describeOutputs(info.outputs)})`,
      );
    }
    if (hints.classLabels) throw new InvalidModelError('class labels were given for a regression model');
    return {
      input: signatureInput(input, nFeatures, rank, info),
      featureNames,
      featureTypes,
      ...(categories ? { categories } : {}),
      task,
      classLabels: null,
      labelType: null,
      outputs: { value: value.name },
    };
  }

  // Classification. A model that only says so through the hint (e.g. a torch net) gives its
  // probabilities as the one float output.
  let probs = probability;
  if (!probs && !labelOut) {
    const floats = info.outputs.filter(
      (o) => o.kind === 'tensor' && (o.elementType === 'float32' || o.elementType === 'double'),
    );
    if (floats.length === 1) probs = floats[0];
    else {
      throw new InvalidModelError(
        `cannot tell which output holds class probabilities (outputs: ${describeOutputs(info.outputs)})`,
      );
    }
  }
  if (probs && (probs.kind !== 'tensor' || (probs.shape !== null && probs.shape.length !== 2))) {
    throw new InvalidModelError(`probability output '${probs.name}' is not a [N, C] tensor`);
  }
  const nClassesFromShape = probs?.shape?.[1] ?? null;

  const metaLabels = parseJson(info.metadata[METADATA_KEYS.classLabels], METADATA_KEYS.classLabels);
  const modelLabels: ClassLabel[] | null =
    fromRewrite?.classLabels ?? info.classLabels ?? (isLabelArray(metaLabels) ? metaLabels : null);
  const nClasses = modelLabels?.length ?? nClassesFromShape;
  if (modelLabels && nClassesFromShape !== null && modelLabels.length !== nClassesFromShape) {
    throw new InvalidModelError(
      `the model names ${modelLabels.length} classes but its probability output '${probs?.name ?? ''}' has ${nClassesFromShape} columns`,
    );
  }

  let classLabels: ClassLabel[] | null = modelLabels;
  let labelName = labelOut?.name;
  if (hints.classLabels) {
    const given = [...hints.classLabels];
    if (nClasses !== null && given.length !== nClasses) {
      throw new InvalidModelError(`${given.length} class labels were given but the model has ${nClasses} classes`);
    }
    if (modelLabels && !sameLabels(modelLabels, given)) {
      // The label output would still return the model's own labels; derive labels from the
      // probabilities instead so the hint's names are what clients see.
      if (!probs) {
        throw new InvalidModelError(
          `the given class labels differ from the model's (${modelLabels.join(', ')}) and the model has no probability output to map them from`,
        );
      }
      labelName = undefined;
    }
    classLabels = given;
  } else if (!classLabels && nClasses !== null && !labelOut) {
    // Nothing names the classes: probability columns are the class indices.
    classLabels = Array.from({ length: nClasses }, (_, i) => i);
  }

  const labelType = labelName
    ? labelTypeOf(labelOut)
    : classLabels
      ? classLabels.every((l) => typeof l === 'number')
        ? 'int64'
        : 'string'
      : null;

  const outputs: ModelSignature['outputs'] = {};
  if (labelName) outputs.label = labelName;
  if (probs) outputs.probabilities = probs.name;
  return {
    input: signatureInput(input, nFeatures, rank, info),
    featureNames,
    featureTypes,
    ...(categories ? { categories } : {}),
    task,
    classLabels,
    labelType,
    outputs,
  };
}

function singleInput(info: ModelInfo): ValueDescription {
  if (info.inputs.length !== 1) {
    throw new InvalidModelError(
      `the model has ${info.inputs.length} inputs (${info.inputs.map((i) => `'${i.name}'`).join(', ')}); ` +
        'modelplane serves models with exactly one float tensor input [N, F] (a known limit: concatenate the features into one input when converting)',
    );
  }
  const input = info.inputs[0]!;
  if (input.kind !== 'tensor') throw new InvalidModelError(`input '${input.name}' is a ${input.kind}, not a tensor`);
  if (input.elementType !== 'float32' && input.elementType !== 'double') {
    throw new InvalidModelError(
      `input '${input.name}' has element type ${input.elementType ?? 'unknown'}; only float32 or double inputs are supported`,
    );
  }
  const rank = input.shape?.length;
  if (rank !== 1 && rank !== 2) {
    throw new InvalidModelError(
      `input '${input.name}' has ${rank === undefined ? 'an unknown shape' : `rank ${rank}`}; expected [N, F] or [F]`,
    );
  }
  return input;
}

function signatureInput(input: ValueDescription, nFeatures: number, rank: 1 | 2, info: ModelInfo): ModelSignature['input'] {
  return {
    name: input.name,
    elementType: input.elementType === 'double' ? 'double' : 'float32',
    nFeatures,
    // A rank-1 input holds exactly one row.
    fixedBatch: rank === 1 ? 1 : info.fixedBatch,
    rank,
  };
}

function labelTypeOf(o: ValueDescription | undefined): ModelSignature['labelType'] {
  if (!o) return null;
  if (o.elementType === 'string') return 'string';
  if (o.elementType === 'int64' || o.elementType === 'int32') return 'int64';
  return 'float';
}

function sameLabels(a: readonly ClassLabel[], b: readonly ClassLabel[]): boolean {
  return a.length === b.length && a.every((v, i) => String(v) === String(b[i]));
}

function describeClassifier(p: ValueDescription | undefined, l: ValueDescription | undefined, info: ModelInfo): string {
  if (info.classifierOps.length > 0) return `it uses ${info.classifierOps.join(', ')}`;
  if (p) return `output '${p.name}' holds probabilities`;
  if (l) return `output '${l.name}' holds labels`;
  return 'its metadata says so';
}

function describeOutputs(outputs: readonly ValueDescription[]): string {
  return outputs.map((o) => `'${o.name}' ${o.kind} ${o.elementType ?? '?'}`).join(', ') || 'none';
}

function checkUnique(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new InvalidModelError(`feature name '${n}' appears twice`);
    seen.add(n);
  }
}

function parseJson(text: string | undefined, key: string): unknown {
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidModelError(`metadata '${key}' is not valid JSON`, { cause: err });
  }
}

/** `feature_names` metadata: a JSON array of strings, or a comma-separated list. */
function parseNameList(text: string | undefined, key: string): string[] | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    const parsed = parseJson(trimmed, key);
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) {
      throw new InvalidModelError(`metadata '${key}' must be an array of strings`);
    }
    return parsed;
  }
  return trimmed.split(',').map((s) => s.trim());
}

function isFeatureTypeArray(v: unknown): v is FeatureType[] {
  return Array.isArray(v) && v.every((t) => t === 'numeric' || t === 'categorical');
}

function isCategoryRecord(v: unknown): v is Record<string, string[]> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((a) => Array.isArray(a) && a.every((s) => typeof s === 'string'))
  );
}

function isLabelArray(v: unknown): v is ClassLabel[] {
  return Array.isArray(v) && v.every((l) => typeof l === 'number' || typeof l === 'string');
}
