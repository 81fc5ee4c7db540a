/**
 * Prediction serving: model resolution and session cache, input/output adapters, micro-batcher,
 * prediction cache and the prediction routes. See ARCHITECTURE.md "The prediction hot path".
 */
import type { App } from '../platform/app-type.ts';
import type { Config } from '../config.ts';
import type { AppContext } from '../platform/context.ts';
import type { RegistryReader } from '../registry/registry.types.ts';
import type { Store } from '../store/database.ts';
import { MemoryPredictionCache, RedisPredictionCache, type PredictionCache } from './cache.ts';
import { ServingMetrics } from './metrics.ts';
import { modelFileSource } from './model-source.ts';
import { servingRoutes } from './serving.routes.ts';
import { ServingService, type ServingOptions } from './serving.service.ts';

export { MicroBatcher, QueueFullError, type BatcherOptions, type BatchSlice } from './batcher.ts';
export { MemoryPredictionCache, RedisPredictionCache, cacheKey, type CachedFragments, type PredictionCache } from './cache.ts';
export { LoadedModel, type ModelIdentity } from './loaded-model.ts';
export { createRuntime, type ModelRuntime, type RawOutputs, type RuntimeOptions } from './runtime.ts';
export { MAX_BATCH_SIZE_TAG, MAX_QUEUE_DELAY_TAG, tunablesFromTags, type IgnoredTag, type ModelTunables } from './model-tunables.ts';
export { ServingService, type BatchingSettings, type ModelQuery, type ServingOptions } from './serving.service.ts';

/**
 * Options of {@link createServing}: serving tunables plus the prediction cache. Fields left out
 * come from the configuration (`PREDICTION_CACHE_SIZE`, `PREDICTION_CACHE_TTL`,
 * `BATCH_MAX_QUEUE_DELAY_US`, `BATCH_MAX_QUEUE_ROWS`); fields given here win.
 */
export interface CreateServingOptions extends ServingOptions {
  /** Entries of the in-memory prediction cache; 0 disables caching (in Redis too). Default 10 000. */
  readonly cacheEntries?: number;
  /** Lifetime of cache entries in seconds (0 = until evicted). Default 0 in memory, 3600 in Redis. */
  readonly cacheTtlSeconds?: number;
  /**
   * Which answers the cache stores: `repeat`, those of rows seen a second time (see `Sightings`), or
   * `always`. Default `repeat` in memory, `always` in Redis (shared by replicas that each see a row once).
   */
  readonly cacheAdmit?: 'repeat' | 'always';
  /** Prefix of the prediction cache's Redis keys; `DELETE /predict/cache` removes only these. Default `modelplane:pred:`. */
  readonly cachePrefix?: string;
}

/** The serving options the configuration sets (only those it sets, so defaults stay in one place). */
export function servingOptionsFromConfig(config: Config): CreateServingOptions {
  const { predictionCache, batching } = config;
  return {
    cacheEntries: predictionCache.size,
    ...(predictionCache.ttlSeconds === undefined ? {} : { cacheTtlSeconds: predictionCache.ttlSeconds }),
    ...(predictionCache.admit === undefined ? {} : { cacheAdmit: predictionCache.admit }),
    maxQueueDelayUs: batching.maxQueueDelayUs,
    inferenceThread: config.model.inferenceThread,
    ...(batching.maxQueueRows === undefined ? {} : { maxQueueRows: batching.maxQueueRows }),
  };
}

/** A serving instance bound to one app context. */
export interface Serving {
  readonly service: ServingService;
  readonly cache: PredictionCache | undefined;
  readonly metrics: ServingMetrics;
  /** Registers the prediction routes (before the app is ready). */
  routes(app: App): Promise<void>;
  /** Loads the default model; rejects when `MODEL_PATH` is set and unusable (fail fast). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Builds serving for an app context: metrics on the app's registry, the prediction cache (Redis
 * when the context has Redis, else in memory), `MODEL_PATH` or registry resolution, the readiness
 * check `model`, `ctx.status.modelLoaded`, the `serving` info section, and `close` in
 * `ctx.closers`. Nothing is loaded until `start()`.
 * @param registry the model registry; `undefined` serves `MODEL_PATH` only
 */
export function createServing(ctx: AppContext, registry: RegistryReader | undefined, given: CreateServingOptions = {}): Serving {
  const { config } = ctx;
  const options: CreateServingOptions = { ...servingOptionsFromConfig(config), ...given };
  const metrics = new ServingMetrics(ctx.metrics.registry);
  const cache = createPredictionCache(ctx, options);
  const file =
    config.model.path === undefined
      ? undefined
      : modelFileSource(config.model.path, {
          ...(config.s3.endpoint === undefined ? {} : { endpoint: config.s3.endpoint }),
          ...(config.s3.region === undefined ? {} : { region: config.s3.region }),
          forcePathStyle: config.s3.forcePathStyle,
        });
  const service = new ServingService(
    { config, log: ctx.log, artifacts: ctx.artifacts, metrics, registry, file, onStatus: (loaded) => ctx.metrics.modelLoaded.set(loaded ? 1 : 0) },
    options,
  );

  ctx.status.modelLoaded = () => service.defaultModel !== undefined;
  ctx.metrics.modelLoaded.set(0);
  ctx.status.addReadinessCheck('model', () => {
    const m = service.defaultModel;
    ctx.metrics.modelLoaded.set(m === undefined ? 0 : 1);
    if (m !== undefined) return { ok: true, detail: `${m.identity.name} ${m.identity.version}` };
    if (!service.hasDefault) return { ok: true, detail: 'no default model configured' };
    return { ok: false, detail: `default model ${config.model.name ?? config.model.path ?? ''} is not loaded` };
  });
  ctx.status.addSection('serving', () => {
    const u = service.usage;
    const m = service.defaultModel;
    return {
      default_model: m === undefined ? null : { name: m.identity.name, version: m.identity.version, stage: m.identity.stage, device: m.runtime.device },
      loaded_models: service.loadedModels().length,
      predictions_served: u.predictions,
      requests: u.requests,
      failures: u.failures,
      mean_latency_ms: u.requests === 0 ? 0 : Math.round((u.latency_ms_total / u.requests) * 1000) / 1000,
      model_reloads: u.reloads,
      model_reload_failures: u.reload_failures,
      cache: cache === undefined ? 'off' : cache.kind,
      max_batch_size: config.maxBatchSize,
    };
  });
  ctx.closers.push(() => service.close());

  return {
    service,
    cache,
    metrics,
    routes: (app) => servingRoutes(app, { service, cache, metrics, maxBatchSize: config.maxBatchSize }),
    async start() {
      await service.start();
      ctx.metrics.modelLoaded.set(service.defaultModel === undefined ? 0 : 1);
    },
    close: () => service.close(),
  };
}

/** The prediction cache the options ask for: Redis when the context has Redis, else in memory; none for 0 entries. */
function createPredictionCache(ctx: AppContext, options: CreateServingOptions): PredictionCache | undefined {
  const entries = options.cacheEntries ?? 10_000;
  if (entries <= 0) return undefined;
  if (ctx.redis === undefined) return new MemoryPredictionCache(entries, options.cacheTtlSeconds ?? 0, (options.cacheAdmit ?? 'repeat') === 'repeat');
  return new RedisPredictionCache(
    ctx.redis,
    options.cacheTtlSeconds ?? 3600,
    options.cachePrefix ?? 'modelplane:pred:',
    (err) => ctx.log.warn({ err }, 'prediction cache (redis) error; treating as a miss'),
    options.cacheAdmit === 'repeat',
  );
}

// Keyed by the store, like the registry's own instances: one serving per app context, reachable
// from the context (tests, the server's start-up) without a global singleton.
const instances = new WeakMap<Store, Serving>();
const overrides = new WeakMap<Store, { registry: RegistryReader; options: CreateServingOptions }>();

/** The serving instance `servingFeature` built for this context, if any. */
export function getServing(ctx: Pick<AppContext, 'store'>): Serving | undefined {
  return instances.get(ctx.store);
}

/**
 * Makes `servingFeature` resolve models through `registry` (and use `options`) instead of the
 * project registry for the app built on this store: another `RegistryReader` implementation, e.g.
 * an in-memory one in tests, with shorter timers.
 */
export function useRegistry(store: Store, registry: RegistryReader, options: CreateServingOptions = {}): void {
  overrides.set(store, { registry, options });
}

/**
 * The serving feature for `buildApp`'s feature list: creates serving with the registry that
 * `getRegistry` returns for the context, registers the routes, and loads the default model when
 * the app becomes ready (so `app.ready()`/`listen()` fail when `MODEL_PATH` is unusable).
 */
export function servingFeature(
  getRegistry: (ctx: AppContext) => RegistryReader | undefined = () => undefined,
  options: CreateServingOptions = {},
): (app: App, ctx: AppContext) => Promise<void> {
  return async (app, ctx) => {
    const override = overrides.get(ctx.store);
    const serving = createServing(ctx, override?.registry ?? getRegistry(ctx), { ...options, ...override?.options });
    instances.set(ctx.store, serving);
    await serving.routes(app);
    app.addHook('onReady', () => serving.start());
  };
}
