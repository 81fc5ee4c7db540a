/**
 * The one adapter over onnxruntime-node: sessions behind a few methods, so that serving, the
 * upload check (registry) and the export check (training) deal in typed arrays and never in
 * onnxruntime's own types. The native module (about 30 MB resident) is loaded on first use, so a
 * process that never opens a model never pays for it. Serving's inference thread uses the same
 * adapter inside its thread.
 */
import type * as ort from 'onnxruntime-node';

/** Element types of the inputs modelplane feeds. */
export type InputType = 'float32' | 'float64';

/** Rows fed to a session, row-major. */
export type InputData = Float32Array | Float64Array;

/** What an output tensor holds: numbers, int64 as bigint, or strings. */
export type OutputData = Float32Array | Float64Array | BigInt64Array | Int32Array | string[];

/** One output of a run. */
export interface Output {
  readonly data: OutputData;
  readonly dims: readonly number[];
}

export type Device = 'cpu' | 'cuda';

export interface SessionOptions {
  /** `cuda` tries the CUDA execution provider first and falls back to CPU (see {@link LoadedSession.fallback}). Default `cpu`. */
  readonly device?: Device;
  /** Intra-op threads; 0 = onnxruntime's default (one per core). Default 1. */
  readonly intraOpThreads?: number;
}

/** A loaded model. */
export interface Session {
  /** The execution provider in use. */
  readonly device: Device;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model on one input and fetches `outputs`. */
  run(input: string, data: InputData, dims: readonly number[], outputs: readonly string[]): Promise<Record<string, Output>>;
  /**
   * A runner for the hot path: one input, one fetched output, bound once, so each call builds one
   * tensor and nothing else.
   */
  runner(input: string, type: InputType, output: string): (data: InputData, dims: readonly number[]) => Promise<Output>;
  release(): Promise<void>;
}

/** A session, and why CUDA was not used when it was asked for. */
export interface LoadedSession {
  readonly session: Session;
  readonly fallback?: string;
}

/** Loads models into sessions. */
export interface OnnxRuntime {
  /** @throws whatever onnxruntime throws for a model it cannot load */
  load(bytes: Uint8Array, options?: SessionOptions): Promise<LoadedSession>;
}

let native: Promise<typeof ort> | undefined;
function ortModule(): Promise<typeof ort> {
  native ??= import('onnxruntime-node');
  return native;
}

/** The process's onnxruntime, loaded on first use. */
export const onnxRuntime: OnnxRuntime = {
  async load(bytes, options = {}) {
    const lib = await ortModule();
    const threads = options.intraOpThreads ?? 1;
    const base: ort.InferenceSession.SessionOptions = {
      ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // Errors only: the warnings onnxruntime prints are about graph optimisations, once per load.
      logSeverityLevel: 3,
    };
    let fallback: string | undefined;
    if (options.device === 'cuda') {
      try {
        return { session: new OrtSession(lib, await lib.InferenceSession.create(bytes, { ...base, executionProviders: ['cuda'] }), 'cuda') };
      } catch (err) {
        // The npm package ships CPU binaries only unless installed with the CUDA flag (see
        // src/serving/README.md); serving on CPU beats not serving.
        fallback = err instanceof Error ? err.message : String(err);
      }
    }
    const session = new OrtSession(lib, await lib.InferenceSession.create(bytes, { ...base, executionProviders: ['cpu'] }), 'cpu');
    return fallback === undefined ? { session } : { session, fallback };
  },
};

class OrtSession implements Session {
  constructor(
    private readonly lib: typeof ort,
    private readonly session: ort.InferenceSession,
    readonly device: Device,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(input: string, data: InputData, dims: readonly number[], outputs: readonly string[]): Promise<Record<string, Output>> {
    const tensor = new this.lib.Tensor(data instanceof Float64Array ? 'float64' : 'float32', data, dims);
    const result = await this.session.run({ [input]: tensor }, outputs);
    const out: Record<string, Output> = {};
    for (const name of outputs) {
      const t = result[name];
      if (t !== undefined) out[name] = { data: t.data as OutputData, dims: t.dims };
    }
    return out;
  }

  runner(input: string, type: InputType, output: string): (data: InputData, dims: readonly number[]) => Promise<Output> {
    const { Tensor } = this.lib;
    const session = this.session;
    const fetch = [output];
    return async (data, dims) => {
      const result = await session.run({ [input]: new Tensor(type, data, dims) }, fetch);
      const t = result[output];
      if (t === undefined) throw new Error(`the model returned no output '${output}'`);
      return { data: t.data as OutputData, dims: t.dims };
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
