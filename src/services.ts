/**
 * The composition root's second half: every service, built once per process over the backends
 * `openBackends` opened, and handed to the feature plugins as arguments (see app.ts). Building
 * starts nothing; `start()` starts the background work (key refresh, model loading and refresh,
 * the training queue) and `close()` stops it, both called by the entry points (server.ts, the
 * worker, tests), never while routes register.
 */
import { Gauge } from 'prom-client';
import type { Logger } from 'pino';
import type { Backends } from './backends.ts';
import type { Config } from './config.ts';
import { DatasetService } from './datasets/dataset.service.ts';
import { createDrift, type DriftService } from './drift/index.ts';
import { onnxRuntime, type OnnxRuntime } from './onnx/runtime.ts';
import { KeyService } from './platform/auth.ts';
import { Metrics } from './platform/metrics.ts';
import { StatusBoard } from './platform/status.ts';
import { EventLoopMonitor, GpuProbe } from './platform/system.ts';
import type { RegistryReader } from './registry/registry.types.ts';
import { createRegistry, type Registry } from './registry/registry.service.ts';
import { createServing, type Serving, type ServingOptions } from './serving/index.ts';
import { createTracking, type Tracking } from './tracking/tracking.service.ts';
import { JobsService } from './training/jobs.service.ts';

/** The services that read and write the catalogue: what routes, the training pipeline and the CLI share. */
export interface DataServices {
  readonly registry: Registry;
  readonly tracking: Tracking;
  readonly datasets: DatasetService;
}

/** Every service of an API process. */
export interface Services extends DataServices {
  readonly keys: KeyService;
  readonly metrics: Metrics;
  readonly status: StatusBoard;
  readonly loop: EventLoopMonitor;
  readonly gpu: GpuProbe;
  readonly serving: Serving;
  /** Drift monitoring and the prediction log serving writes to. */
  readonly drift: DriftService;
  /** Training jobs; `undefined` where no queue was opened. */
  readonly jobs: JobsService | undefined;
  /** Starts background work: key refresh, event-loop monitor, model loading, the prediction log and drift checks, the training queue. */
  start(): Promise<void>;
  /** Stops background work and releases model sessions (not the backends). */
  close(): Promise<void>;
}

export interface ServiceOptions {
  /** Period of the in-memory API key refresh. Default 10 s. */
  readonly keyRefreshMs?: number;
  /** Serving tunables (tests shorten timers). */
  readonly serving?: ServingOptions;
  /** The registry serving resolves models through. Default: the registry service (tests give others). */
  readonly servingRegistry?: RegistryReader | null;
  /** onnxruntime (serving, the upload check). Default: onnxruntime-node, loaded on first use. */
  readonly onnx?: OnnxRuntime;
}

/** The catalogue services over the store and the artifact store (training worker processes, CLI). */
export function createDataServices(backends: Pick<Backends, 'store' | 'artifacts'>, config: Config, log: Logger, onnx: OnnxRuntime = onnxRuntime): DataServices {
  const { store, artifacts } = backends;
  return {
    registry: createRegistry({ store, artifacts, onnx, log: log.child({ component: 'registry' }), maxModelBytes: config.bodyLimitBytes }),
    tracking: createTracking(store, artifacts),
    datasets: new DatasetService({ store, artifacts, log: log.child({ component: 'datasets' }), maxBytes: config.datasetMaxBytes }),
  };
}

/** Builds every service of an API (or worker) process; starts nothing. */
export function createServices(backends: Backends, config: Config, log: Logger, options: ServiceOptions = {}): Services {
  const onnx = options.onnx ?? onnxRuntime;
  const data = createDataServices(backends, config, log, onnx);
  const gpu = new GpuProbe();
  const metrics = new Metrics(gpu);
  const status = new StatusBoard();
  const loop = new EventLoopMonitor();
  const keys = new KeyService(backends.store, config.apiKey, log, options.keyRefreshMs);
  const drift = createDrift({ store: backends.store, registry: data.registry, datasets: data.datasets, metrics, log, config });
  const serving = createServing({
    config,
    log,
    artifacts: backends.artifacts,
    onnx,
    cache: backends.predictionCache,
    metrics,
    status,
    registry: options.servingRegistry === null ? undefined : (options.servingRegistry ?? data.registry.reader),
    sink: drift.log,
    ...(options.serving === undefined ? {} : { options: options.serving }),
  });
  const queue = backends.queue;
  const jobs = queue === undefined ? undefined : new JobsService({ store: backends.store, queue, metrics, datasets: data.datasets });
  if (jobs !== undefined) status.addSection('training', () => jobs.section());

  status.addReadinessCheck('store', async () => {
    await backends.store.ping();
    return { ok: true };
  });
  const redis = backends.redis;
  const redisHealth = backends.redisHealth;
  if (redis !== undefined && redisHealth !== undefined) {
    // Not ready while Redis is away (answered at once, without a command); serving goes on with
    // local fallbacks meanwhile, and `redis_degraded` says so to Prometheus.
    status.addReadinessCheck('redis', async () => {
      if (!redisHealth.usable) return { ok: false, detail: `redis connection ${redis.status}; cache and rate limits are local, job submissions refused` };
      await redis.ping();
      return { ok: true };
    });
    new Gauge({
      name: 'redis_degraded',
      help: '1 while Redis is unavailable and the prediction cache and rate limits run locally, else 0',
      registers: [metrics.registry],
      aggregator: 'max',
      collect() {
        this.set(redisHealth.degraded ? 1 : 0);
      },
    });
  }

  let started = false;
  return {
    ...data,
    keys,
    metrics,
    status,
    loop,
    gpu,
    serving,
    drift,
    jobs,
    async start() {
      if (started) return;
      started = true;
      loop.start();
      // An upload cannot outlast REQUEST_TIMEOUT (Node ends the request), so older leftovers
      // are a dead process's; without a timeout, an hour is the bound.
      const uploadBoundMs = config.requestTimeoutSeconds > 0 ? config.requestTimeoutSeconds * 1000 + 60_000 : 3_600_000;
      await data.datasets.sweepAbandonedUploads(Date.now() - uploadBoundMs);
      await keys.start();
      await serving.start();
      drift.start();
      await queue?.start();
    },
    async close() {
      await queue?.close();
      await drift.close();
      await serving.close();
      keys.stop();
      loop.stop();
    },
  };
}
