/**
 * SQL of the job system. Every function takes a Kysely instance or a transaction; rows come back
 * as stored and the service maps them to domain objects. State changes of a running job are
 * compare-and-set updates guarded by `status` and `worker_id`, so a worker that lost its job (it
 * was recovered elsewhere) can never overwrite the newer state.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from '../store/database.ts';
import type { Database } from '../store/schema.ts';
import type { JobStatus } from './job.types.ts';

declare module '../store/schema.ts' {
  interface Database {
    jobs: JobTable;
    job_logs: JobLogTable;
  }
}

export interface JobTable {
  id: string;
  kind: string;
  /** JSON of the job payload. */
  payload: string;
  status: string;
  progress_percent: number;
  stage: string | null;
  message: string | null;
  attempts: number;
  max_attempts: number;
  error: string | null;
  /** JSON of the handler's result. */
  result: string | null;
  run_id: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  heartbeat_at: number | null;
  worker_id: string | null;
  cancel_requested: number;
}

export interface JobLogTable {
  job_id: string;
  seq: number;
  at: number;
  line: string;
}

export type JobRow = Selectable<JobTable>;
type Db = Kysely<Database>;

/** Inserts a new queued job. */
export async function insertJob(db: Db, job: { id: string; kind: string; payload: string; maxAttempts: number; now: number }): Promise<void> {
  await db
    .insertInto('jobs')
    .values({
      id: job.id,
      kind: job.kind,
      payload: job.payload,
      status: 'queued',
      progress_percent: 0,
      stage: 'queued',
      message: null,
      attempts: 0,
      max_attempts: job.maxAttempts,
      error: null,
      result: null,
      run_id: null,
      created_at: job.now,
      started_at: null,
      finished_at: null,
      heartbeat_at: null,
      worker_id: null,
      cancel_requested: 0,
    })
    .execute();
}

export async function getJob(db: Db, id: string): Promise<JobRow | undefined> {
  return db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
}

/** One page of jobs, newest first (ties broken by id so pages are stable). */
export async function listJobs(db: Db, q: { status?: JobStatus; limit: number; offset: number }): Promise<JobRow[]> {
  let query = db.selectFrom('jobs').selectAll();
  if (q.status !== undefined) query = query.where('status', '=', q.status);
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).offset(q.offset).execute();
}

export async function countByStatus(db: Db): Promise<Record<string, number>> {
  const rows = await db.selectFrom('jobs').select(['status', db.fn.countAll<number>().as('n')]).groupBy('status').execute();
  const out: Record<string, number> = {};
  for (const r of rows) out[r.status] = Number(r.n);
  return out;
}

/**
 * Claims the oldest queued job of one of `kinds` for `workerId`: status becomes running, attempts
 * goes up by one. PostgreSQL skips rows other transactions hold (`FOR UPDATE SKIP LOCKED`);
 * SQLite serialises writers, so a compare-and-set on `status='queued'` is enough (a lost race
 * simply tries the next candidate).
 */
export async function claimNextQueued(db: Db, dialect: Dialect, kinds: readonly string[], workerId: string, now: number): Promise<JobRow | undefined> {
  if (kinds.length === 0) return undefined;
  if (dialect === 'postgres') {
    const rows = await sql<JobRow>`
      update jobs set status = 'running', attempts = attempts + 1, started_at = coalesce(started_at, ${now}),
        heartbeat_at = ${now}, worker_id = ${workerId}, stage = 'starting', message = null
      where id = (
        select id from jobs where status = 'queued' and kind in (${sql.join(kinds)})
        order by created_at, id limit 1 for update skip locked)
      returning *`.execute(db);
    return rows.rows[0];
  }
  for (let tries = 0; tries < 5; tries++) {
    const candidate = await db
      .selectFrom('jobs')
      .select('id')
      .where('status', '=', 'queued')
      .where('kind', 'in', kinds)
      .orderBy('created_at')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    if (candidate === undefined) return undefined;
    const claimed = await claimById(db, candidate.id, ['queued'], workerId, now);
    if (claimed !== undefined) return claimed;
  }
  return undefined;
}

/** Claims one job by id when its status is one of `from` (compare-and-set). */
export async function claimById(db: Db, id: string, from: readonly JobStatus[], workerId: string, now: number): Promise<JobRow | undefined> {
  return db
    .updateTable('jobs')
    .set((eb) => ({
      status: 'running',
      attempts: eb('attempts', '+', 1),
      started_at: eb.fn.coalesce('started_at', eb.val(now)),
      heartbeat_at: now,
      worker_id: workerId,
      stage: 'starting',
      message: null,
    }))
    .where('id', '=', id)
    .where('status', 'in', from)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Heartbeat of a running job, optionally with its latest progress. Returns whether cancellation
 * was requested, or `undefined` when the job is no longer this worker's (recovered elsewhere).
 */
export async function heartbeat(
  db: Db,
  id: string,
  workerId: string,
  now: number,
  progress?: { percent: number; stage: string; message: string | null },
): Promise<{ cancelRequested: boolean } | undefined> {
  const row = await db
    .updateTable('jobs')
    .set({
      heartbeat_at: now,
      ...(progress === undefined ? {} : { progress_percent: progress.percent, stage: progress.stage, message: progress.message }),
    })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .where('worker_id', '=', workerId)
    .returning('cancel_requested')
    .executeTakeFirst();
  return row === undefined ? undefined : { cancelRequested: row.cancel_requested !== 0 };
}

/**
 * Records the tracking run of a running attempt (while `workerId` owns the job), so that whoever
 * settles the attempt if it dies can end that run. Returns false when the job was no longer this
 * worker's.
 */
export async function recordAttemptRun(db: Db, id: string, workerId: string, runId: string): Promise<boolean> {
  const res = await db
    .updateTable('jobs')
    .set({ run_id: runId })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .where('worker_id', '=', workerId)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/**
 * Ends the tracking run of an attempt that died (its thread or process gone) as FAILED, with the
 * reason as its `modelplane.error` tag; a run that already ended is left alone. Returns whether it
 * was ended here.
 */
export async function failAttemptRun(db: Db, runId: string, now: number, reason: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const res = await trx
      .updateTable('runs')
      .set({ status: 'FAILED', end_time: now })
      .where('run_id', '=', runId)
      .where('status', 'in', ['RUNNING', 'SCHEDULED'])
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return false;
    await trx
      .insertInto('tags')
      .values({ run_id: runId, key: 'modelplane.error', value: reason.slice(0, 5000) })
      .onConflict((oc) => oc.columns(['run_id', 'key']).doUpdateSet({ value: reason.slice(0, 5000) }))
      .execute();
    return true;
  });
}

/** The end state a worker (or recovery) writes for a running job. */
export interface JobSettlement {
  readonly status: JobStatus;
  readonly error?: string | null;
  readonly result?: string | null;
  readonly runId?: string | null;
  readonly progressPercent?: number;
  readonly stage?: string | null;
  readonly message?: string | null;
  /** Overrides the attempt count (an interrupted attempt is not counted). */
  readonly attempts?: number;
}

/**
 * Moves a running job to its next state, only while `workerId` still owns it. Back to `queued`
 * (a retry) clears the owner; terminal states stamp `finished_at`. Returns false when the job
 * was no longer this worker's.
 */
export async function settleRunning(db: Db, id: string, workerId: string, now: number, s: JobSettlement): Promise<boolean> {
  const terminal = s.status !== 'queued' && s.status !== 'running';
  const res = await db
    .updateTable('jobs')
    .set({
      status: s.status,
      ...(s.error === undefined ? {} : { error: s.error }),
      ...(s.result === undefined ? {} : { result: s.result }),
      ...(s.runId === undefined ? {} : { run_id: s.runId }),
      ...(s.progressPercent === undefined ? {} : { progress_percent: s.progressPercent }),
      ...(s.stage === undefined ? {} : { stage: s.stage }),
      ...(s.message === undefined ? {} : { message: s.message }),
      ...(s.attempts === undefined ? {} : { attempts: s.attempts }),
      ...(terminal ? { finished_at: now } : { worker_id: null, heartbeat_at: null }),
      ...(s.status === 'queued' ? { cancel_requested: 0 } : {}),
    })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .where('worker_id', '=', workerId)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** Cancels a queued job at once; returns the row when it was queued. */
export async function cancelQueued(db: Db, id: string, now: number): Promise<JobRow | undefined> {
  return db
    .updateTable('jobs')
    .set({ status: 'cancelled', finished_at: now, stage: 'cancelled', message: 'cancelled before it started', cancel_requested: 1 })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .returningAll()
    .executeTakeFirst();
}

/** Flags a running job for cancellation (its worker polls the flag); returns the row when running. */
export async function requestCancelRunning(db: Db, id: string): Promise<JobRow | undefined> {
  return db.updateTable('jobs').set({ cancel_requested: 1 }).where('id', '=', id).where('status', '=', 'running').returningAll().executeTakeFirst();
}

/** Fails a queued job directly (e.g. it could not be handed to the queue backend). */
export async function failQueued(db: Db, id: string, now: number, error: string): Promise<boolean> {
  const res = await db
    .updateTable('jobs')
    .set({ status: 'failed', error, finished_at: now, stage: 'failed', message: error })
    .where('id', '=', id)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** Jobs queued before `before`, oldest first (the BullMQ sweep checks each still has its queue entry). */
export async function listQueuedBefore(db: Db, before: number): Promise<JobRow[]> {
  return db.selectFrom('jobs').selectAll().where('status', '=', 'queued').where('created_at', '<', before).orderBy('created_at').execute();
}

/** Running jobs, oldest heartbeat first (recovery looks through them). */
export async function listRunning(db: Db): Promise<JobRow[]> {
  return db.selectFrom('jobs').selectAll().where('status', '=', 'running').orderBy('heartbeat_at').execute();
}

/**
 * Appends log lines to a job. Sequence numbers continue after the job's last line; only the one
 * worker that owns a job (or recovery, once the owner is gone) writes its lines, so there is no
 * concurrent appender to race with.
 */
export async function appendLogs(db: Db, jobId: string, lines: ReadonlyArray<{ at: number; line: string }>): Promise<void> {
  if (lines.length === 0) return;
  await db.transaction().execute(async (trx) => {
    const last = await trx.selectFrom('job_logs').select((eb) => eb.fn.max('seq').as('m')).where('job_id', '=', jobId).executeTakeFirst();
    const base = Number(last?.m ?? 0);
    await trx
      .insertInto('job_logs')
      .values(lines.map((l, i) => ({ job_id: jobId, seq: base + i + 1, at: l.at, line: l.line })))
      .execute();
  });
}

export async function getLogs(db: Db, jobId: string, q: { afterSeq: number; limit: number }): Promise<Array<Selectable<JobLogTable>>> {
  return db.selectFrom('job_logs').selectAll().where('job_id', '=', jobId).where('seq', '>', q.afterSeq).orderBy('seq').limit(q.limit).execute();
}

/**
 * Fails a job that is not finished yet whoever holds it (the queue backend gave up on it, e.g.
 * BullMQ's stalled-job limit). Returns false when it had already finished.
 */
export async function failUnfinished(db: Db, id: string, now: number, error: string): Promise<boolean> {
  const res = await db
    .updateTable('jobs')
    .set({ status: 'failed', error, finished_at: now, stage: 'failed', message: 'failed' })
    .where('id', '=', id)
    .where('status', 'in', ['queued', 'running'])
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}
