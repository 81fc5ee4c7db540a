/**
 * `modelplane worker`: a process that only trains. It consumes the BullMQ queue the API feeds and
 * runs jobs in worker processes of its own (children), recording them in the same store as the API (so it needs
 * the API's DATABASE_URL, REDIS_URL and artifact store). Start as many as there is work; each one
 * recovers nothing itself that BullMQ would not hand it, so they can come and go freely.
 *
 * With `PROMETHEUS_PORT` set it serves its own `/metrics` (the training metrics of the jobs that
 * end here, plus the process metrics) and `/health` on that port, the only HTTP it serves.
 */
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { openBackends, type Backends } from '../backends.ts';
import type { Config } from '../config.ts';
import { KeyService } from '../platform/auth.ts';
import { listenMetrics, type MetricsListener } from '../platform/metrics.ts';
import { observeTraining } from './job.metrics.ts';
import { jobThreads } from './job-threads.ts';

export interface WorkerProcessOptions {
  /** Jobs run at once (one worker process each). Default: TRAINING_WORKERS, at least 1. */
  readonly concurrency?: number;
}

/** A started worker process; `close` re-queues its running jobs and disconnects. */
export interface RunningWorker {
  close(): Promise<void>;
}

/**
 * Starts consuming training jobs. Throws when Redis is not configured (the embedded queue needs
 * no separate worker: the API process runs its jobs).
 */
export async function startWorkerProcess(config: Config, log: Logger, options: WorkerProcessOptions = {}): Promise<RunningWorker> {
  if (config.redisUrl === undefined) {
    throw new Error('modelplane worker needs REDIS_URL (or REDIS_HOST): without Redis the API process runs training jobs itself');
  }
  const workers = options.concurrency ?? Math.max(1, config.trainingWorkers);
  // This process's own registry (never prom-client's global one), served by its metrics listener.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Keys are checked once the store is open; until then a scrape that needs one answers 503.
  let keys: KeyService | undefined;
  // The listener comes first: /health answers while the worker still waits for its store and Redis,
  // so a liveness probe does not restart a worker that is only waiting.
  const listener = await openMetricsListener(config, registry, log, () => keys);
  let backends: Backends | undefined;
  // Nothing but metrics is served here, so the jobs share every core (TRAINING_THREADS wins).
  const threads = jobThreads({ configured: config.trainingThreads, serving: false, concurrentJobs: workers });
  try {
    // Only the store and the queue: the worker processes open what the jobs need themselves.
    backends = await openBackends(config, log, { queue: { workers, jobThreads: threads }, predictionCache: { entries: 0 }, waitForStore: true });
    if (listener !== undefined && config.prometheus.enabled && config.prometheus.requireAuth) {
      keys = new KeyService(backends.store, config.apiKey, log);
      await keys.start();
    }
    const queue = backends.queue!;
    observeTraining(registry, queue);
    await queue.start();
    log.info({ store: backends.store.description, workers, threads_per_job: threads, metrics: listener?.url ?? 'off' }, 'training worker ready');
    const opened = backends;
    return {
      async close() {
        await queue.close();
        keys?.stop();
        await opened.close();
        await listener?.close();
      },
    };
  } catch (err) {
    keys?.stop();
    await backends?.close();
    await listener?.close();
    throw err;
  }
}

/**
 * The listener on `PROMETHEUS_PORT` (address `API_HOST`), or none when no port is set (a worker has
 * no other port). With `ENABLE_PROMETHEUS=false` it serves `/health` alone, so probes still work.
 */
async function openMetricsListener(config: Config, registry: Registry, log: Logger, keys: () => KeyService | undefined): Promise<MetricsListener | undefined> {
  if (config.prometheus.port === undefined) {
    if (config.prometheus.enabled) log.info('no metrics listener: set PROMETHEUS_PORT for the worker to serve /metrics and /health');
    return undefined;
  }
  const listener = await listenMetrics({
    host: config.host,
    port: config.prometheus.port,
    metrics: config.prometheus.enabled ? { render: () => registry.metrics(), contentType: registry.contentType } : undefined,
    ...(config.prometheus.enabled && config.prometheus.requireAuth
      ? {
          authenticate: async (key: string) => {
            const service = keys();
            if (service === undefined) throw new Error('the worker is still opening its store');
            return service.authenticate(key);
          },
        }
      : {}),
    log,
  });
  log.info({ address: listener.url, metrics: config.prometheus.enabled }, 'metrics listener ready');
  return listener;
}
