import type { Kysely } from 'kysely';

/**
 * Training jobs and their log lines. Both queue backends (embedded and BullMQ) record every job
 * here, so status, listings and logs come from the store whichever backend ran the job, and
 * survive restarts. Portable DDL: ms timestamps as bigint, booleans as 0/1 integers, JSON as text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('progress_percent', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('stage', 'text')
    .addColumn('message', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(2))
    .addColumn('error', 'text')
    .addColumn('result', 'text')
    .addColumn('run_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('finished_at', 'bigint')
    .addColumn('heartbeat_at', 'bigint')
    .addColumn('worker_id', 'text')
    .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // Claims scan queued rows oldest first; listings filter by status, newest first.
  await db.schema.createIndex('jobs_status_created_idx').on('jobs').columns(['status', 'created_at']).execute();
  await db.schema.createIndex('jobs_created_idx').on('jobs').column('created_at').execute();

  await db.schema
    .createTable('job_logs')
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('line', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('job_logs_pk', ['job_id', 'seq'])
    .execute();
}
