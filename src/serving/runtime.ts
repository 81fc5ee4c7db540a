/**
 * The onnxruntime adapter: one loaded session behind a few methods, so the rest of serving deals in
 * typed arrays and never in tensors, execution providers or fixed batch shapes.
 */
import * as ort from 'onnxruntime-node';
import type { ModelSignature } from '../onnx/signature.ts';

/** Input rows `[N, F]` row-major, in the element type the model declares. */
export type FloatRows = Float32Array | Float64Array;

/**
 * What one run produced, row-major. Only the outputs serving needs are fetched: the probability
 * tensor when the model has one (labels are then derived from it), else the label tensor, else
 * the regression value.
 */
export interface RawOutputs {
  readonly rows: number;
  /** `[rows, classes]` when the model exposes probabilities. */
  readonly probabilities: ArrayLike<number> | null;
  /** `[rows]` labels when there are no probabilities (int64 as bigint, strings as strings). */
  readonly labels: ArrayLike<number | bigint | string> | null;
  /** `[rows, width]` regression values. */
  readonly values: ArrayLike<number> | null;
  /** Columns per row of `probabilities` or `values`. */
  readonly width: number;
}

export type Device = 'cpu' | 'cuda';

export interface RuntimeOptions {
  /** `cuda` asks for the CUDA execution provider and falls back to CPU (with `onFallback`) when it is missing. */
  readonly device?: Device;
  /**
   * onnxruntime intra-op threads; default 1 (micro-batching, not intra-op parallelism, is what pays
   * off for small tabular models under concurrent load); 0 = onnxruntime's default (one per core).
   * Tree ensembles sum trees in a thread-dependent order, so results can differ in the last float32 bit.
   */
  readonly intraOpThreads?: number;
  /** Told why CUDA was not used. */
  readonly onFallback?: (reason: string) => void;
}

/** A loaded model that runs rows. */
export interface ModelRuntime {
  /** The execution provider actually in use. */
  readonly device: Device;
  /** Runs `rows` rows; splits (and pads) them to fit a fixed batch dimension. */
  run(input: FloatRows, rows: number): Promise<RawOutputs>;
  /** Frees the native session. */
  release(): Promise<void>;
}

/**
 * Creates an onnxruntime session for servable bytes (ZipMap-free; see `prepareForServing`).
 * @throws whatever onnxruntime throws for a model it cannot load
 */
export async function createRuntime(bytes: Uint8Array, signature: ModelSignature, options: RuntimeOptions = {}): Promise<ModelRuntime> {
  const threads = options.intraOpThreads ?? 1;
  const base: ort.InferenceSession.SessionOptions = {
    ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  let device: Device = 'cpu';
  let session: ort.InferenceSession | undefined;
  if (options.device === 'cuda') {
    try {
      session = await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cuda'] });
      device = 'cuda';
    } catch (err) {
      // The npm package ships CPU binaries only unless installed with the CUDA flag (see
      // src/serving/README.md); serving on CPU beats not serving.
      options.onFallback?.(err instanceof Error ? err.message : String(err));
    }
  }
  session ??= await ort.InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] });
  return new OrtRuntime(session, signature, device);
}

class OrtRuntime implements ModelRuntime {
  private readonly fetch: string;
  private readonly kind: 'probabilities' | 'labels' | 'values';
  private readonly nFeatures: number;
  private readonly fixedBatch: number | null;
  private readonly rank: 1 | 2;
  private readonly inputName: string;
  private readonly double: boolean;

  constructor(
    private readonly session: ort.InferenceSession,
    signature: ModelSignature,
    readonly device: Device,
  ) {
    const out = signature.outputs;
    if (out.probabilities !== undefined) {
      this.fetch = out.probabilities;
      this.kind = 'probabilities';
    } else if (out.label !== undefined) {
      this.fetch = out.label;
      this.kind = 'labels';
    } else if (out.value !== undefined) {
      this.fetch = out.value;
      this.kind = 'values';
    } else {
      throw new Error('the signature names no output to read');
    }
    this.nFeatures = signature.input.nFeatures;
    this.fixedBatch = signature.input.fixedBatch;
    this.rank = signature.input.rank;
    this.inputName = signature.input.name;
    this.double = signature.input.elementType === 'double';
  }

  async run(input: FloatRows, rows: number): Promise<RawOutputs> {
    const fixed = this.fixedBatch;
    if (fixed === null || fixed === rows) return this.decode(await this.runChunk(input, rows), rows);
    // Fixed batch dimension: run chunks of exactly `fixed` rows, the last one padded with zeros,
    // and stitch the outputs back together.
    const f = this.nFeatures;
    const chunks: RawOutputs[] = [];
    for (let start = 0; start < rows; start += fixed) {
      const n = Math.min(fixed, rows - start);
      let chunk = input.subarray(start * f, (start + n) * f);
      if (n < fixed) {
        const padded = this.double ? new Float64Array(fixed * f) : new Float32Array(fixed * f);
        padded.set(chunk);
        chunk = padded;
      }
      chunks.push(this.decode(await this.runChunk(chunk, fixed), n));
    }
    return concatOutputs(chunks, rows);
  }

  private runChunk(input: FloatRows, rows: number): Promise<ort.InferenceSession.ReturnType> {
    const dims = this.rank === 1 ? [this.nFeatures] : [rows, this.nFeatures];
    const tensor = new ort.Tensor(this.double ? 'float64' : 'float32', input, dims);
    return this.session.run({ [this.inputName]: tensor }, [this.fetch]);
  }

  /** Keeps the first `rows` rows of the fetched output (padding rows are dropped). */
  private decode(result: ort.InferenceSession.ReturnType, rows: number): RawOutputs {
    const t = result[this.fetch];
    if (t === undefined) throw new Error(`the model returned no output '${this.fetch}'`);
    const data = t.data as ArrayLike<number | bigint | string> & { subarray?: unknown; slice(a: number, b: number): unknown };
    // Declared shapes can be wrong ([1] for [N]); the element count is the truth.
    const width = Math.max(1, Math.round(data.length / Math.max(1, t.dims[0] ?? rows)));
    const used = rows * width;
    const kept = data.length === used ? data : (data.slice(0, used) as typeof data);
    if (this.kind === 'labels') return { rows, probabilities: null, labels: kept, values: null, width: 1 };
    const numeric = toNumbers(kept);
    return this.kind === 'probabilities'
      ? { rows, probabilities: numeric, labels: null, values: null, width }
      : { rows, probabilities: null, labels: null, values: numeric, width };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function toNumbers(data: ArrayLike<number | bigint | string>): ArrayLike<number> {
  if (data instanceof Float32Array || data instanceof Float64Array) return data;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

function concatOutputs(chunks: readonly RawOutputs[], rows: number): RawOutputs {
  const first = chunks[0]!;
  const width = first.width;
  if (first.labels !== null) {
    const labels: (number | bigint | string)[] = [];
    for (const c of chunks) for (let i = 0; i < c.rows; i++) labels.push(c.labels![i]!);
    return { rows, probabilities: null, labels, values: null, width: 1 };
  }
  const out = new Float64Array(rows * width);
  let at = 0;
  for (const c of chunks) {
    const src = (c.probabilities ?? c.values)!;
    for (let i = 0; i < c.rows * width; i++) out[at++] = src[i]!;
  }
  return first.probabilities !== null
    ? { rows, probabilities: out, labels: null, values: null, width }
    : { rows, probabilities: null, labels: null, values: out, width };
}
