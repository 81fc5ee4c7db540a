import { sql, type Kysely } from 'kysely';
import { autoIncrementPk, autoIncrementType } from './dialect.ts';

/**
 * Experiment tracking, after MLflow's tables: experiments (integer ids, rendered as strings;
 * experiment 0 is "Default"), runs, params, the append-only metric history, the latest value of
 * each metric, run and experiment tags, and the model versions a run produced.
 * Portable DDL only (SQLite and PostgreSQL): ms timestamps as bigint, booleans as 0/1 integers.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('experiments')
    .addColumn('experiment_id', autoIncrementType(db), autoIncrementPk(db))
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('artifact_location', 'text', (c) => c.notNull())
    .addColumn('lifecycle_stage', 'text', (c) => c.notNull())
    .addColumn('creation_time', 'bigint', (c) => c.notNull())
    .addColumn('last_update_time', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('experiment_tags')
    .addColumn('experiment_id', 'bigint', (c) => c.notNull().references('experiments.experiment_id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('experiment_tags_pk', ['experiment_id', 'key'])
    .execute();

  await db.schema
    .createTable('runs')
    .addColumn('run_id', 'text', (c) => c.primaryKey())
    .addColumn('experiment_id', 'bigint', (c) => c.notNull().references('experiments.experiment_id'))
    .addColumn('run_name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('start_time', 'bigint')
    .addColumn('end_time', 'bigint')
    .addColumn('lifecycle_stage', 'text', (c) => c.notNull())
    .addColumn('artifact_uri', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('dataset_name', 'text')
    .addColumn('dataset_version', 'integer')
    .addColumn('dataset_digest', 'text')
    .addColumn('deleted_time', 'bigint')
    .execute();
  await db.schema.createIndex('runs_experiment_start_idx').on('runs').columns(['experiment_id', 'start_time']).execute();

  await db.schema
    .createTable('params')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.run_id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('params_pk', ['run_id', 'key'])
    .execute();

  await db.schema
    .createTable('tags')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.run_id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('tags_pk', ['run_id', 'key'])
    .execute();

  // Param and tag values may be several kilobytes (MLflow allows 6000 and 8000 characters), more
  // than a PostgreSQL btree entry holds, so the (key, value) search index covers a value prefix;
  // equality searches repeat the prefix predicate so the planner can use it.
  for (const table of ['params', 'tags'] as const) {
    await db.schema
      .createIndex(`${table}_key_value_idx`)
      .on(table)
      .expression(sql`key, substr(value, 1, 200)`)
      .execute();
  }

  await db.schema
    .createTable('metrics')
    .addColumn('id', autoIncrementType(db), autoIncrementPk(db))
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.run_id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'double precision', (c) => c.notNull())
    .addColumn('timestamp', 'bigint', (c) => c.notNull())
    .addColumn('step', 'bigint', (c) => c.notNull())
    .addColumn('is_nan', 'integer', (c) => c.notNull())
    .execute();
  // MLflow's metric identity: logging the very same point twice stores it once. Also serves the
  // history read (run, key) in step order.
  await db.schema
    .createIndex('metrics_point_idx')
    .unique()
    .on('metrics')
    .columns(['run_id', 'key', 'step', 'timestamp', 'value', 'is_nan'])
    .execute();

  await db.schema
    .createTable('latest_metrics')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.run_id').onDelete('cascade'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'double precision', (c) => c.notNull())
    .addColumn('timestamp', 'bigint', (c) => c.notNull())
    .addColumn('step', 'bigint', (c) => c.notNull())
    .addColumn('is_nan', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('latest_metrics_pk', ['run_id', 'key'])
    .execute();
  await db.schema.createIndex('latest_metrics_key_value_idx').on('latest_metrics').columns(['key', 'value']).execute();

  await db.schema
    .createTable('run_outputs')
    .addColumn('run_id', 'text', (c) => c.notNull().references('runs.run_id').onDelete('cascade'))
    .addColumn('model_name', 'text', (c) => c.notNull())
    .addColumn('model_version', 'integer', (c) => c.notNull())
    .addColumn('created_time', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('run_outputs_pk', ['run_id', 'model_name', 'model_version'])
    .execute();
  await db.schema.createIndex('run_outputs_model_idx').on('run_outputs').columns(['model_name', 'model_version']).execute();

  // Experiment 0 is MLflow's "Default". An explicit id leaves the sequence (PostgreSQL) and
  // AUTOINCREMENT (SQLite) to hand out 1 next.
  const now = Date.now();
  await sql`insert into experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
            values (0, 'Default', 'mlflow-artifacts:/runs', 'active', ${now}, ${now})`.execute(db);
}
