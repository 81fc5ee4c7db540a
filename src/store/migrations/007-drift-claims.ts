import type { Kysely } from 'kysely';

/**
 * Periodic drift work that every API process schedules but one process should do per period
 * (the drift check that stores reports, the prediction log's retention): a process claims the
 * period by inserting (task, slot), the slot being the period's number since the epoch; the
 * primary key lets exactly one insert win, on PostgreSQL across replicas and on SQLite across the
 * processes of `serve --workers N`. Portable DDL: ms timestamps as bigint.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('drift_claims')
    .addColumn('task', 'text', (c) => c.notNull())
    .addColumn('slot', 'bigint', (c) => c.notNull())
    .addColumn('claimed_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('drift_claims_pk', ['task', 'slot'])
    .execute();
}
