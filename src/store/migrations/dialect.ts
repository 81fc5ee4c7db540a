import { SqliteAdapter, sql, type ColumnDefinitionBuilder, type Kysely, type RawBuilder } from 'kysely';

/** True when the migration runs against SQLite (its DDL differs in a few places). */
export function isSqlite(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof SqliteAdapter;
}

/** Column type and modifiers for an auto-incrementing integer primary key, per dialect. */
export function autoIncrementType(db: Kysely<unknown>): RawBuilder<unknown> {
  return isSqlite(db) ? sql`integer` : sql`bigserial`;
}

export function autoIncrementPk(db: Kysely<unknown>) {
  return (c: ColumnDefinitionBuilder): ColumnDefinitionBuilder =>
    isSqlite(db) ? c.primaryKey().autoIncrement() : c.primaryKey();
}
