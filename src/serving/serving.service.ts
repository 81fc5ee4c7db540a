/**
 * Serving's model side, composed of three parts: the router (which loaded model answers a query;
 * router.ts), the session cache (every model in memory, loaded once, released when unused;
 * sessions.ts) and single-file mode (`MODEL_PATH`; file-model.ts). This class starts and stops
 * their timers and answers what the routes and `/info` ask about the models.
 */
import type { Logger } from 'pino';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { Config } from '../config.ts';
import type { OnnxRuntime } from '../onnx/runtime.ts';
import { AppError, unavailable } from '../platform/errors.ts';
import type { RegistryReader } from '../registry/registry.types.ts';
import { FileModel } from './file-model.ts';
import type { LoadedModel, ModelIdentity } from './loaded-model.ts';
import type { ServingMetrics } from './metrics.ts';
import type { ModelFileSource } from './model-source.ts';
import { ModelRouter, type ModelQuery } from './router.ts';
import { SessionCache, type BatchingSettings } from './sessions.ts';

export type { ModelQuery } from './router.ts';
export type { BatchingSettings } from './sessions.ts';

/**
 * Tunables of serving; every field has a default. A registered model's tags
 * (`modelplane.max_queue_delay_us`, `modelplane.max_batch_size`, see `model-tunables.ts`) override
 * `maxQueueDelayUs` and `maxBatchRows` for that model's versions.
 */
export interface ServingOptions {
  /** Most rows per onnxruntime run when packing requests. Default `MAX_BATCH_SIZE`. */
  readonly maxBatchRows?: number;
  /** Most rows waiting per model before requests get 503. Default 8 x the model's `maxBatchRows` (at least 4096). */
  readonly maxQueueRows?: number;
  /** Triton-style queue delay in microseconds for every model. Default 0 (no added delay). */
  readonly maxQueueDelayUs?: number;
  /** Registry generation polling period. Default 1000 ms. */
  readonly pollMs?: number;
  /** An unreferenced session is released after this long without use. Default 120 s. */
  readonly idleReleaseMs?: number;
  /** Period of the release sweep (and of the coarse clock). Default 5 s. */
  readonly sweepMs?: number;
  /** onnxruntime intra-op threads per session. Default 1. */
  readonly intraOpThreads?: number;
  /** Run sessions in the inference thread instead of on the event loop (`INFERENCE_THREAD`). Default false. */
  readonly inferenceThread?: boolean;
}

/** Dependencies of {@link ServingService}. */
export interface ServingDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly artifacts: ArtifactStore;
  readonly onnx: OnnxRuntime;
  readonly metrics: ServingMetrics;
  readonly registry: RegistryReader | undefined;
  /** `MODEL_PATH` source in single-file mode. */
  readonly file: ModelFileSource | undefined;
  /** Told whether the default model is loaded whenever routes change (drives `model_loaded`). */
  readonly onStatus?: (defaultLoaded: boolean) => void;
}

export class ServingService {
  /** Model reloads for `/info` (the prediction counters are the prediction service's). */
  readonly usage = { reloads: 0, reload_failures: 0 };
  private readonly sessions: SessionCache;
  private readonly router: ModelRouter;
  private readonly file: FileModel | undefined;
  private readonly idleTicks: number;
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly deps: ServingDeps,
    private readonly options: ServingOptions = {},
  ) {
    this.idleTicks = Math.max(1, Math.ceil((options.idleReleaseMs ?? 120_000) / (options.sweepMs ?? 5000)));
    this.sessions = new SessionCache(deps, {
      maxBatchRows: options.maxBatchRows ?? deps.config.maxBatchSize,
      ...(options.maxQueueRows === undefined ? {} : { maxQueueRows: options.maxQueueRows }),
      maxQueueDelayUs: options.maxQueueDelayUs ?? 0,
      idleTicks: this.idleTicks,
      intraOpThreads: options.intraOpThreads ?? 1,
      inferenceThread: options.inferenceThread ?? false,
    });
    this.router = new ModelRouter({
      config: deps.config,
      log: deps.log,
      registry: deps.registry,
      sessions: this.sessions,
      file: deps.file?.location,
      onRoutesChanged: () => this.updateStatusGauges(),
    });
    this.file = deps.file === undefined ? undefined : new FileModel(deps.file, deps.config.model.name, this.sessions, this.router);
  }

  /** Whether a default model is configured (`MODEL_PATH` or `MODEL_NAME`). */
  get hasDefault(): boolean {
    return this.file !== undefined || this.deps.config.model.name !== undefined;
  }

  /** The default model now, if loaded. */
  get defaultModel(): LoadedModel | undefined {
    return this.router.defaultModel;
  }

  /**
   * The model for a request: synchronous for any selector seen before, a promise the first time.
   * @throws AppError 404 for an unknown model/version/stage/alias, 503 when no default is servable
   */
  pick(query: ModelQuery): LoadedModel | Promise<LoadedModel> {
    return this.router.pick(query);
  }

  /** Shadow versions of the route a query addresses (traffic split shadows). */
  shadowsOf(query: ModelQuery): readonly LoadedModel[] {
    return this.router.shadowsOf(query);
  }

  /** The registered model `/predict/staging` addresses when no `?model=` is given. */
  stagingModelName(): string {
    const name = this.deps.config.model.name;
    if (name === undefined) {
      throw new AppError(400, 'validation_error', '/predict/staging needs ?model=<name> when MODEL_NAME is not set', [
        { path: '/querystring/model', message: 'is required when MODEL_NAME is not set' },
      ]);
    }
    return name;
  }

  /** The micro-batching settings `model` was loaded with (server-wide options and its model's tags). */
  batchingOf(model: LoadedModel): BatchingSettings {
    return model.batcher.settings();
  }

  /**
   * The training reference (`reference.json`) of a loaded registry version, for explanations;
   * `undefined` for `MODEL_PATH` files, versions without one, and registries that keep none.
   */
  async trainingReference(identity: ModelIdentity): Promise<unknown> {
    const registry = this.deps.registry;
    const version = Number(identity.version);
    if (registry?.getReference === undefined || !Number.isInteger(version)) return undefined;
    return registry.getReference(identity.name, version);
  }

  /** Every loaded model (for `/health/model`). */
  loadedModels(): LoadedModel[] {
    return this.sessions.all();
  }

  /**
   * Loads the default model and starts the refresh timers. In single-file mode a file that cannot
   * be read or served throws (the process must not start); in registry mode a default model that
   * is not registered yet only leaves `/ready` at 503 until it appears.
   */
  async start(): Promise<void> {
    const { registry, config, log } = this.deps;
    const file = this.file;
    if (file !== undefined) {
      await file.load(true);
      const ttl = config.model.cacheTtlSeconds;
      if (ttl > 0) {
        this.every(ttl * 1000, async () => {
          if (await file.load(false)) this.usage.reloads++;
        });
      }
    }
    if (registry !== undefined) {
      this.unsubscribe = await this.router.start();
      if (file === undefined && config.model.name !== undefined) {
        try {
          await this.router.materializeDefault();
        } catch (err) {
          log.warn({ model: config.model.name, reason: (err as Error).message }, 'default model not loaded yet; /ready answers 503 until it is servable');
        }
      }
      this.every(this.options.pollMs ?? 1000, () => this.router.poll());
    }
    this.every(this.options.sweepMs ?? 5000, () => Promise.resolve(this.sweep()));
  }

  /** Stops timers and releases every session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.unsubscribe?.();
    await this.router.close();
    await this.sessions.close();
    await this.file?.close();
  }

  /**
   * Reloads the default model (POST /model/reload): re-reads `MODEL_PATH`, or re-resolves the
   * default route and builds fresh sessions for it. Traffic switches only when the new session is
   * warm; in-flight requests finish on the old one.
   */
  async reloadDefault(): Promise<LoadedModel> {
    try {
      if (this.file !== undefined) await this.file.load(false, true);
      else await this.router.reloadDefault();
      this.usage.reloads++;
    } catch (err) {
      this.usage.reload_failures++;
      throw err;
    }
    const m = this.defaultModel;
    if (m === undefined) throw unavailable('the default model is not loaded');
    return m;
  }

  /** Waits for any refresh in progress (tests, reload). */
  settled(): Promise<void> {
    return this.router.settled();
  }

  /** Advances the coarse clock; forgets idle routes and releases retired and long-unused sessions. */
  sweep(): void {
    this.router.dropIdle(this.idleTicks);
    this.sessions.sweep(this.router.referenced());
    this.updateStatusGauges();
  }

  private every(ms: number, fn: () => Promise<void>): void {
    let running = false;
    const t = setInterval(() => {
      if (running || this.closed) return;
      running = true;
      fn()
        .catch((err: unknown) => this.deps.log.warn({ err }, 'serving background task failed'))
        .finally(() => {
          running = false;
        });
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  private updateStatusGauges(): void {
    const active = this.router.active();
    const gauge = this.deps.metrics.modelStatus;
    // Rebuilt from scratch: a released version disappears, a reloaded one (same labels, two
    // instances until the old one drains) shows 1 while either takes traffic.
    gauge.reset();
    const values = new Map<string, [string, string, number]>();
    for (const m of this.sessions.live()) {
      const key = `${m.identity.name}\u0000${m.identity.version}`;
      const v = active.has(m) ? 1 : 0;
      if ((values.get(key)?.[2] ?? -1) < v) values.set(key, [m.identity.name, m.identity.version, v]);
    }
    for (const [name, version, v] of values.values()) gauge.labels(name, version).set(v);
    this.deps.onStatus?.(this.defaultModel !== undefined);
  }
}
