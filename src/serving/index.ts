/**
 * Prediction serving: model resolution and session cache, input/output adapters, micro-batcher,
 * prediction cache and the prediction routes. See ARCHITECTURE.md "The prediction hot path".
 */
import type { Logger } from 'pino';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import { s3Options } from '../artifacts/index.ts';
import type { Config } from '../config.ts';
import type { OnnxRuntime } from '../onnx/runtime.ts';
import type { App } from '../platform/app-type.ts';
import type { Metrics } from '../platform/metrics.ts';
import type { StatusBoard } from '../platform/status.ts';
import type { RegistryReader } from '../registry/registry.types.ts';
import type { PredictionCache } from './cache.ts';
import { ServingMetrics } from './metrics.ts';
import { modelFileSource } from './model-source.ts';
import { PredictionService, type PredictionSink } from './prediction.service.ts';
import { servingRoutes } from './serving.routes.ts';
import { ServingService, type ServingOptions } from './serving.service.ts';

export { MicroBatcher, QueueFullError, type BatcherOptions, type BatchSlice } from './batcher.ts';
export { MemoryPredictionCache, RedisPredictionCache, cacheKey, type CachedFragments, type PredictionCache } from './cache.ts';
export { LoadedModel, type ModelIdentity } from './loaded-model.ts';
export { createRuntime, type ModelRuntime, type RawOutputs, type RuntimeOptions } from './runtime.ts';
export { MAX_BATCH_SIZE_TAG, MAX_QUEUE_DELAY_TAG, tunablesFromTags, type IgnoredTag, type ModelTunables } from './model-tunables.ts';
export { ServingService, type BatchingSettings, type ModelQuery, type ServingOptions } from './serving.service.ts';
export { PredictionService, type PredictionSink, type RowReader, type RunResult, type ServedAnswer, type ServedKind } from './prediction.service.ts';

/** What {@link createServing} builds serving from. */
export interface ServingDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly artifacts: ArtifactStore;
  readonly onnx: OnnxRuntime;
  /** The prediction cache (backends.ts); `undefined` turns caching off. */
  readonly cache: PredictionCache | undefined;
  /** The process's metrics registry (serving adds its own metrics to it). */
  readonly metrics: Metrics;
  /** Where serving reports readiness (`model`) and its `/info` section. */
  readonly status: StatusBoard;
  /** The model registry; `undefined` serves `MODEL_PATH` only. */
  readonly registry: RegistryReader | undefined;
  /** Tunables; unset fields come from the configuration. */
  readonly options?: ServingOptions;
  /** The prediction log every answered request is handed to; `undefined` logs nothing. */
  readonly sink?: PredictionSink;
}

/** Serving of one process: the models (router, sessions, file mode), predictions and serving's metrics. */
export interface Serving {
  readonly service: ServingService;
  readonly predictions: PredictionService;
  readonly cache: PredictionCache | undefined;
  readonly metrics: ServingMetrics;
  /** Registers the prediction routes. */
  routes(app: App): Promise<void>;
  /** Loads the default model and starts the refresh timers; rejects when `MODEL_PATH` is unusable (fail fast). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The serving options the configuration sets (only those it sets, so defaults stay in one place). */
export function servingOptionsFromConfig(config: Config): ServingOptions {
  return {
    maxQueueDelayUs: config.batching.maxQueueDelayUs,
    inferenceThread: config.model.inferenceThread,
    ...(config.batching.maxQueueRows === undefined ? {} : { maxQueueRows: config.batching.maxQueueRows }),
  };
}

/**
 * Builds serving: metrics on the process's registry, `MODEL_PATH` or registry resolution, the
 * readiness check `model`, `status.modelLoaded` and the `serving` section of `/info`. Nothing is
 * loaded until `start()`.
 */
export function createServing(deps: ServingDeps): Serving {
  const { config, cache, status } = deps;
  const metrics = new ServingMetrics(deps.metrics.registry);
  const file = config.model.path === undefined ? undefined : modelFileSource(config.model.path, s3Options(config));
  const service = new ServingService(
    {
      config,
      log: deps.log,
      artifacts: deps.artifacts,
      onnx: deps.onnx,
      metrics,
      registry: deps.registry,
      file,
      onStatus: (loaded) => deps.metrics.modelLoaded.set(loaded ? 1 : 0),
    },
    { ...servingOptionsFromConfig(config), ...deps.options },
  );

  const predictions = new PredictionService({ router: service, cache, metrics, maxBatchSize: config.maxBatchSize, ...(deps.sink === undefined ? {} : { sink: deps.sink }) });

  status.modelLoaded = () => service.defaultModel !== undefined;
  deps.metrics.modelLoaded.set(0);
  status.addReadinessCheck('model', () => {
    const m = service.defaultModel;
    deps.metrics.modelLoaded.set(m === undefined ? 0 : 1);
    if (m !== undefined) return { ok: true, detail: `${m.identity.name} ${m.identity.version}` };
    if (!service.hasDefault) return { ok: true, detail: 'no default model configured' };
    return { ok: false, detail: `default model ${config.model.name ?? config.model.path ?? ''} is not loaded` };
  });
  status.addSection('serving', () => {
    const u = predictions.usage;
    const m = service.defaultModel;
    return {
      default_model: m === undefined ? null : { name: m.identity.name, version: m.identity.version, stage: m.identity.stage, device: m.runtime.device },
      loaded_models: service.loadedModels().length,
      predictions_served: u.predictions,
      requests: u.requests,
      failures: u.failures,
      mean_latency_ms: u.requests === 0 ? 0 : Math.round((u.latency_ms_total / u.requests) * 1000) / 1000,
      model_reloads: service.usage.reloads,
      model_reload_failures: service.usage.reload_failures,
      cache: cache === undefined ? 'off' : cache.kind,
      max_batch_size: config.maxBatchSize,
    };
  });

  return {
    service,
    predictions,
    cache,
    metrics,
    routes: (app) => servingRoutes(app, { service, predictions }),
    async start() {
      await service.start();
      deps.metrics.modelLoaded.set(service.defaultModel === undefined ? 0 : 1);
    },
    close: () => service.close(),
  };
}
