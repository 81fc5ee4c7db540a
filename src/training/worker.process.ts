/**
 * `modelplane worker`: a process that only trains. It consumes the BullMQ queue the API feeds and
 * runs jobs on its own worker threads, recording them in the same store as the API (so it needs
 * the API's DATABASE_URL, REDIS_URL and artifact store). Start as many as there is work; each one
 * recovers nothing itself that BullMQ would not hand it, so they can come and go freely.
 */
import type { Logger } from 'pino';
import { openBackends } from '../backends.ts';
import type { Config } from '../config.ts';
import { jobThreads } from './job-threads.ts';

export interface WorkerProcessOptions {
  /** Jobs run at once (worker threads). Default: TRAINING_WORKERS, at least 1. */
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
  // Only the store and the queue: the worker threads open what the jobs need themselves.
  // Nothing is served here, so the jobs share every core (TRAINING_THREADS wins).
  const threads = jobThreads({ configured: config.trainingThreads, serving: false, concurrentJobs: workers });
  const backends = await openBackends(config, log, { queue: { workers, jobThreads: threads }, predictionCache: { entries: 0 }, waitForStore: true });
  try {
    const queue = backends.queue!;
    await queue.start();
    log.info({ store: backends.store.description, workers, threads_per_job: threads }, 'training worker ready');
    return {
      async close() {
        await queue.close();
        await backends.close();
      },
    };
  } catch (err) {
    await backends.close();
    throw err;
  }
}
