import type { Kysely } from 'kysely';
import { foldLegacyRows } from '../../drift/log-legacy.ts';
import { autoIncrementPk, autoIncrementType, isSqlite } from './dialect.ts';

/**
 * The prediction log as blocks: one row per (model, version) per flush of the log, holding that
 * flush's rows packed (`drift/log-block.ts`, format byte first), with the metadata reads need:
 * the first row's sequence number (a row's id is it plus the row's index), the row count and the
 * first and last row times. "The latest N rows" and paging read the `(model, version, first_seq)`
 * index and the unique `first_seq`; time windows and retention by age read `(last_at)`. The next
 * sequence number is kept in `prediction_log_sequence` (one row), so numbers are never given
 * twice, even after retention deleted every block; writers lock that row to number their rows.
 *
 * The rows of `prediction_log` (one per predicted row) are moved into blocks here, a chunk per
 * transaction, each keeping its id as its sequence number. The table itself stays: migrations are
 * additive, and during a rolling upgrade the previous version's replicas still write into it (the
 * prediction log's maintenance run moves those rows too); a later release drops it. Every step
 * checks what exists, so a move cut short is resumed when the migration runs again.
 * Portable DDL: ms timestamps as bigint, the block as blob (SQLite) or bytea (PostgreSQL).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('prediction_log_blocks')
    .ifNotExists()
    .addColumn('id', autoIncrementType(db), autoIncrementPk(db))
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('first_seq', 'bigint', (c) => c.notNull())
    .addColumn('row_count', 'integer', (c) => c.notNull())
    .addColumn('first_at', 'bigint', (c) => c.notNull())
    .addColumn('last_at', 'bigint', (c) => c.notNull())
    .addColumn('data', isSqlite(db) ? 'blob' : 'bytea', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('prediction_log_blocks_seq_idx').ifNotExists().unique().on('prediction_log_blocks').column('first_seq').execute();
  await db.schema.createIndex('prediction_log_blocks_model_idx').ifNotExists().on('prediction_log_blocks').columns(['model', 'version', 'first_seq']).execute();
  await db.schema.createIndex('prediction_log_blocks_at_idx').ifNotExists().on('prediction_log_blocks').column('last_at').execute();
  await db.schema
    .createTable('prediction_log_sequence')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('next_seq', 'bigint', (c) => c.notNull())
    .execute();
  const seq = db as Kysely<{ prediction_log_sequence: { id: number; next_seq: number } }>;
  await seq.insertInto('prediction_log_sequence').values({ id: 1, next_seq: 1 }).onConflict((oc) => oc.column('id').doNothing()).execute();

  await foldLegacyRows(db, true);
}
