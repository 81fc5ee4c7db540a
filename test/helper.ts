import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { buildApp, type App } from '../src/app.ts';
import type { BackendOptions, Backends } from '../src/backends.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { closeContext, openContext, type AppContext } from '../src/context.ts';
import type { Role } from '../src/platform/auth.ts';
import { createLogger } from '../src/platform/logging.ts';
import { onnxRuntime } from '../src/onnx/runtime.ts';
import type { ServiceOptions, Services } from '../src/services.ts';
import type { PipelineDeps } from '../src/training/pipeline.ts';

/** The PostgreSQL server tests use (trust auth on this machine and in CI). */
export const TEST_DATABASE_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** `../shared` beside the project root: extra fixtures, absent on a bare clone. */
export const SHARED_DIR = path.resolve(import.meta.dirname, '../../shared');
export const HAS_SHARED = existsSync(SHARED_DIR);

export type StoreBackend = 'sqlite' | 'postgres';

let pgReachable: Promise<boolean> | undefined;
/**
 * Whether PostgreSQL answers. In CI (`CI=true`) it must: `.ci/run` starts it, so an unreachable
 * server is a failure there rather than a silent skip.
 */
export function postgresAvailable(): Promise<boolean> {
  pgReachable ??= (async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch (err) {
      if (process.env['CI'] === 'true') throw new Error(`PostgreSQL is required in CI but not reachable at ${TEST_DATABASE_URL}`, { cause: err });
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return pgReachable;
}

/** Store backends to run a suite against: SQLite always, PostgreSQL when reachable. */
export async function storeBackends(): Promise<StoreBackend[]> {
  return (await postgresAvailable()) ? ['sqlite', 'postgres'] : ['sqlite'];
}

/** A unique, valid PostgreSQL schema name for one test app. */
export function uniqueSchema(prefix = 't'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

export interface TestApp {
  readonly app: App;
  readonly ctx: AppContext;
  readonly config: Config;
  readonly backends: Backends;
  readonly services: Services;
  readonly dataDir: string;
  /** One key per role, plus `headers(role)` to use them. */
  readonly keys: Readonly<Record<Role, string>>;
  headers(role: Role): Record<string, string>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  readonly backend?: StoreBackend;
  /** Extra environment variables (same names as production). */
  readonly env?: Record<string, string>;
  /** Backend options (queue timings, cache prefix, ...). */
  readonly backends?: BackendOptions;
  /** Service options (serving timers, another registry for serving, ...). */
  readonly services?: ServiceOptions;
  /** Runs after the context exists and before the app is built and started (e.g. to seed the store). */
  readonly beforeBuild?: (ctx: AppContext) => Promise<void>;
}

/**
 * Builds a full app on a fresh data directory (and, for PostgreSQL, a fresh schema), with one API
 * key per role, and starts its services as the server does. Tests call `inject()` on `app`;
 * nothing listens.
 */
export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-test-'));
  const schema = options.backend === 'postgres' ? uniqueSchema() : undefined;
  const config = loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    ...(options.backend === 'postgres' ? { DATABASE_URL: TEST_DATABASE_URL } : {}),
    ...options.env,
  });
  const log = createLogger(config, { pretty: false });
  const ctx = await openContext(config, log, {
    backends: { ...options.backends, ...(schema === undefined ? {} : { pgSchema: schema }) },
    services: { keyRefreshMs: 60_000, ...options.services },
  });
  const cleanup = async (): Promise<void> => {
    await closeContext(ctx);
    if (schema !== undefined) await dropSchema(schema);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (options.beforeBuild !== undefined) await options.beforeBuild(ctx);
    const keys = {} as Record<Role, string>;
    for (const role of ['read', 'predict', 'train', 'admin'] as const) {
      keys[role] = (await ctx.services.keys.create(`test-${role}`, role, 'test')).key;
    }
    const app = await buildApp(ctx);
    await app.ready();
    await ctx.services.start();
    return {
      app,
      ctx,
      config,
      backends: ctx.backends,
      services: ctx.services,
      dataDir,
      keys,
      headers: (role) => ({ 'x-api-key': keys[role] }),
      async close() {
        await app.close();
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** What the training pipeline runs on, from a test app's services. */
export function pipelineDeps(t: TestApp): PipelineDeps {
  return { services: t.services, onnx: onnxRuntime, log: t.ctx.log, maxModelBytes: t.ctx.config.trainingMaxModelBytes };
}

/** Every key under `prefix`, read straight from Redis with SCAN (not through the code under test), sorted. */
export async function redisKeysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}
