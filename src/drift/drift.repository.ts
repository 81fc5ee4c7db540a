/**
 * SQL of the drift feature: the prediction log and the stored drift reports. Every function
 * takes a Kysely instance (or a transaction); rows are mapped to domain objects by the services.
 */
import { sql, type Expression, type ExpressionBuilder, type Generated, type Insertable, type Kysely, type Selectable, type SqlBool } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { EncodedBlock } from './log-block.ts';

declare module '../store/schema.ts' {
  interface Database {
    prediction_log: LegacyPredictionLogTable;
    prediction_log_blocks: PredictionLogBlockTable;
    prediction_log_sequence: PredictionLogSequenceTable;
    prediction_log_schemas: PredictionLogSchemaTable;
    drift_reports: DriftReportTable;
    drift_claims: DriftClaimTable;
  }
}

/**
 * The prediction log of versions before migration 008: one row per predicted row. Kept (empty) for
 * the old version's replicas during a rolling upgrade; rows found in it are folded into blocks.
 */
export interface LegacyPredictionLogTable {
  id: Generated<number>;
  at: number;
  model: string;
  version: string;
  request_id: string | null;
  kind: string;
  latency_ms: number;
  /** base64 of the input row's little-endian values. */
  inputs: string;
  /** JSON object: the answer's fields for this row. */
  output: string;
}

/** The prediction log: a block of rows per (model, version) per flush (format in `log-block.ts`). */
export interface PredictionLogBlockTable {
  id: Generated<number>;
  model: string;
  version: string;
  /** Sequence number (id) of the block's first row; its rows are `first_seq` to `first_seq + row_count - 1`. */
  first_seq: number;
  row_count: number;
  /** Earliest and latest row time, ms. */
  first_at: number;
  last_at: number;
  data: Uint8Array;
}

/** The next row's sequence number: one row (id 1), so numbers are never given twice, even once retention deleted every block. */
export interface PredictionLogSequenceTable {
  id: number;
  next_seq: number;
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

/** A block's store row. */
export type PredictionLogBlockRow = Selectable<PredictionLogBlockTable>;
/** A block's store row without its data. */
export type BlockMeta = Omit<PredictionLogBlockRow, 'data'>;
type Db = Kysely<Database>;

const META = ['id', 'model', 'version', 'first_seq', 'row_count', 'first_at', 'last_at'] as const;

/** Numbers as numbers (PostgreSQL's bigint arrives as text). */
function meta<T extends BlockMeta>(row: T): T {
  return { ...row, id: Number(row.id), first_seq: Number(row.first_seq), row_count: Number(row.row_count), first_at: Number(row.first_at), last_at: Number(row.last_at) };
}

/**
 * Appends blocks in one transaction, their rows numbered on from the last row numbered: a write
 * refused stores nothing, so writing it again stores no row twice. The numbers come from the
 * sequence row, updated first: SQLite's write lock (which transactions here take when they begin)
 * or PostgreSQL's lock on that row makes writers in other processes or replicas wait for the
 * commit, so no two number rows alike. `firstSeq` numbers the rows from there instead (rows moved
 * from the table before blocks keep their ids), moving the sequence past them. Resolves with each
 * block's first sequence number.
 */
export async function insertBlocks(db: Db, blocks: readonly EncodedBlock[], firstSeq?: number): Promise<number[]> {
  if (blocks.length === 0) return [];
  let rows = 0;
  for (const b of blocks) rows += b.rows;
  const write = async (trx: Db): Promise<number[]> => {
    let next: number;
    if (firstSeq === undefined) {
      const r = await trx.updateTable('prediction_log_sequence').set((eb) => ({ next_seq: eb('next_seq', '+', rows) })).where('id', '=', 1).returning('next_seq').executeTakeFirstOrThrow();
      next = Number(r.next_seq) - rows;
    } else {
      next = firstSeq;
      const end = firstSeq + rows;
      await trx
        .updateTable('prediction_log_sequence')
        .set((eb) => ({ next_seq: eb.case().when('next_seq', '<', end).then(end).else(eb.ref('next_seq')).end() }))
        .where('id', '=', 1)
        .execute();
    }
    const seqs: number[] = [];
    for (const b of blocks) {
      seqs.push(next);
      await trx
        .insertInto('prediction_log_blocks')
        .values({ model: b.model, version: b.version, first_seq: next, row_count: b.rows, first_at: b.firstAt, last_at: b.lastAt, data: bytesParameter(b.data) })
        .execute();
      next += b.rows;
    }
    return seqs;
  };
  return db.isTransaction ? write(db) : db.transaction().execute(write);
}

/** Bytes as the drivers take them (node-postgres writes a Buffer as bytea), without a copy. */
function bytesParameter(data: Uint8Array): Uint8Array {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
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
  /** Rows after this sequence number (page token). */
  readonly afterId?: number;
}

/**
 * Blocks that may hold rows of the filter, in sequence order, at most `limit`: those of the
 * model and version whose time range meets [since, until), from the one holding row `afterId`
 * on. Their rows still need the filter applied one by one.
 */
export async function listBlocks(db: Db, filter: PredictionFilter, limit: number): Promise<PredictionLogBlockRow[]> {
  let q = db.selectFrom('prediction_log_blocks').selectAll();
  if (filter.model !== undefined) q = q.where('model', '=', filter.model);
  if (filter.version !== undefined) q = q.where('version', '=', filter.version);
  if (filter.since !== undefined) q = q.where('last_at', '>=', filter.since);
  if (filter.until !== undefined) q = q.where('first_at', '<', filter.until);
  if (filter.afterId !== undefined) {
    // The blocks after row `afterId`, and the block holding it when it holds later rows too (two
    // index reads; the caller skips that block's rows up to `afterId`).
    const edge = await db.selectFrom('prediction_log_blocks').select(['first_seq', 'row_count']).where('first_seq', '<=', filter.afterId).orderBy('first_seq', 'desc').limit(1).executeTakeFirst();
    const from = edge !== undefined && Number(edge.first_seq) + Number(edge.row_count) - 1 > filter.afterId ? Number(edge.first_seq) : filter.afterId + 1;
    q = q.where('first_seq', '>=', from);
  }
  return (await q.orderBy('first_seq', 'asc').limit(limit).execute()).map(meta);
}

/**
 * A model version's blocks newest first, at most `limit`, before sequence number `beforeSeq` when
 * given, with rows at or after `since` (ms) when given: what a drift window reads until it holds
 * enough rows.
 */
export async function latestBlocks(db: Db, model: string, version: string, limit: number, options: { beforeSeq?: number; since?: number } = {}): Promise<PredictionLogBlockRow[]> {
  let q = db.selectFrom('prediction_log_blocks').selectAll().where('model', '=', model).where('version', '=', version);
  if (options.since !== undefined) q = q.where('last_at', '>=', options.since);
  if (options.beforeSeq !== undefined) q = q.where('first_seq', '<', options.beforeSeq);
  return (await q.orderBy('first_seq', 'desc').limit(limit).execute()).map(meta);
}

/** The version of a model's most recently logged row, if any. */
export async function latestLoggedVersion(db: Db, model: string): Promise<string | undefined> {
  const row = await db.selectFrom('prediction_log_blocks').select('version').where('model', '=', model).orderBy('first_seq', 'desc').limit(1).executeTakeFirst();
  return row?.version;
}

/** Models with logged rows since `since` (ms), with the version of their latest row. */
export async function recentlyLoggedModels(db: Db, since: number): Promise<{ model: string; version: string }[]> {
  const rows = await db
    .selectFrom('prediction_log_blocks')
    .select(['model', (eb) => eb.fn.max('first_seq').as('last')])
    .where('last_at', '>=', since)
    .groupBy('model')
    .execute();
  const out: { model: string; version: string }[] = [];
  for (const r of rows) {
    const v = await db.selectFrom('prediction_log_blocks').select('version').where('first_seq', '=', Number(r.last)).executeTakeFirst();
    if (v !== undefined) out.push({ model: r.model, version: v.version });
  }
  return out;
}

/** A block's store row by id. */
export async function findBlock(db: Db, id: number): Promise<PredictionLogBlockRow | undefined> {
  const row = await db.selectFrom('prediction_log_blocks').selectAll().where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : meta(row);
}

/**
 * Blocks deleted per statement by retention. On SQLite a statement runs on the event loop, and
 * one DELETE of the blocks a busy server logs in a retention period (millions of rows) held it
 * for 100-350 ms; 16 blocks at a time hold it a few milliseconds, with requests served between.
 */
const DELETE_CHUNK = 16;

/** Deletes the blocks `pick` selects, `DELETE_CHUNK` at a time, yielding to the event loop between statements. */
async function deleteInChunks(db: Db, pick: (eb: ExpressionBuilder<Database, 'prediction_log_blocks'>) => Expression<SqlBool>): Promise<void> {
  for (;;) {
    const ids = (await db.selectFrom('prediction_log_blocks').select('id').where(pick).limit(DELETE_CHUNK).execute()).map((r) => r.id);
    if (ids.length === 0) return;
    await db.deleteFrom('prediction_log_blocks').where('id', 'in', ids).execute();
    if (ids.length < DELETE_CHUNK) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Deletes every block whose rows are all before `before` (ms). */
export async function deleteBlocksBefore(db: Db, before: number): Promise<void> {
  await deleteInChunks(db, (eb) => eb('last_at', '<', before));
}

/** The blocks that hold rows before `before` (ms) and after it: the edge of retention by age. */
export async function blocksAcross(db: Db, before: number): Promise<PredictionLogBlockRow[]> {
  return (await db.selectFrom('prediction_log_blocks').selectAll().where('first_at', '<', before).where('last_at', '>=', before).orderBy('first_seq').execute()).map(meta);
}

/** Deletes every block whose rows all have sequence numbers below `seq`. */
export async function deleteBlocksBelow(db: Db, seq: number): Promise<void> {
  await deleteInChunks(db, (eb) => eb(eb('first_seq', '+', eb.ref('row_count')), '<=', seq));
}

/**
 * Replaces a block by the rows it keeps (`data`, its last `rows` rows): resolves false when the
 * block changed meanwhile.
 */
export async function trimBlock(db: Db, block: BlockMeta, rows: number, firstAt: number, data: Uint8Array): Promise<boolean> {
  const r = await db
    .updateTable('prediction_log_blocks')
    .set({ first_seq: block.first_seq + block.row_count - rows, row_count: rows, first_at: firstAt, data: bytesParameter(data) })
    .where('id', '=', block.id)
    .where('first_seq', '=', block.first_seq)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * The block holding the `keep`-th newest row: the edge of retention by row count, with how many
 * of its rows are kept (`undefined` when the log holds at most `keep` rows).
 */
export async function countEdge(db: Db, keep: number): Promise<{ block: BlockMeta; kept: number } | undefined> {
  const newest = db
    .selectFrom('prediction_log_blocks')
    .select([...META, sql<number>`sum(row_count) over (order by first_seq desc)`.as('total')])
    .as('newest');
  const edge = await db.selectFrom(newest).selectAll().where('total', '>', keep).orderBy('first_seq', 'desc').limit(1).executeTakeFirst();
  if (edge === undefined) return undefined;
  const { total, ...block } = edge;
  const b = meta(block);
  return { block: b, kept: b.row_count - (Number(total) - keep) };
}

/** The oldest rows of the pre-008 table, at most `limit` (folded into blocks). */
export async function legacyRows(db: Db, limit: number): Promise<Selectable<LegacyPredictionLogTable>[]> {
  return db.selectFrom('prediction_log').selectAll().orderBy('id', 'asc').limit(limit).execute();
}

/** Deletes the pre-008 table's rows up to id `last`. */
export async function deleteLegacyRows(db: Db, last: number): Promise<void> {
  await db.deleteFrom('prediction_log').where('id', '<=', last).execute();
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

/** The latest period of `task` claimed before `slot`, if one is still kept. */
export async function previousClaim(db: Db, task: string, slot: number): Promise<number | undefined> {
  const r = await db.selectFrom('drift_claims').select('slot').where('task', '=', task).where('slot', '<', slot).orderBy('slot', 'desc').limit(1).executeTakeFirst();
  return r === undefined ? undefined : Number(r.slot);
}

/** A model's latest stored report, if any. */
export async function latestReport(db: Db, model: string): Promise<Selectable<DriftReportTable> | undefined> {
  return db.selectFrom('drift_reports').selectAll().where('model', '=', model).orderBy('id', 'desc').limit(1).executeTakeFirst();
}
