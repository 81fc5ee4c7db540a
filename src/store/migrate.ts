import { Migrator, sql, type MigrationResult } from 'kysely';
import type { Store } from './database.ts';
import { migrations } from './migrations/index.ts';

/** Applies every pending migration; throws with the failing migration's name. */
export function migrateToLatest(store: Store): Promise<MigrationResult[]> {
  return migrateTo(store, undefined);
}

/**
 * Applies the pending migrations up to and including `target` (a migration's name; every one when
 * undefined); throws with the failing migration's name. Tests of a migration start from the one before.
 */
export async function migrateTo(store: Store, target: string | undefined): Promise<MigrationResult[]> {
  // Kysely's table introspection reads the catalogue of every schema; a schema dropped by someone
  // else during that read fails it (invalid_schema_name, or undefined_table / undefined_column for
  // a table dropped between the catalogue's rows, e.g. in pg_get_serial_sequence). The failure
  // then came before any migration ran, so nothing was applied and trying again is safe.
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrateOnce(store, target);
    } catch (err) {
      const code = (err as { cause?: { code?: unknown } }).cause?.code;
      const beforeAnyMigration = err instanceof MigrationError && err.migrationName === undefined;
      if (!beforeAnyMigration || !CATALOGUE_RACE_CODES.has(String(code)) || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

/** PostgreSQL errors of a catalogue read that met a schema being dropped (see migrateToLatest). */
const CATALOGUE_RACE_CODES = new Set(['3F000', '42P01', '42703']);

/** A failed migration run; `migrationName` is undefined when it failed before any migration ran. */
class MigrationError extends Error {
  readonly migrationName: string | undefined;
  constructor(migrationName: string | undefined, reason: string, cause: unknown) {
    super(`migration ${migrationName ?? '(unknown)'} failed: ${reason}`, { cause });
    this.migrationName = migrationName;
  }
}

async function migrateOnce(store: Store, target: string | undefined): Promise<MigrationResult[]> {
  // Kysely looks for its bookkeeping tables in every schema it can see; pin them to the schema
  // this store writes to, so several stores in one PostgreSQL database (tests, tenants) stay apart.
  const migrationTableSchema =
    store.dialect === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(store.db)).rows[0]?.schema
      : undefined;
  const migrator = new Migrator({
    db: store.db,
    provider: { getMigrations: async () => migrations },
    // Names are ASCII ("001-foundation"): code-unit order. Kysely's default, localeCompare,
    // initialises ICU's collator at every start (about 2 MB of the node binary's pages stay
    // resident on Node 24).
    nameComparator: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
    ...(migrationTableSchema === undefined ? {} : { migrationTableSchema }),
  });
  const { error, results = [] } = await (target === undefined ? migrator.migrateToLatest() : migrator.migrateTo(target));
  if (error !== undefined) {
    const failed = results.find((r) => r.status === 'Error');
    const reason = error instanceof Error ? error.message : JSON.stringify(error);
    throw new MigrationError(failed?.migrationName, reason, error);
  }
  return results;
}
