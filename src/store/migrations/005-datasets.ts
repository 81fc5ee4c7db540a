import type { Kysely } from 'kysely';

/**
 * Dataset versions. A version row is inserted as `uploading` before its bytes stream into the
 * artifact store (so concurrent uploads to one name get distinct numbers without holding a
 * transaction open for the whole upload) and becomes `ready` with its hash, size, row count and
 * schema once the bytes are stored and parsed; a failed upload deletes its row again.
 * Portable DDL only (SQLite and PostgreSQL): ms timestamps as bigint, JSON as text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('dataset_versions')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('artifact_key', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text')
    .addColumn('bytes', 'bigint')
    .addColumn('row_count', 'integer')
    .addColumn('column_count', 'integer')
    .addColumn('delimiter', 'text')
    // JSON DatasetSchema (column names, types, statistics).
    .addColumn('schema', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('dataset_versions_pk', ['name', 'version'])
    .execute();
}
