/**
 * SQL of the drift feature: the prediction log and the stored drift reports. Every function
 * takes a Kysely instance (or a transaction); rows are mapped to domain objects by the services.
 */
import { CompiledQuery, type Generated, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { Database } from '../store/schema.ts';

declare module '../store/schema.ts' {
  interface Database {
    prediction_log: PredictionLogTable;
    prediction_log_schemas: PredictionLogSchemaTable;
    drift_reports: DriftReportTable;
    drift_claims: DriftClaimTable;
  }
}

export interface PredictionLogTable {
  id: Generated<number>;
  at: number;
  model: string;
  version: string;
  request_id: string | null;
  kind: string;
  latency_ms: number;
  /** base64 of the input row's little-endian values (see {@link PredictionLogSchemaTable}). */
  inputs: string;
  /** JSON object: the answer's fields for this row. */
  output: string;
}

/** What gives a model version's logged input rows meaning. */
export interface PredictionLogSchemaTable {
  model: string;
  version: string;
  element_type: 'float32' | 'float64';
  /** JSON array of feature names in input order. */
  features: string;
  /** JSON array: per feature `null` (numeric) or its category labels (index = code). */
  categories: string;
}

export interface DriftReportTable {
  id: Generated<number>;
  model: string;
  version: string;
  at: number;
  share_drifted: number;
  dataset_drift: number;
  report: string;
}

/** A period of a periodic task, claimed by the process that does it (see migration 007). */
export interface DriftClaimTable {
  task: string;
  /** The period's number since the epoch (time / period). */
  slot: number;
  claimed_at: number;
}

export type PredictionLogRow = Selectable<PredictionLogTable>;
export type NewPredictionLogRow = Insertable<PredictionLogTable>;
type Db = Kysely<Database>;

/**
 * Most rows per INSERT statement (8 parameters a row stays below SQLite's and PostgreSQL's
 * limits). A write is cut into statements of powers of two rows up to this, so only eleven
 * statement texts exist and SQLite's statement cache holds them all: a statement of any other
 * size (the remainder of a flush) was prepared anew on every flush.
 */
const INSERT_CHUNK = 1024;
/** The prediction log's columns in the order of {@link insertPredictionValues}. */
export const LOG_COLUMNS = ['at', 'model', 'version', 'request_id', 'kind', 'latency_ms', 'inputs', 'output'] as const;
/** INSERT text by dialect and row count (a power of two). */
const insertText = new Map<string, string>();

function insertSql(dialect: 'sqlite' | 'postgres', rows: number): string {
  const key = `${dialect}:${rows}`;
  let text = insertText.get(key);
  if (text === undefined) {
    const w = LOG_COLUMNS.length;
    const tuples: string[] = [];
    for (let r = 0; r < rows; r++) {
      const p = LOG_COLUMNS.map((_, c) => (dialect === 'postgres' ? `$${r * w + c + 1}` : '?'));
      tuples.push(`(${p.join(',')})`);
    }
    text = `insert into prediction_log (${LOG_COLUMNS.join(',')}) values ${tuples.join(',')}`;
    insertText.set(key, text);
  }
  return text;
}

/**
 * Appends rows in multi-row INSERTs. The statement text is built once per size and the
 * parameters passed flat: the query builder would build and compile a node per value, which cost
 * more than the write itself at thousands of logged rows a second.
 */
export async function insertPredictions(db: Db, rows: readonly NewPredictionLogRow[], dialect: 'sqlite' | 'postgres'): Promise<void> {
  const values: unknown[] = [];
  for (const r of rows) values.push(r.at, r.model, r.version, r.request_id ?? null, r.kind, r.latency_ms, r.inputs, r.output);
  await insertPredictionValues(db, values, dialect);
}

/**
 * Appends rows given as one flat list of values, each row's {@link LOG_COLUMNS} in order (`at,
 * model, version, request_id, kind, latency_ms, inputs, output`): what the prediction log writes,
 * with no object per row.
 */
export async function insertPredictionValues(db: Db, values: readonly unknown[], dialect: 'sqlite' | 'postgres'): Promise<void> {
  const w = LOG_COLUMNS.length;
  const rows = values.length / w;
  const statements: CompiledQuery[] = [];
  for (let i = 0; i < rows; ) {
    let n = INSERT_CHUNK;
    while (n > rows - i) n >>= 1;
    statements.push(CompiledQuery.raw(insertSql(dialect, n), values.slice(i * w, (i + n) * w)));
    i += n;
  }
  // One transaction: a failed write leaves no rows behind, so writing it again writes none twice.
  if (statements.length === 1 || db.isTransaction) {
    for (const q of statements) await db.executeQuery(q);
    return;
  }
  await db.transaction().execute(async (trx) => {
    for (const q of statements) await trx.executeQuery(q);
  });
}

/** Records (or replaces) the schema of a model version's logged rows. */
export async function upsertSchema(db: Db, row: PredictionLogSchemaTable): Promise<void> {
  await db
    .insertInto('prediction_log_schemas')
    .values(row)
    .onConflict((oc) => oc.columns(['model', 'version']).doUpdateSet({ element_type: row.element_type, features: row.features, categories: row.categories }))
    .execute();
}

export async function findSchema(db: Db, model: string, version: string): Promise<PredictionLogSchemaTable | undefined> {
  return db.selectFrom('prediction_log_schemas').selectAll().where('model', '=', model).where('version', '=', version).executeTakeFirst();
}

export interface PredictionFilter {
  readonly model?: string;
  readonly version?: string;
  /** Inclusive lower bound, ms. */
  readonly since?: number;
  /** Exclusive upper bound, ms. */
  readonly until?: number;
  /** Rows after this id (page token). */
  readonly afterId?: number;
}

/** Logged rows in id (time) order, at most `limit`. */
export async function listPredictions(db: Db, filter: PredictionFilter, limit: number): Promise<PredictionLogRow[]> {
  let q = db.selectFrom('prediction_log').selectAll();
  if (filter.model !== undefined) q = q.where('model', '=', filter.model);
  if (filter.version !== undefined) q = q.where('version', '=', filter.version);
  if (filter.since !== undefined) q = q.where('at', '>=', filter.since);
  if (filter.until !== undefined) q = q.where('at', '<', filter.until);
  if (filter.afterId !== undefined) q = q.where('id', '>', filter.afterId);
  return q.orderBy('id', 'asc').limit(limit).execute();
}

/** The version of a model's most recently logged row, if any. */
export async function latestLoggedVersion(db: Db, model: string): Promise<string | undefined> {
  const row = await db.selectFrom('prediction_log').select('version').where('model', '=', model).orderBy('id', 'desc').limit(1).executeTakeFirst();
  return row?.version;
}

/** Models with logged rows since `since` (ms), with the version of their latest row. */
export async function recentlyLoggedModels(db: Db, since: number): Promise<{ model: string; version: string }[]> {
  const rows = await db
    .selectFrom('prediction_log')
    .select(['model', (eb) => eb.fn.max('id').as('last')])
    .where('at', '>=', since)
    .groupBy('model')
    .execute();
  const out: { model: string; version: string }[] = [];
  for (const r of rows) {
    const v = await db.selectFrom('prediction_log').select('version').where('id', '=', Number(r.last)).executeTakeFirst();
    if (v !== undefined) out.push({ model: r.model, version: v.version });
  }
  return out;
}

/**
 * The inputs of a model version's logged rows, newest first: the latest `limit` rows, or (with
 * `since`) every row from then on up to `limit`.
 */
export async function windowInputs(db: Db, model: string, version: string, limit: number, since?: number): Promise<string[]> {
  let q = db.selectFrom('prediction_log').select('inputs').where('model', '=', model).where('version', '=', version);
  if (since !== undefined) q = q.where('at', '>=', since);
  const rows = await q.orderBy('id', 'desc').limit(limit).execute();
  return rows.map((r) => r.inputs);
}

/** Deletes rows older than `before` (ms); resolves with how many. */
export async function deleteOlderThan(db: Db, before: number): Promise<number> {
  const r = await db.deleteFrom('prediction_log').where('at', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Deletes all but the newest `keep` rows; resolves with how many were deleted. */
export async function keepNewest(db: Db, keep: number): Promise<number> {
  const edge = await db.selectFrom('prediction_log').select('id').orderBy('id', 'desc').limit(1).offset(keep).executeTakeFirst();
  if (edge === undefined) return 0;
  const r = await db.deleteFrom('prediction_log').where('id', '<=', edge.id).executeTakeFirst();
  return Number(r.numDeletedRows);
}

export async function insertReport(db: Db, row: Insertable<DriftReportTable>): Promise<void> {
  await db.insertInto('drift_reports').values(row).execute();
}

/** A model's stored reports, newest first, before id `beforeId` when given. */
export async function listReports(db: Db, model: string, limit: number, beforeId?: number): Promise<Selectable<DriftReportTable>[]> {
  let q = db.selectFrom('drift_reports').selectAll().where('model', '=', model);
  if (beforeId !== undefined) q = q.where('id', '<', beforeId);
  return q.orderBy('id', 'desc').limit(limit).execute();
}

/** Claims kept per task (older ones are deleted by the claim that follows them). */
const CLAIMS_KEPT = 16;

/**
 * Claims period `slot` of `task` for this process: true for exactly one caller per (task, slot),
 * whichever process or replica it runs in; false when another one claimed it first.
 */
export async function claimSlot(db: Db, task: string, slot: number, now: number): Promise<boolean> {
  const r = await db
    .insertInto('drift_claims')
    .values({ task, slot, claimed_at: now })
    .onConflict((oc) => oc.columns(['task', 'slot']).doNothing())
    .executeTakeFirst();
  if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return false;
  await db.deleteFrom('drift_claims').where('task', '=', task).where('slot', '<=', slot - CLAIMS_KEPT).execute();
  return true;
}

/** A model's latest stored report, if any. */
export async function latestReport(db: Db, model: string): Promise<Selectable<DriftReportTable> | undefined> {
  return db.selectFrom('drift_reports').selectAll().where('model', '=', model).orderBy('id', 'desc').limit(1).executeTakeFirst();
}
