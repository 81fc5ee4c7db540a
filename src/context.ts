import type { Logger } from 'pino';
import { createArtifactStore } from './artifacts/index.ts';
import type { AppDeps } from './app.ts';
import type { Config } from './config.ts';
import { KeyService } from './platform/auth.ts';
import { StatusBoard } from './platform/context.ts';
import { Metrics } from './platform/metrics.ts';
import { EventLoopMonitor, GpuProbe } from './platform/system.ts';
import { openStore } from './store/database.ts';
import { migrateToLatest } from './store/migrate.ts';

export interface ContextOptions {
  /** PostgreSQL schema override (tests). */
  readonly pgSchema?: string;
  /** Skip migrations (cluster workers: the primary already applied them). */
  readonly skipMigrations?: boolean;
  /** Refresh period of the in-memory key cache. */
  readonly keyRefreshMs?: number;
}

/**
 * Opens every backend the configuration names: SQLite or PostgreSQL, local or S3 artifacts,
 * Redis when configured. The one place (with `buildApp`) that chooses implementations.
 */
export async function createDeps(config: Config, log: Logger, options: ContextOptions = {}): Promise<AppDeps> {
  const store = await openStore({
    dataDir: config.dataDir,
    ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
    ...(options.pgSchema === undefined ? {} : { schema: options.pgSchema }),
  });
  const closers: Array<() => Promise<void> | void> = [];
  try {
    if (options.skipMigrations !== true) await migrateToLatest(store);
    const artifacts = await createArtifactStore(config.artifactRoot, config.dataDir, {
      ...(config.s3.endpoint === undefined ? {} : { endpoint: config.s3.endpoint }),
      ...(config.s3.region === undefined ? {} : { region: config.s3.region }),
      forcePathStyle: config.s3.forcePathStyle,
    });
    // ioredis (about 17 MB resident) is loaded only when Redis is configured.
    const redis =
      config.redisUrl === undefined
        ? undefined
        : new (await import('ioredis')).Redis(config.redisUrl, { maxRetriesPerRequest: 3, enableOfflineQueue: true, lazyConnect: false });
    redis?.on('error', (err) => log.warn({ err: { message: err.message } }, 'redis connection error'));
    const keys = new KeyService(store, config.apiKey, log, options.keyRefreshMs);
    await keys.start();
    const gpu = new GpuProbe();
    const loop = new EventLoopMonitor();
    loop.start();
    closers.push(
      () => store.close(),
      () => artifacts.close(),
      async () => {
        if (redis !== undefined) await redis.quit().catch(() => redis.disconnect());
      },
      () => keys.stop(),
      () => loop.stop(),
    );
    const status = new StatusBoard();
    if (redis !== undefined) {
      status.addReadinessCheck('redis', async () => {
        await redis.ping();
        return { ok: true };
      });
    }
    return { log, store, artifacts, keys, metrics: new Metrics(gpu), status, loop, gpu, redis, closers };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Runs every closer in reverse order, logging (not throwing) failures. */
export async function closeDeps(deps: Pick<AppDeps, 'closers' | 'log'>): Promise<void> {
  for (const close of [...deps.closers].reverse()) {
    try {
      await close();
    } catch (err) {
      deps.log.warn({ err }, 'error while closing a backend');
    }
  }
}
