/**
 * The loaded sessions of one process: every model version in memory, keyed by name and version,
 * loaded and warmed once however many routes and requests ask for it, retired when something newer
 * replaces it, and released once nothing is in flight on it and no route refers to it (at once
 * when retired, after an idle period otherwise). A coarse clock, advanced by the sweep, dates each
 * use without a syscall per request.
 */
import type { Logger } from 'pino';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { Config } from '../config.ts';
import type { OnnxRuntime } from '../onnx/runtime.ts';
import type { ModelSignature } from '../onnx/signature.ts';
import { unavailable } from '../platform/errors.ts';
import type { ServableVersion } from '../registry/registry.types.ts';
import { LoadedModel, type ModelIdentity } from './loaded-model.ts';
import type { ServingMetrics } from './metrics.ts';
import { tunablesFromTags, type ModelTunables } from './model-tunables.ts';
import { createRuntime, type Device } from './runtime.ts';

/** The micro-batching settings a loaded model runs with. */
export interface BatchingSettings {
  readonly maxBatchRows: number;
  readonly maxQueueRows: number;
  readonly maxQueueDelayUs: number;
}

export interface SessionDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly artifacts: ArtifactStore;
  readonly onnx: OnnxRuntime;
  readonly metrics: ServingMetrics;
}

export interface SessionOptions {
  /** Most rows per onnxruntime run when packing requests. */
  readonly maxBatchRows: number;
  /** Most rows waiting per model before requests get 503; absent = 8 x the model's batch rows (at least 4096). */
  readonly maxQueueRows?: number;
  /** Triton-style queue delay in microseconds for every model. */
  readonly maxQueueDelayUs: number;
  /** Sweeps a session may go unused before it is released. */
  readonly idleTicks: number;
  /** onnxruntime intra-op threads per session. */
  readonly intraOpThreads: number;
  /** Run sessions in the inference thread. */
  readonly inferenceThread: boolean;
}

export class SessionCache {
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private readonly retired = new Set<LoadedModel>();
  /** The coarse clock: sweeps since start. */
  tick = 0;
  private readonly device: Device;

  constructor(
    private readonly deps: SessionDeps,
    private readonly options: SessionOptions,
  ) {
    this.device = deps.config.model.device;
  }

  /** Every loaded model (for `/health/model`). */
  all(): LoadedModel[] {
    return [...this.loaded.values()];
  }

  /** Every model not yet released, in service or retired (for the status gauges). */
  live(): LoadedModel[] {
    return [...new Set([...this.loaded.values(), ...this.retired])].filter((m) => !m.released);
  }

  /**
   * The session of a registry version: the loaded one (its stage and aliases refreshed), or a new
   * one loaded and warmed; concurrent callers share the load. `fresh` loads a new session even
   * when one is loaded (reload); the old one is retired.
   */
  version(v: ServableVersion, fresh = false): Promise<LoadedModel> {
    const key = `${v.name}@${v.version}`;
    const existing = this.loaded.get(key);
    if (existing !== undefined && !fresh) {
      existing.describe(v.stage, v.aliases);
      return Promise.resolve(existing);
    }
    let p = this.loading.get(key);
    if (p === undefined || fresh) {
      p = (async () => {
        const bytes = await this.deps.artifacts.getBuffer(v.artifactKey);
        const identity: ModelIdentity = {
          name: v.name,
          version: String(v.version),
          stage: v.stage,
          aliases: v.aliases,
          metrics: v.metrics,
          runId: v.runId,
          createdAt: v.createdAt,
          source: v.artifactKey,
          // The content hash too: a model deleted and registered again restarts at version 1, and
          // a shared Redis cache must not answer the new bytes with the old ones' predictions.
          cacheTag: `${v.name}\u0000${v.version}\u0000${v.sha256?.slice(0, 16) ?? ''}\u0000`,
        };
        const model = await this.create(identity, bytes, v.signature, this.tunablesOf(v));
        this.adopt(key, model);
        return model;
      })().finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  /** Keeps `model` under `key`; the model it replaces is retired (released once idle). */
  adopt(key: string, model: LoadedModel): void {
    const previous = this.loaded.get(key);
    this.loaded.set(key, model);
    if (previous !== undefined && previous !== model) this.retired.add(previous);
  }

  /** Retires a model no route should hand out any more. */
  retire(model: LoadedModel): void {
    this.retired.add(model);
  }

  /** Loads bytes into a warmed model with the batching settings of the server and `tunables`. */
  async create(identity: ModelIdentity, bytes: Uint8Array, signature: ModelSignature, tunables: ModelTunables = {}): Promise<LoadedModel> {
    const { log, metrics } = this.deps;
    const runtime = await createRuntime(this.deps.onnx, bytes, signature, {
      device: this.device,
      intraOpThreads: this.options.intraOpThreads,
      thread: this.options.inferenceThread,
      onFallback: (reason) =>
        log.warn({ model: identity.name, version: identity.version, reason }, 'MODEL_DEVICE=cuda but the CUDA execution provider is not available; serving on CPU'),
    });
    const duration = metrics.duration.labels(identity.name);
    const batchRows = metrics.batchRows.labels(identity.name);
    const maxBatchRows = tunables.maxBatchRows ?? this.options.maxBatchRows;
    const batching: BatchingSettings = {
      maxBatchRows,
      maxQueueRows: this.options.maxQueueRows ?? Math.max(4096, 8 * maxBatchRows),
      maxQueueDelayUs: tunables.maxQueueDelayUs ?? this.options.maxQueueDelayUs,
    };
    const model = new LoadedModel(identity, signature, runtime, {
      ...batching,
      onRun: (seconds, rows) => {
        duration.observe(seconds);
        batchRows.observe(rows);
      },
    });
    try {
      await model.warmUp();
    } catch (err) {
      await runtime.release().catch(() => undefined);
      throw err;
    }
    log.info({ model: identity.name, version: identity.version, device: runtime.device, ...batching }, 'model loaded and warmed');
    return model;
  }

  /** Tunables the registered model's tags set; an invalid tag is logged and ignored. */
  private tunablesOf(v: ServableVersion): ModelTunables {
    return tunablesFromTags(v.modelTags, ({ tag, value, expected }) =>
      this.deps.log.warn({ model: v.name, version: v.version, tag, value, expected }, `ignoring registered-model tag ${tag}: expected ${expected}`),
    );
  }

  /**
   * Advances the coarse clock and releases what nothing needs: retired models at once, others
   * after the idle period, in both cases only with nothing in flight or waiting and no route
   * referring to them.
   */
  sweep(referenced: ReadonlySet<LoadedModel>): void {
    this.tick++;
    for (const m of this.retired) {
      if (referenced.has(m) || m.inFlight > 0 || m.batcher.waitingRows > 0) continue;
      this.retired.delete(m);
      void this.release(m);
    }
    for (const [key, m] of this.loaded) {
      if (referenced.has(m) || m.inFlight > 0 || m.batcher.waitingRows > 0) continue;
      if (this.tick - m.lastUsedTick <= this.options.idleTicks) continue;
      this.loaded.delete(key);
      void this.release(m);
    }
  }

  /** Releases every session (shutdown). */
  async close(): Promise<void> {
    const all = new Set<LoadedModel>([...this.loaded.values(), ...this.retired]);
    this.loaded.clear();
    this.retired.clear();
    for (const m of all) await this.release(m);
  }

  private async release(m: LoadedModel): Promise<void> {
    if (m.released) return;
    m.released = true;
    m.batcher.drain(unavailable('the model was unloaded; retry', 1));
    try {
      await m.runtime.release();
      this.deps.log.info({ model: m.identity.name, version: m.identity.version }, 'model session released');
    } catch (err) {
      this.deps.log.warn({ err, model: m.identity.name }, 'releasing a model session failed');
    }
  }
}
