/**
 * The onnxruntime adapter: one loaded session behind a few methods, so the rest of serving deals in
 * typed arrays and never in tensors, execution providers or fixed batch shapes.
 */
import type { Device, OnnxRuntime, Output, OutputData, Session, SessionOptions } from '../onnx/runtime.ts';
import type { ModelSignature } from '../onnx/signature.ts';
import { sharedInferenceThread, type InferenceThread } from './inference-thread.ts';

export type { Device } from '../onnx/runtime.ts';

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
  /**
   * Run the session in the process's inference thread (`inference-thread.ts`) rather than on the
   * calling thread, where onnxruntime-node computes synchronously and blocks the event loop. Costs a
   * message each way per run; pays off for heavy models and large batches. Default false.
   */
  readonly thread?: boolean;
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

/** Where a session runs: on the calling thread (default) or in the inference thread. */
interface SessionHandle {
  readonly device: Device;
  run(input: FloatRows, dims: readonly number[]): Promise<{ readonly data: OutputData; readonly dims: readonly number[] }>;
  release(): Promise<void>;
}

/**
 * Creates an onnxruntime session for servable bytes (ZipMap-free; see `prepareForServing`).
 * @param onnx the onnxruntime adapter (used on the calling thread; the inference thread has its own)
 * @throws whatever onnxruntime throws for a model it cannot load
 */
export async function createRuntime(onnx: OnnxRuntime, bytes: Uint8Array, signature: ModelSignature, options: RuntimeOptions = {}): Promise<ModelRuntime> {
  const session: SessionOptions = { device: options.device ?? 'cpu', intraOpThreads: options.intraOpThreads ?? 1 };
  const fetch = outputToFetch(signature);
  const handle =
    options.thread === true
      ? await ThreadSession.create(sharedInferenceThread(), bytes, session, options, signature, fetch.name)
      : await LocalSession.create(onnx, bytes, session, options, signature, fetch.name);
  return new OrtRuntime(handle, signature, fetch);
}

/** The output serving reads: probabilities when present (labels derive from them), else labels, else values. */
function outputToFetch(signature: ModelSignature): { name: string; kind: 'probabilities' | 'labels' | 'values' } {
  const out = signature.outputs;
  if (out.probabilities !== undefined) return { name: out.probabilities, kind: 'probabilities' };
  if (out.label !== undefined) return { name: out.label, kind: 'labels' };
  if (out.value !== undefined) return { name: out.value, kind: 'values' };
  throw new Error('the signature names no output to read');
}

/** A session on the calling thread (`thread: false`): each run blocks the event loop while it computes. */
class LocalSession implements SessionHandle {
  private constructor(
    private readonly session: Session,
    readonly run: (input: FloatRows, dims: readonly number[]) => Promise<Output>,
  ) {}

  get device(): Device {
    return this.session.device;
  }

  static async create(onnx: OnnxRuntime, bytes: Uint8Array, session: SessionOptions, options: RuntimeOptions, signature: ModelSignature, fetch: string): Promise<LocalSession> {
    const loaded = await onnx.load(bytes, session);
    if (loaded.fallback !== undefined) options.onFallback?.(loaded.fallback);
    return new LocalSession(loaded.session, loaded.session.runner(signature.input.name, signature.input.elementType === 'double' ? 'float64' : 'float32', fetch));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * A session in the process's inference thread. Keeps the model bytes so that it can load itself
 * again if the thread had to be restarted.
 */
class ThreadSession implements SessionHandle {
  private id = 0;
  private generation = -1;
  private reloading: Promise<void> | undefined;
  device: Device = 'cpu';

  private constructor(
    private readonly thread: InferenceThread,
    private readonly bytes: Uint8Array,
    private readonly session: SessionOptions,
    private readonly options: RuntimeOptions,
    private readonly inputName: string,
    private readonly fetch: string,
    private readonly double: boolean,
  ) {}

  static async create(
    thread: InferenceThread,
    bytes: Uint8Array,
    session: SessionOptions,
    options: RuntimeOptions,
    signature: ModelSignature,
    fetch: string,
  ): Promise<ThreadSession> {
    const s = new ThreadSession(thread, bytes, session, options, signature.input.name, fetch, signature.input.elementType === 'double');
    await s.load();
    return s;
  }

  private async load(): Promise<void> {
    const id = this.thread.sessionId();
    const reply = await this.thread.call({
      op: 'load',
      session: id,
      bytes: this.bytes,
      options: this.session,
      inputName: this.inputName,
      fetch: this.fetch,
      double: this.double,
    });
    this.id = id;
    this.generation = this.thread.generation;
    this.device = reply.device ?? 'cpu';
    if (reply.fallback !== undefined) this.options.onFallback?.(reply.fallback);
  }

  async run(input: FloatRows, dims: readonly number[]): Promise<{ data: OutputData; dims: readonly number[] }> {
    if (this.generation !== this.thread.generation) {
      this.reloading ??= this.load().finally(() => (this.reloading = undefined));
      await this.reloading;
    }
    // Posting a view copies its whole buffer, which can be far larger than the rows (a fixed-batch
    // chunk, the micro-batcher's buffer for packed runs): a view is sent as a copy of its rows only.
    const rows = input.byteLength === input.buffer.byteLength ? input : input.slice();
    const reply = await this.thread.call({ op: 'run', session: this.id, input: rows, dims });
    return { data: reply.data!, dims: reply.dims! };
  }

  async release(): Promise<void> {
    if (this.generation !== this.thread.generation) return;
    await this.thread.call({ op: 'release', session: this.id });
  }
}

class OrtRuntime implements ModelRuntime {
  private readonly kind: 'probabilities' | 'labels' | 'values';
  private readonly nFeatures: number;
  private readonly fixedBatch: number | null;
  private readonly rank: 1 | 2;
  private readonly double: boolean;

  constructor(
    private readonly session: SessionHandle,
    signature: ModelSignature,
    fetch: { name: string; kind: 'probabilities' | 'labels' | 'values' },
  ) {
    this.kind = fetch.kind;
    this.nFeatures = signature.input.nFeatures;
    this.fixedBatch = signature.input.fixedBatch;
    this.rank = signature.input.rank;
    this.double = signature.input.elementType === 'double';
  }

  get device(): Device {
    return this.session.device;
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

  private runChunk(input: FloatRows, rows: number): Promise<{ readonly data: OutputData; readonly dims: readonly number[] }> {
    return this.session.run(input, this.rank === 1 ? [this.nFeatures] : [rows, this.nFeatures]);
  }

  /** Keeps the first `rows` rows of the fetched output (padding rows are dropped). */
  private decode(t: { readonly data: OutputData; readonly dims: readonly number[] }, rows: number): RawOutputs {
    const data = t.data as ArrayLike<number | bigint | string> & { slice(a: number, b: number): unknown };
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
