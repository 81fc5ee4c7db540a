import type { Kysely } from 'kysely';
import { autoIncrementPk, autoIncrementType } from './dialect.ts';

/**
 * Drift monitoring: the prediction log (one row per predicted row, appended in batches by the
 * prediction log's flusher, deleted from the old end by retention) and the stored drift reports
 * of the periodic check. Ids grow with time, so "the latest N rows of a model" and retention by
 * row count read the `(model, version, id)` index and the primary key; time windows and retention by age
 * read `(at)`. Inputs are stored as the model's input row itself (base64 of its little-endian
 * float32 or float64 values): writing them costs a copy instead of formatting every number as text,
 * and reading a 10,000-row drift window is a decode instead of a JSON parse. The feature names,
 * category labels and element type that give them meaning are kept once per model version in
 * `prediction_log_schemas`. Portable DDL: ms timestamps as bigint, JSON as text.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('prediction_log')
    .addColumn('id', autoIncrementType(db), autoIncrementPk(db))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    // single | batch | invocations | kserve | explain
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('latency_ms', 'double precision', (c) => c.notNull())
    // base64 of the input row's values (element type and names in prediction_log_schemas).
    .addColumn('inputs', 'text', (c) => c.notNull())
    // JSON object: the answer's fields for this row (prediction, probability, confidence).
    .addColumn('output', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('prediction_log_model_idx').on('prediction_log').columns(['model', 'version', 'id']).execute();
  await db.schema.createIndex('prediction_log_at_idx').on('prediction_log').column('at').execute();

  await db.schema
    .createTable('prediction_log_schemas')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    // float32 | float64
    .addColumn('element_type', 'text', (c) => c.notNull())
    // JSON array of feature names in input order.
    .addColumn('features', 'text', (c) => c.notNull())
    // JSON array, per feature: null (numeric) or its category labels (index = code).
    .addColumn('categories', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('prediction_log_schemas_pk', ['model', 'version'])
    .execute();

  await db.schema
    .createTable('drift_reports')
    .addColumn('id', autoIncrementType(db), autoIncrementPk(db))
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('share_drifted', 'double precision', (c) => c.notNull())
    .addColumn('dataset_drift', 'integer', (c) => c.notNull())
    // The whole report as GET /drift/{model} answered it.
    .addColumn('report', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('drift_reports_model_idx').on('drift_reports').columns(['model', 'id']).execute();
}
