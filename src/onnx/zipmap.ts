/**
 * Rewriting converter-made classifiers so onnxruntime-node can serve them.
 *
 * Why: skl2onnx and onnxmltools end classifiers in an ai.onnx.ml `ZipMap`, whose output is a
 * sequence of maps (one `{label: probability}` map per row). onnxruntime-node can only return
 * tensors, and a single non-tensor output makes the whole `session.run` fail ("Non tensor type is
 * temporarily not supported"). The ZipMap only re-packages the probability tensor it receives, so
 * replacing it by an `Identity` of its input, and re-typing the output as a float tensor `[N, C]`,
 * returns the same numbers; the class order is the ZipMap's `classlabels_*` attribute, which we
 * keep in the signature.
 */
import { classLabelsOf, describeValue, guessLabelOutput, zipMapOutputNodes } from './inspect.ts';
import {
  DataType,
  feedInputs,
  int64ToNumber,
  isDefaultDomain,
  type ModelProto,
  type NodeProto,
  type OperatorSetIdProto,
  type TensorShapeDimension,
  type ValueInfoProto,
} from './proto.ts';

/** One ZipMap that {@link removeZipMap} replaced. */
export interface ZipMapRewrite {
  /** The graph output, same name as before, now a float tensor `[N, C]`. */
  readonly output: string;
  /** The tensor the ZipMap read (the classifier's probability tensor). */
  readonly source: string;
  readonly classLabels: (number | string)[];
}

/** Result of {@link removeZipMap}. */
export interface ZipMapRemoval {
  /** The rewritten model; the very same object when there was no ZipMap output. */
  readonly model: ModelProto;
  readonly changed: boolean;
  /** Name of the (first) probability output, if a ZipMap was replaced. */
  readonly probabilityOutput: string | null;
  /** Name of the label output of the same classifier (int64/string tensor), when one is found. */
  readonly labelOutput: string | null;
  /** Class labels of the first replaced ZipMap, in probability-column order. */
  readonly classLabels: (number | string)[] | null;
  readonly rewrites: ZipMapRewrite[];
}

/**
 * Default-domain opset added when a model imports none (old onnxmltools files import only
 * ai.onnx.ml) but now needs `Identity`: the newest opset its IR version allows, so onnxruntime
 * accepts the pairing.
 */
function defaultOpsetForIr(irVersion: number): number {
  if (irVersion <= 3) return 8;
  if (irVersion === 4) return 9;
  if (irVersion === 5) return 10;
  if (irVersion === 6) return 11;
  if (irVersion === 7) return 13;
  return 15;
}

/**
 * Replaces every graph output produced by a ZipMap with an `Identity` of the ZipMap's input,
 * typed as a float tensor `[N, C]` (N copied from the first input's batch dimension, symbolic `N`
 * when it has none; C = number of class labels). The input model is not modified. Models without
 * a ZipMap output come back unchanged (`changed: false`, same object).
 */
export function removeZipMap(model: ModelProto): ZipMapRemoval {
  const graph = model.graph;
  const zipMaps = zipMapOutputNodes(model);
  if (!graph || zipMaps.length === 0) {
    return { model, changed: false, probabilityOutput: null, labelOutput: null, classLabels: null, rewrites: [] };
  }

  const firstInput = feedInputs(graph)[0];
  const inputDims = firstInput?.type?.tensorType?.shape?.dim ?? [];
  const batchDim: TensorShapeDimension =
    inputDims.length >= 2 && inputDims[0] ? copyDim(inputDims[0]) : { dimParam: 'N' };

  const replaced = new Map<NodeProto, NodeProto>();
  const rewrites: ZipMapRewrite[] = [];
  for (const { output, node } of zipMaps) {
    const source = node.input?.[0] ?? '';
    const labels = classLabelsOf(node, ['classlabels_int64s', 'classlabels_strings']) ?? [];
    replaced.set(node, {
      name: `${node.name || 'ZipMap'}_as_identity`,
      opType: 'Identity',
      domain: '',
      input: [source],
      output: [output],
    });
    rewrites.push({ output, source, classLabels: labels });
  }

  const retyped = new Map(rewrites.map((r) => [r.output, r]));
  const outputs: ValueInfoProto[] = (graph.output ?? []).map((o) => {
    const r = retyped.get(o.name ?? '');
    if (!r) return o;
    const classDim: TensorShapeDimension = r.classLabels.length > 0 ? { dimValue: r.classLabels.length } : { dimParam: 'C' };
    return {
      name: o.name ?? '',
      docString: o.docString ?? '',
      type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [batchDim, classDim] } } },
    };
  });

  const opsets: OperatorSetIdProto[] = [...(model.opsetImport ?? [])];
  if (!opsets.some((o) => isDefaultDomain(o.domain))) {
    opsets.push({ domain: '', version: defaultOpsetForIr(int64ToNumber(model.irVersion)) });
  }

  const rewritten: ModelProto = {
    ...copyModelFields(model),
    opsetImport: opsets,
    graph: {
      ...copyGraphFields(graph),
      node: (graph.node ?? []).map((n) => replaced.get(n) ?? n),
      output: outputs,
      // A stale value_info entry would still describe the old sequence type.
      valueInfo: (graph.valueInfo ?? []).filter((v) => !retyped.has(v.name ?? '')),
    },
  };

  const first = rewrites[0]!;
  const label = guessLabelOutput(outputs.map(describeValue), new Set(retyped.keys()), true);
  return {
    model: rewritten,
    changed: true,
    probabilityOutput: first.output,
    labelOutput: label?.name ?? null,
    classLabels: first.classLabels.length > 0 ? first.classLabels : null,
    rewrites,
  };
}

function copyDim(d: TensorShapeDimension): TensorShapeDimension {
  if (d.dimValue !== null && d.dimValue !== undefined && int64ToNumber(d.dimValue) > 0) {
    return { dimValue: int64ToNumber(d.dimValue) };
  }
  return d.dimParam ? { dimParam: d.dimParam } : { dimParam: 'N' };
}

/**
 * Copies a decoded message into a plain object. protobufjs keeps unset fields as defaults on the
 * message prototype, which object spread does not see; naming every field makes the copy complete
 * whatever the source (decoded message or plain object).
 */
function copyModelFields(m: ModelProto): ModelProto {
  return {
    irVersion: m.irVersion ?? 0,
    opsetImport: m.opsetImport ?? [],
    producerName: m.producerName ?? '',
    producerVersion: m.producerVersion ?? '',
    domain: m.domain ?? '',
    modelVersion: m.modelVersion ?? 0,
    docString: m.docString ?? '',
    graph: m.graph ?? null,
    metadataProps: m.metadataProps ?? [],
    trainingInfo: m.trainingInfo ?? [],
    functions: m.functions ?? [],
  };
}

function copyGraphFields(g: NonNullable<ModelProto['graph']>): NonNullable<ModelProto['graph']> {
  return {
    node: g.node ?? [],
    name: g.name ?? '',
    initializer: g.initializer ?? [],
    sparseInitializer: g.sparseInitializer ?? [],
    docString: g.docString ?? '',
    input: g.input ?? [],
    output: g.output ?? [],
    valueInfo: g.valueInfo ?? [],
    quantizationAnnotation: g.quantizationAnnotation ?? [],
  };
}
