import type { Kysely } from 'kysely';
import { autoIncrementPk, autoIncrementType } from './dialect.ts';

/**
 * Model registry: registered models, their versions, aliases, traffic splits, the audit history
 * of stage/alias/traffic changes, and the single-row generation counter serving polls.
 * Portable DDL only (SQLite and PostgreSQL): ms timestamps as bigint, JSON as text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('registered_models')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('description', 'text')
    .addColumn('tags', 'text', (c) => c.notNull())
    // Highest version number ever handed out: numbers are never reused, even after deletes.
    .addColumn('last_version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('model_versions')
    .addColumn('model', 'text', (c) => c.notNull().references('registered_models.name').onDelete('cascade'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('artifact_key', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('metrics', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text')
    .addColumn('dataset_name', 'text')
    .addColumn('dataset_version', 'integer')
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('has_reference', 'integer', (c) => c.notNull().defaultTo(0))
    // JSON {rewrites, warnings} from registration, shown with the version.
    .addColumn('notes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('model_versions_pk', ['model', 'version'])
    .execute();
  await db.schema.createIndex('model_versions_stage_idx').on('model_versions').columns(['model', 'stage', 'version']).execute();
  await db.schema.createIndex('model_versions_run_idx').on('model_versions').column('run_id').execute();

  await db.schema
    .createTable('model_aliases')
    .addColumn('model', 'text', (c) => c.notNull().references('registered_models.name').onDelete('cascade'))
    .addColumn('alias', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('model_aliases_pk', ['model', 'alias'])
    .execute();
  await db.schema.createIndex('model_aliases_version_idx').on('model_aliases').columns(['model', 'version']).execute();

  await db.schema
    .createTable('model_history')
    .addColumn('id', autoIncrementType(db), autoIncrementPk(db))
    .addColumn('model', 'text', (c) => c.notNull().references('registered_models.name').onDelete('cascade'))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('version', 'integer')
    // The alias concerned, for alias events.
    .addColumn('alias', 'text')
    .addColumn('from_value', 'text')
    .addColumn('to_value', 'text')
    .execute();
  await db.schema.createIndex('model_history_model_idx').on('model_history').columns(['model', 'id']).execute();

  await db.schema
    .createTable('model_traffic')
    .addColumn('model', 'text', (c) => c.primaryKey().references('registered_models.name').onDelete('cascade'))
    .addColumn('split', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('registry_generation')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .execute();
  await (db as Kysely<{ registry_generation: { id: number; value: number } }>)
    .insertInto('registry_generation')
    .values({ id: 1, value: 0 })
    .execute();
}
