/**
 * Registration in one call: bytes in, servable bytes + signature out.
 */
import { inspectModel, type ModelInfo } from './inspect.ts';
import { parseModel, serializeModel } from './model-file.ts';
import { feedInputs, int64ToNumber, type ModelProto, type ValueInfoProto } from './proto.ts';
import { signatureFromInfo, type ModelSignature, type SignatureHints } from './signature.ts';
import { detachLargeAttributes, reattachAttributes } from './wire.ts';
import { removeZipMap } from './zipmap.ts';

/** {@link ModelInfo} of the servable model plus what registration changed. */
export interface PreparedModelInfo extends ModelInfo {
  /** Human descriptions of the rewrites applied (empty when the original bytes are kept). */
  readonly rewrites: string[];
  /** Things worth telling the user that did not stop registration. */
  readonly warnings: string[];
}

export interface PreparedModel {
  /** The bytes to store and serve: the original bytes when nothing needed rewriting. */
  readonly bytes: Uint8Array;
  readonly signature: ModelSignature;
  readonly info: PreparedModelInfo;
}

/** Newest IR version the bundled ONNX schema (onnx-proto, ONNX 1.10) knows every field of. */
const SCHEMA_IR_VERSION = 8;

/**
 * Parses, validates and rewrites a user's ONNX file for serving and infers its signature:
 * ZipMap outputs become probability tensors (see `removeZipMap`), and outputs that declare a fixed
 * batch of 1 while the input's batch is symbolic are relaxed (old skl2onnx declares labels `[1]`
 * yet returns `[N]`, which makes onnxruntime log a warning on every run). Does not load the model
 * in onnxruntime: the caller does that (and a dummy run) with the returned bytes.
 *
 * Large attributes (tree ensembles' node lists, big constant tensors) are never decoded: they are
 * cut out as byte ranges before decoding and put back unchanged if the model is rewritten (see
 * `wire.ts`), so the memory this takes is about the size of the file, not tens of times that.
 * @param bytes the uploaded `.onnx` file
 * @param hints feature names, class labels, task, ... (see {@link SignatureHints})
 * @param detachBytes attributes at least this large are set aside undecoded (default 256 KiB)
 * @throws InvalidModelError for files that cannot be served, with a human reason
 */
export function prepareForServing(bytes: Uint8Array, hints: SignatureHints = {}, detachBytes?: number): PreparedModel {
  const { skeleton, detached } = detachLargeAttributes(bytes, detachBytes);
  const original = parseModel(skeleton);
  const removal = removeZipMap(original);
  const rewrites: string[] = removal.rewrites.map(
    (r) => `output '${r.output}': ZipMap replaced by Identity of '${r.source}' (float tensor [N, ${r.classLabels.length}])`,
  );
  const relaxed = relaxOutputBatch(removal.model);
  rewrites.push(...relaxed.rewrites);
  const model = relaxed.model;

  const warnings: string[] = [];
  const irVersion = int64ToNumber(original.irVersion);
  if (rewrites.length > 0 && irVersion > SCHEMA_IR_VERSION) {
    warnings.push(
      `the model uses IR version ${irVersion}; fields newer than IR ${SCHEMA_IR_VERSION} were dropped while rewriting it`,
    );
  }

  const info = inspectModel(model);
  const signature = signatureFromInfo(info, hints, removal.changed ? removal : undefined);
  if (info.fixedBatch !== null) {
    warnings.push(`input '${signature.input.name}' has a fixed batch size of ${info.fixedBatch}; requests are split to fit`);
  }
  return {
    bytes: rewrites.length > 0 ? reattach(original, model, detached) : bytes,
    signature,
    info: { ...info, rewrites, warnings },
  };
}

/** The rewritten model's bytes with the detached attributes back in their nodes. */
function reattach(original: ModelProto, model: ModelProto, detached: ReturnType<typeof detachLargeAttributes>['detached']): Uint8Array {
  const before = original.graph?.node ?? [];
  const after = model.graph?.node ?? [];
  // The rewrites replace nodes in place, so a node keeps its index; check it before relying on it.
  for (const index of detached.keys()) {
    if (before.length !== after.length || before[index]?.opType !== after[index]?.opType) {
      throw new Error('rewriting the model moved a node whose attributes were set aside');
    }
  }
  return reattachAttributes(serializeModel(model), detached);
}

/**
 * When the first input's batch dimension is symbolic, gives outputs that declare a leading
 * dimension of exactly 1 that same symbolic dimension. Only declarations change, never values.
 */
function relaxOutputBatch(model: ModelProto): { model: ModelProto; rewrites: string[] } {
  const graph = model.graph;
  const input = graph ? feedInputs(graph)[0] : undefined;
  const inDims = input?.type?.tensorType?.shape?.dim ?? [];
  const batch = inDims[0];
  if (!graph || inDims.length < 2 || !batch || int64ToNumber(batch.dimValue) > 0) return { model, rewrites: [] };
  const rewrites: string[] = [];
  const outputs = (graph.output ?? []).map((o): ValueInfoProto => {
    const tt = o.type?.tensorType;
    const dims = tt?.shape?.dim;
    const first = dims?.[0];
    if (!tt || !dims || !first || int64ToNumber(first.dimValue) !== 1) return o;
    rewrites.push(`output '${o.name ?? ''}': declared batch dimension 1 made symbolic like input '${input?.name ?? ''}'`);
    return {
      name: o.name ?? '',
      docString: o.docString ?? '',
      type: {
        tensorType: {
          elemType: tt.elemType ?? 0,
          shape: { dim: [batch.dimParam ? { dimParam: batch.dimParam } : {}, ...dims.slice(1)] },
        },
      },
    };
  });
  if (rewrites.length === 0) return { model, rewrites };
  return { model: { ...model, graph: { ...graph, output: outputs } }, rewrites };
}
