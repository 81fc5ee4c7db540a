/**
 * `modelplane worker`: a process that only trains. It consumes the BullMQ queue the API feeds and
 * runs jobs on its own worker threads, recording them in the same store as the API (so it needs
 * the API's DATABASE_URL, REDIS_URL and artifact store). Start as many as there is work; each one
 * recovers nothing itself that BullMQ would not hand it, so they can come and go freely.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { openStore } from '../store/database.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { registerJobKind } from './handlers.ts';
import { trainJobKind } from './pipeline.ts';
import { BullMqQueue } from './queue.bullmq.ts';
import { queueOptions } from './queue.ts';

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
  registerJobKind(trainJobKind);
  const store = await openStore({ dataDir: config.dataDir, ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }) });
  try {
    await migrateToLatest(store);
    const workers = options.concurrency ?? Math.max(1, config.trainingWorkers);
    const queue = new BullMqQueue({ config, store, log }, { ...queueOptions(config, { workers }), redisUrl: config.redisUrl });
    await queue.start();
    log.info({ store: store.description, workers }, 'training worker ready');
    return {
      async close() {
        await queue.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
