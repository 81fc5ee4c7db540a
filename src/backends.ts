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
import { RedisHealth } from './platform/redis-health.ts';
import { FallbackPredictionCache, MemoryPredictionCache, RedisPredictionCache, type PredictionCache } from './serving/cache.ts';
import { isStoreUnavailable, openStore, type Store } from './store/database.ts';
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
  /** Whether that connection works now (features fall back while it does not); with `redis`. */
  readonly redisHealth: RedisHealth | undefined;
  /** The prediction cache; `undefined` when `PREDICTION_CACHE_SIZE=0` (or not opened). */
  readonly predictionCache: PredictionCache | undefined;
  /** The training queue, not started; `undefined` where not opened (training worker processes, CLI). */
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
   * artifact store (training worker processes, CLI commands). Default `all`.
   */
  readonly parts?: 'all' | 'data';
  /** Apply pending migrations after opening the store. Default true. */
  readonly migrate?: boolean;
  /** PostgreSQL schema override (tests give each app its own). */
  readonly pgSchema?: string;
  /**
   * Wait (retrying with backoff) while the store's server cannot be reached, instead of failing:
   * long-running processes (API, worker) started before their database. Default false.
   */
  readonly waitForStore?: boolean;
  /** The kinds of job the queue runs. Default: the training catalogue. */
  readonly catalogue?: JobCatalogue;
  /** Queue tunables (tests shorten timers and use unique queue names). */
  readonly queue?: Partial<QueueOptions>;
  readonly predictionCache?: PredictionCacheOptions;
}

/** Opens the store only (migrated unless told otherwise): for CLI commands that need nothing else. */
export async function openConfiguredStore(
  config: Config,
  options: Pick<BackendOptions, 'migrate' | 'pgSchema' | 'waitForStore'> & { readonly log?: Logger } = {},
): Promise<Store> {
  const open = async (): Promise<Store> => {
    const store = await openStore({
      dataDir: config.dataDir,
      ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
      ...(options.pgSchema === undefined ? {} : { schema: options.pgSchema }),
      onConnectionError: (err) => options.log?.warn({ err: { message: err.message } }, 'metadata store connection lost; reconnecting on the next query'),
      walCheckpoint: { onError: (err) => options.log?.warn({ err: { message: err.message } }, 'SQLite checkpoint thread failed; checkpoints run in the writing connection again') },
    });
    try {
      if (options.migrate !== false) await migrateToLatest(store);
      // Connects now, so that a store that cannot be reached is found here and not by the first request.
      else await store.ping();
      return store;
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  };
  if (options.waitForStore !== true) return open();
  return retryWhileUnavailable(open, options.log, 'metadata store');
}

/** First and longest pause between tries of a backend that cannot be reached at start-up. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;

/**
 * Runs `attempt` until it succeeds or fails for another reason than an unreachable store, waiting
 * 0.5 s, 1 s, 2 s... (at most 10 s) between tries: a process started before its database (a
 * cluster booting, a failover) waits for it instead of exiting into a crash loop. Each failed try
 * is logged with the next delay.
 */
export async function retryWhileUnavailable<T>(attempt: () => Promise<T>, log: Logger | undefined, what: string): Promise<T> {
  let delay = RETRY_FIRST_MS;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err;
      log?.warn({ err: { message: err instanceof Error ? err.message : String(err) }, tries, retry_in_ms: delay }, `${what} unreachable; waiting for it`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
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
    const store = await openConfiguredStore(config, { ...options, log });
    closers.push(() => store.close());
    const artifacts = await createArtifactStore(config.artifactRoot, config.dataDir, s3Options(config));
    closers.push(() => artifacts.close());
    if (options.parts === 'data') return { store, artifacts, redis: undefined, redisHealth: undefined, predictionCache: undefined, queue: undefined, close };

    const redis = config.redisUrl === undefined ? undefined : await openRedis(config.redisUrl, config.redis, log);
    if (redis !== undefined) closers.push(() => redis.quit().then(() => undefined, () => redis.disconnect()));
    const redisHealth = redis === undefined ? undefined : new RedisHealth(redis, log);
    const predictionCache = openPredictionCache(config, redis, redisHealth, log, options.predictionCache);
    const queue = await createJobQueue({ config, store, log, catalogue: options.catalogue ?? trainingCatalogue() }, options.queue);
    return { store, artifacts, redis, redisHealth, predictionCache, queue, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The shared Redis connection. Commands never queue while it is down and never wait longer than
 * `REDIS_COMMAND_TIMEOUT_MS` (500 ms by default): every user of this connection has a local
 * fallback, so failing fast is what keeps requests answering during an outage. A connection
 * attempt is given up after `REDIS_CONNECT_TIMEOUT_MS`, and start-up waits that long for Redis
 * before it goes on without it (features degrade until it connects). ioredis reconnects by itself.
 * ioredis (about 17 MB resident) is loaded only when Redis is configured.
 */
async function openRedis(url: string, timeouts: Config['redis'], log: Logger): Promise<Redis> {
  const { Redis: RedisClient } = await import('ioredis');
  const redis = new RedisClient(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: timeouts.commandTimeoutMs,
    connectTimeout: timeouts.connectTimeoutMs,
    lazyConnect: false,
  });
  redis.on('error', (err) => log.warn({ err: { message: err.message } }, 'redis connection error'));
  const ready = await waitForEvent(redis, 'ready', timeouts.connectTimeoutMs);
  if (!ready) log.warn({ wait_ms: timeouts.connectTimeoutMs }, 'redis not reachable at start-up; starting without it (it is used once it connects)');
  return redis;
}

/** Resolves true at `event`, false after `ms` (or at once when the connection is already ready). */
function waitForEvent(redis: Redis, event: 'ready', ms: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      redis.off(event, onEvent);
      resolve(ok);
    };
    const onEvent = (): void => done(true);
    const timer = setTimeout(() => done(false), ms);
    redis.once(event, onEvent);
  });
}

/** The prediction cache the configuration asks for: Redis when configured, else in memory; none for 0 entries. */
function openPredictionCache(
  config: Config,
  redis: Redis | undefined,
  health: RedisHealth | undefined,
  log: Logger,
  given: PredictionCacheOptions = {},
): PredictionCache | undefined {
  const entries = given.entries ?? config.predictionCache.size;
  if (entries <= 0) return undefined;
  const ttl = given.ttlSeconds ?? config.predictionCache.ttlSeconds;
  const admit = given.admit ?? config.predictionCache.admit;
  if (redis === undefined) return new MemoryPredictionCache(entries, ttl ?? 0, (admit ?? 'repeat') === 'repeat');
  const shared = new RedisPredictionCache(
    redis,
    ttl ?? 3600,
    given.redisPrefix ?? 'modelplane:pred:',
    (err) => {
      health?.failed(err);
      log.debug({ err }, 'prediction cache (redis) error; treating as a miss');
    },
    admit === 'repeat',
  );
  if (health === undefined) return shared;
  // While Redis is away, a bounded cache in this process stands in (PREDICTION_CACHE_SIZE entries).
  return new FallbackPredictionCache(shared, new MemoryPredictionCache(entries, ttl ?? 0, (admit ?? 'repeat') === 'repeat'), health);
}
