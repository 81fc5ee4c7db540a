/**
 * A plain, JSON-serialisable description of an ONNX model: what it takes, what it returns, who
 * made it and which classes it predicts. Used for registration checks, signatures and the UI.
 */
import {
  attributeInts,
  attributeStrings,
  elementTypeName,
  feedInputs,
  int64ToNumber,
  isDefaultDomain,
  producersByOutput,
  type ModelProto,
  type NodeProto,
  type TypeProto,
  type ValueInfoProto,
} from './proto.ts';

export type ValueKind = 'tensor' | 'sequence' | 'map' | 'optional' | 'sparse_tensor' | 'unknown';

/** One graph input or output. */
export interface ValueDescription {
  readonly name: string;
  readonly kind: ValueKind;
  /**
   * Element type name (`float32`, `double`, `int64`, `string`, ...): of the tensor; for a map, of
   * its values; for a sequence or optional, of its elements (recursively). `null` when unknown.
   */
  readonly elementType: string | null;
  /** Key type of a map, or of the maps in a sequence of maps (ZipMap output). */
  readonly keyType?: string;
  /** Kind of the elements of a sequence or optional. */
  readonly elementKind?: ValueKind;
  /** Tensor dimensions: a number when fixed, `null` when symbolic or unknown. `null` when the rank is unknown or not a tensor. */
  readonly shape: (number | null)[] | null;
}

export interface OpsetDescription {
  readonly domain: string;
  readonly version: number;
}

/** Result of {@link inspectModel}. */
export interface ModelInfo {
  readonly irVersion: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly modelDomain: string;
  readonly modelVersion: number;
  readonly docString: string;
  readonly opsets: OpsetDescription[];
  readonly metadata: Record<string, string>;
  readonly inputs: ValueDescription[];
  readonly outputs: ValueDescription[];
  /** Distinct operators of the top-level graph, `domain:OpType` (`OpType` alone for the default domain). */
  readonly operators: string[];
  /** Graph outputs produced directly by a ZipMap (sequence of maps, which onnxruntime-node cannot return). */
  readonly zipMapOutputs: string[];
  readonly hasZipMapOutput: boolean;
  /** Classifier operators found (LinearClassifier, TreeEnsembleClassifier, SVMClassifier). */
  readonly classifierOps: string[];
  /** Class labels in probability-column order: ints as numbers, strings as strings; `null` when none found. */
  readonly classLabels: (number | string)[] | null;
  /** Where {@link classLabels} came from: `ZipMap` or the classifier op type. */
  readonly classLabelSource: string | null;
  /** Fixed first dimension of the first input (an old converter's `[1, F]`), `null` when symbolic or rank < 2. */
  readonly fixedBatch: number | null;
}

export const CLASSIFIER_OPS: ReadonlySet<string> = new Set(['LinearClassifier', 'TreeEnsembleClassifier', 'SVMClassifier']);

/**
 * Describes a decoded model (see `parseModel`). Pure; never fails on a model `parseModel` accepted.
 */
export function inspectModel(model: ModelProto): ModelInfo {
  const graph = model.graph ?? {};
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? '';

  const inputs = feedInputs(graph).map(describeValue);
  const outputs = (graph.output ?? []).map(describeValue);

  const operators: string[] = [];
  const seenOps = new Set<string>();
  const classifierOps: string[] = [];
  for (const node of graph.node ?? []) {
    const op = isDefaultDomain(node.domain) ? (node.opType ?? '') : `${node.domain ?? ''}:${node.opType ?? ''}`;
    if (!seenOps.has(op)) {
      seenOps.add(op);
      operators.push(op);
      if (node.domain === 'ai.onnx.ml' && CLASSIFIER_OPS.has(node.opType ?? '')) {
        classifierOps.push(node.opType ?? '');
      }
    }
  }

  const zipMaps = zipMapOutputNodes(model);
  const zipMapOutputs = zipMaps.map((z) => z.output);

  let classLabels: (number | string)[] | null = null;
  let classLabelSource: string | null = null;
  for (const z of zipMaps) {
    const labels = classLabelsOf(z.node, ['classlabels_int64s', 'classlabels_strings']);
    if (labels) {
      classLabels = labels;
      classLabelSource = 'ZipMap';
      break;
    }
  }
  if (!classLabels) {
    for (const node of graph.node ?? []) {
      if (node.domain !== 'ai.onnx.ml' || !classifierOps.includes(node.opType ?? '')) continue;
      const labels = classLabelsOf(node, ['classlabels_int64s', 'classlabels_ints', 'classlabels_strings']);
      if (labels) {
        classLabels = labels;
        classLabelSource = node.opType ?? null;
        break;
      }
    }
  }

  const first = inputs[0];
  const dim0 = first?.shape && first.shape.length >= 2 ? first.shape[0] : null;
  const fixedBatch = typeof dim0 === 'number' && dim0 > 0 ? dim0 : null;

  return {
    irVersion: int64ToNumber(model.irVersion),
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    modelDomain: model.domain ?? '',
    modelVersion: int64ToNumber(model.modelVersion),
    docString: model.docString ?? '',
    opsets: (model.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: int64ToNumber(o.version) })),
    metadata,
    inputs,
    outputs,
    operators,
    zipMapOutputs,
    hasZipMapOutput: zipMapOutputs.length > 0,
    classifierOps,
    classLabels,
    classLabelSource,
    fixedBatch,
  };
}

/** Graph outputs produced directly by an ai.onnx.ml ZipMap node, with that node. */
export function zipMapOutputNodes(model: ModelProto): { output: string; node: NodeProto }[] {
  const graph = model.graph;
  if (!graph) return [];
  const producers = producersByOutput(graph);
  const found: { output: string; node: NodeProto }[] = [];
  for (const out of graph.output ?? []) {
    const node = producers.get(out.name ?? '');
    if (node && node.opType === 'ZipMap' && node.domain === 'ai.onnx.ml') found.push({ output: out.name ?? '', node });
  }
  return found;
}

/** Class labels from the first present attribute of `names`: int64 labels as numbers. */
export function classLabelsOf(node: NodeProto, names: readonly string[]): (number | string)[] | undefined {
  for (const name of names) {
    if (name.endsWith('strings')) {
      const s = attributeStrings(node, name);
      if (s) return s;
    } else {
      const i = attributeInts(node, name);
      if (i) return i;
    }
  }
  return undefined;
}

/** Describes one input or output value. */
export function describeValue(v: ValueInfoProto): ValueDescription {
  return { name: v.name ?? '', ...describeType(v.type ?? undefined) };
}

function describeType(t: TypeProto | undefined): Omit<ValueDescription, 'name'> {
  if (!t) return { kind: 'unknown', elementType: null, shape: null };
  if (t.tensorType) {
    const tt = t.tensorType;
    return {
      kind: 'tensor',
      elementType: tt.elemType ? elementTypeName(tt.elemType) : null,
      shape: tt.shape ? (tt.shape.dim ?? []).map(dimValue) : null,
    };
  }
  if (t.sparseTensorType) {
    const st = t.sparseTensorType;
    return {
      kind: 'sparse_tensor',
      elementType: st.elemType ? elementTypeName(st.elemType) : null,
      shape: st.shape ? (st.shape.dim ?? []).map(dimValue) : null,
    };
  }
  if (t.mapType) {
    const inner = describeType(t.mapType.valueType ?? undefined);
    return { kind: 'map', elementType: inner.elementType, keyType: elementTypeName(t.mapType.keyType), shape: null };
  }
  if (t.sequenceType || t.optionalType) {
    const inner = describeType((t.sequenceType ?? t.optionalType)?.elemType ?? undefined);
    const d: Omit<ValueDescription, 'name'> = {
      kind: t.sequenceType ? 'sequence' : 'optional',
      elementType: inner.elementType,
      elementKind: inner.kind,
      shape: null,
    };
    return inner.keyType === undefined ? d : { ...d, keyType: inner.keyType };
  }
  return { kind: 'unknown', elementType: null, shape: null };
}

function dimValue(d: { dimValue?: number | { toNumber(): number } | null; dimParam?: string | null }): number | null {
  // A dimension is fixed only when dim_value is set and positive; dim_param or nothing means symbolic.
  const v = d.dimValue === null || d.dimValue === undefined ? 0 : int64ToNumber(d.dimValue);
  return v > 0 ? v : null;
}

const LABEL_ELEMENT_TYPES: ReadonlySet<string> = new Set(['int64', 'int32', 'string']);

/**
 * The output most likely holding predicted labels: an int64/int32/string tensor, preferring one
 * whose name contains "label" (skl2onnx `output_label`, onnxmltools `label`). Outputs named in
 * `exclude` are skipped. When no name says "label", a single candidate is taken only if
 * `allowUnnamed` (the caller already knows the model is a classifier).
 */
export function guessLabelOutput(
  outputs: readonly ValueDescription[],
  exclude: ReadonlySet<string>,
  allowUnnamed: boolean,
): ValueDescription | undefined {
  const candidates = outputs.filter(
    (o) => o.kind === 'tensor' && o.elementType !== null && LABEL_ELEMENT_TYPES.has(o.elementType) && !exclude.has(o.name),
  );
  const named = candidates.find((o) => /label/i.test(o.name));
  if (named) return named;
  return allowUnnamed && candidates.length === 1 ? candidates[0] : undefined;
}

/**
 * The output most likely holding class probabilities: a float/double tensor whose name contains
 * "prob" (skl2onnx `output_probability` with zipmap=False, onnxmltools `probabilities`).
 */
export function guessProbabilityOutput(outputs: readonly ValueDescription[]): ValueDescription | undefined {
  return outputs.find(
    (o) => o.kind === 'tensor' && (o.elementType === 'float32' || o.elementType === 'double') && /prob/i.test(o.name),
  );
}
