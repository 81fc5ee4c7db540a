/** Fresh stores for the job-system tests and rows as dead workers leave them. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { claimById, insertJob } from '../../src/training/jobs.repository.ts';
import { TEST_DATABASE_URL, dropSchema, uniqueSchema, type StoreBackend } from '../helper.ts';
import type { TestPayload } from './fixtures/test-handler.ts';

/**
 * Kysely's migrator introspects every schema of the database; a schema dropped meanwhile by
 * another test makes it fail ("schema ... does not exist"). Migrations and drops of this file's
 * concurrent tests therefore take turns, and a migration hit by another process's drop is retried.
 */
let pgTurn: Promise<unknown> = Promise.resolve();
function inTurn<T>(fn: () => Promise<T>): Promise<T> {
  const next = pgTurn.then(fn, fn);
  pgTurn = next.catch(() => undefined);
  return next;
}

async function migrateWithRetry(store: Store): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await migrateToLatest(store);
      return;
    } catch (err) {
      if (attempt >= 3 || !/schema "[^"]+" does not exist/.test(err instanceof Error ? err.message : '')) throw err;
    }
  }
}

/** A fresh migrated store of the given backend, with its cleanup. */
export async function freshStore(backend: StoreBackend): Promise<{ store: Store; drop: () => Promise<void> }> {
  if (backend === 'postgres') {
    const schema = uniqueSchema('jobs');
    // Created (and committed) before the store's pool exists, so no pooled connection can miss it.
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.end();
    const store = await openStore({ dataDir: os.tmpdir(), databaseUrl: TEST_DATABASE_URL, schema });
    await inTurn(() => migrateWithRetry(store));
    return { store, drop: () => inTurn(() => dropSchema(schema)) };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-jobs-'));
  const store = await openStore({ dataDir: dir });
  await migrateToLatest(store);
  return { store, drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes a row as a worker that died mid-job left it: running, attempt 1 used, stage `fit`. */
export async function insertOrphan(store: Store, payload: TestPayload, workerId: string, heartbeatAt: number): Promise<string> {
  const id = crypto.randomUUID();
  await insertJob(store.db, { id, kind: payload.kind, payload: JSON.stringify(payload), maxAttempts: 2, now: Date.now() - 10_000 });
  await claimById(store.db, id, ['queued'], workerId, heartbeatAt);
  await store.db.updateTable('jobs').set({ stage: 'fit', progress_percent: 40, heartbeat_at: heartbeatAt }).where('id', '=', id).execute();
  return id;
}

