/**
 * The last gate before a model version exists: the servable bytes must load in onnxruntime and
 * answer one dummy batch with the outputs its signature promises. Parsing and signature inference
 * (`prepareForServing`) cannot see everything onnxruntime checks (operator versions, type
 * inference, kernel availability), so a file is accepted only once the runtime itself ran it.
 */
import type { OnnxRuntime, Output, Session } from '../onnx/runtime.ts';
import type { ModelSignature } from '../onnx/signature.ts';

/** Loads and runs a model once; throws with a human reason when it cannot be served. */
export type ModelSmokeTest = (bytes: Uint8Array, signature: ModelSignature) => Promise<void>;

/** The model failed in onnxruntime; `reason` is a sentence fit for a 400 reply. */
export class ModelRuntimeError extends Error {
  readonly reason: string;

  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = 'ModelRuntimeError';
    this.reason = reason;
  }
}

/**
 * Creates an onnxruntime session from `bytes` and runs it on zero rows shaped as the signature
 * says: `[k, F]` with `k` the fixed batch (1 when the batch is free), or `[F]` for rank-1 inputs.
 * Checks that the signature's outputs exist and have the expected sizes (k labels, k x C
 * probabilities with C = number of class labels, k values). The session is released afterwards.
 * @throws ModelRuntimeError naming the step that failed and onnxruntime's message
 */
export const onnxSmokeTest = (onnx: OnnxRuntime): ModelSmokeTest => async (bytes, signature) => {
  let session: Session;
  try {
    // One thread: this session lives for one dummy run.
    session = (await onnx.load(bytes, { intraOpThreads: 1 })).session;
  } catch (err) {
    throw new ModelRuntimeError(`onnxruntime cannot load the model: ${runtimeMessage(err)}`, { cause: err });
  }
  try {
    const { input, outputs } = signature;
    if (!session.inputNames.includes(input.name)) {
      throw new ModelRuntimeError(`onnxruntime sees no input named '${input.name}' (inputs: ${session.inputNames.join(', ')})`);
    }
    const wanted = [outputs.label, outputs.probabilities, outputs.value].filter((o): o is string => o !== undefined);
    const missing = wanted.filter((o) => !session.outputNames.includes(o));
    if (missing.length > 0) {
      throw new ModelRuntimeError(`onnxruntime sees no output named ${missing.map((m) => `'${m}'`).join(', ')} (outputs: ${session.outputNames.join(', ')})`);
    }
    const rows = input.rank === 1 ? 1 : (input.fixedBatch ?? 1);
    const size = rows * input.nFeatures;
    const data = input.elementType === 'double' ? new Float64Array(size) : new Float32Array(size);
    const dims = input.rank === 1 ? [input.nFeatures] : [rows, input.nFeatures];
    let result: Record<string, Output>;
    try {
      result = await session.run(input.name, data, dims, wanted);
    } catch (err) {
      throw new ModelRuntimeError(`the model fails on a row of zeros (input '${input.name}' ${JSON.stringify(dims)}): ${runtimeMessage(err)}`, { cause: err });
    }
    checkOutputs(result, signature, rows);
  } finally {
    await session.release().catch(() => undefined);
  }
};

function checkOutputs(result: Record<string, Output>, signature: ModelSignature, rows: number): void {
  const { outputs } = signature;
  if (outputs.probabilities !== undefined) {
    const t = result[outputs.probabilities];
    const classes = signature.classLabels?.length;
    if (t === undefined) throw new ModelRuntimeError(`output '${outputs.probabilities}' was not returned`);
    if (!isFloat(t)) {
      throw new ModelRuntimeError(`probability output '${outputs.probabilities}' is ${elementType(t)}, not a float tensor`);
    }
    if (classes !== undefined && t.data.length !== rows * classes) {
      throw new ModelRuntimeError(
        `probability output '${outputs.probabilities}' has shape ${JSON.stringify(t.dims)} for ${rows} row(s) but the model has ${classes} classes`,
      );
    }
  }
  if (outputs.label !== undefined) {
    const t = result[outputs.label];
    if (t === undefined) throw new ModelRuntimeError(`output '${outputs.label}' was not returned`);
    if (t.data.length !== rows) {
      throw new ModelRuntimeError(`label output '${outputs.label}' has shape ${JSON.stringify(t.dims)} for ${rows} row(s)`);
    }
  }
  if (outputs.value !== undefined) {
    const t = result[outputs.value];
    if (t === undefined) throw new ModelRuntimeError(`output '${outputs.value}' was not returned`);
    if (!isFloat(t)) {
      throw new ModelRuntimeError(`value output '${outputs.value}' is ${elementType(t)}, not a float tensor`);
    }
    if (t.data.length === 0 || t.data.length % rows !== 0) {
      throw new ModelRuntimeError(`value output '${outputs.value}' has shape ${JSON.stringify(t.dims)} for ${rows} row(s)`);
    }
  }
}

function isFloat(t: Output): boolean {
  return t.data instanceof Float32Array || t.data instanceof Float64Array;
}

/** onnxruntime's name of an output's element type, for messages. */
function elementType(t: Output): string {
  if (t.data instanceof BigInt64Array) return 'int64';
  if (t.data instanceof Int32Array) return 'int32';
  if (Array.isArray(t.data)) return 'string';
  return t.data instanceof Float64Array ? 'float64' : 'float32';
}

/** onnxruntime's message without its multi-line native stack noise. */
function runtimeMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.trim().slice(0, 500);
}
