/**
 * The composition root's first half: every backend the configuration names, opened once per
 * process. SQLite or PostgreSQL, a local folder or S3, Redis when configured, the prediction cache
 * (memory or Redis) and the training queue (embedded or BullMQ). This is the only module that
 * chooses implementations; drivers of backends that are not configured are never loaded.
 * Services are built over the result by `createServices` (services.ts).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createArtifactStore, s3Options, type ArtifactStore } from './artifacts/index.ts';
import type { Config } from './config.ts';
import { MemoryPredictionCache, RedisPredictionCache, type PredictionCache } from './serving/cache.ts';
import { openStore, type Store } from './store/database.ts';
import { migrateToLatest } from './store/migrate.ts';
import type { JobCatalogue } from './training/handlers.ts';
import { createJobQueue, type JobQueue, type QueueOptions } from './training/queue.ts';
import { trainingCatalogue } from './training/train-job.ts';

/** What `openBackends` opened; `close` closes all of it in reverse order. */
export interface Backends {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  /** The shared Redis connection when `REDIS_URL`/`REDIS_HOST` is set. */
  readonly redis: Redis | undefined;
  /** The prediction cache; `undefined` when `PREDICTION_CACHE_SIZE=0` (or not opened). */
  readonly predictionCache: PredictionCache | undefined;
  /** The training queue, not started; `undefined` where not opened (training threads, CLI). */
  readonly queue: JobQueue | undefined;
  close(): Promise<void>;
}

/** Prediction cache settings; unset fields come from the configuration, then the backend's default. */
export interface PredictionCacheOptions {
  /** In-memory entries; 0 disables caching (in Redis too). Default `PREDICTION_CACHE_SIZE`. */
  readonly entries?: number;
  /** Entry lifetime in seconds (0 = until evicted). Default 0 in memory, 3600 in Redis. */
  readonly ttlSeconds?: number;
  /** `repeat` stores rows seen twice, `always` every row. Default `repeat` in memory, `always` in Redis. */
  readonly admit?: 'repeat' | 'always';
  /** Prefix of the cache's Redis keys; `DELETE /predict/cache` removes only these. Default `modelplane:pred:`. */
  readonly redisPrefix?: string;
}

export interface BackendOptions {
  /**
   * Which backends to open: `all` (API server, worker process) or `data`, only the store and the
   * artifact store (training threads, CLI commands). Default `all`.
   */
  readonly parts?: 'all' | 'data';
  /** Apply pending migrations after opening the store. Default true. */
  readonly migrate?: boolean;
  /** PostgreSQL schema override (tests give each app its own). */
  readonly pgSchema?: string;
  /** The kinds of job the queue runs. Default: the training catalogue. */
  readonly catalogue?: JobCatalogue;
  /** Queue tunables (tests shorten timers and use unique queue names). */
  readonly queue?: Partial<QueueOptions>;
  readonly predictionCache?: PredictionCacheOptions;
}

/** Opens the store only (migrated unless told otherwise): for CLI commands that need nothing else. */
export async function openConfiguredStore(config: Config, options: Pick<BackendOptions, 'migrate' | 'pgSchema'> = {}): Promise<Store> {
  const store = await openStore({
    dataDir: config.dataDir,
    ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
    ...(options.pgSchema === undefined ? {} : { schema: options.pgSchema }),
  });
  try {
    if (options.migrate !== false) await migrateToLatest(store);
    return store;
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * Opens every backend the configuration names (see the module comment). Nothing is started: the
 * queue takes no jobs and no timers run until the services are started.
 */
export async function openBackends(config: Config, log: Logger, options: BackendOptions = {}): Promise<Backends> {
  const closers: Array<() => Promise<void> | void> = [];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn({ err }, 'error while closing a backend');
      }
    }
    closers.length = 0;
  };
  try {
    const store = await openConfiguredStore(config, options);
    closers.push(() => store.close());
    const artifacts = await createArtifactStore(config.artifactRoot, config.dataDir, s3Options(config));
    closers.push(() => artifacts.close());
    if (options.parts === 'data') return { store, artifacts, redis: undefined, predictionCache: undefined, queue: undefined, close };

    const redis = config.redisUrl === undefined ? undefined : await openRedis(config.redisUrl, log);
    if (redis !== undefined) closers.push(() => redis.quit().then(() => undefined, () => redis.disconnect()));
    const predictionCache = openPredictionCache(config, redis, log, options.predictionCache);
    const queue = await createJobQueue({ config, store, log, catalogue: options.catalogue ?? trainingCatalogue() }, options.queue);
    return { store, artifacts, redis, predictionCache, queue, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The shared Redis connection. ioredis (about 17 MB resident) is loaded only when Redis is configured. */
async function openRedis(url: string, log: Logger): Promise<Redis> {
  const { Redis: RedisClient } = await import('ioredis');
  const redis = new RedisClient(url, { maxRetriesPerRequest: 3, enableOfflineQueue: true, lazyConnect: false });
  redis.on('error', (err) => log.warn({ err: { message: err.message } }, 'redis connection error'));
  return redis;
}

/** The prediction cache the configuration asks for: Redis when configured, else in memory; none for 0 entries. */
function openPredictionCache(config: Config, redis: Redis | undefined, log: Logger, given: PredictionCacheOptions = {}): PredictionCache | undefined {
  const entries = given.entries ?? config.predictionCache.size;
  if (entries <= 0) return undefined;
  const ttl = given.ttlSeconds ?? config.predictionCache.ttlSeconds;
  const admit = given.admit ?? config.predictionCache.admit;
  if (redis === undefined) return new MemoryPredictionCache(entries, ttl ?? 0, (admit ?? 'repeat') === 'repeat');
  return new RedisPredictionCache(
    redis,
    ttl ?? 3600,
    given.redisPrefix ?? 'modelplane:pred:',
    (err) => log.warn({ err }, 'prediction cache (redis) error; treating as a miss'),
    admit === 'repeat',
  );
}
