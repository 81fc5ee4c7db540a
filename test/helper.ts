import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { buildApp, type App, type AppDeps } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { closeDeps, createDeps } from '../src/context.ts';
import type { Role } from '../src/platform/auth.ts';
import type { AppContext } from '../src/platform/context.ts';
import { createLogger } from '../src/platform/logging.ts';

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
  /** Runs after deps exist and before the app is built (e.g. to seed the store). */
  readonly beforeBuild?: (deps: AppDeps, config: Config) => Promise<void>;
}

/**
 * Builds a full app on a fresh data directory (and, for PostgreSQL, a fresh schema), with one API
 * key per role. Tests call `inject()` on `app`; nothing listens.
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
  const deps = await createDeps(config, log, { ...(schema === undefined ? {} : { pgSchema: schema }), keyRefreshMs: 60_000 });
  if (options.beforeBuild !== undefined) await options.beforeBuild(deps, config);
  const keys = {} as Record<Role, string>;
  for (const role of ['read', 'predict', 'train', 'admin'] as const) {
    keys[role] = (await deps.keys.create(`test-${role}`, role, 'test')).key;
  }
  const app = await buildApp(config, deps);
  await app.ready();
  return {
    app,
    ctx: { config, ...deps },
    config,
    dataDir,
    keys,
    headers: (role) => ({ 'x-api-key': keys[role] }),
    async close() {
      await app.close();
      await closeDeps(deps);
      if (schema !== undefined) await dropSchema(schema);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
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
