/**
 * Runs one claimed job on the worker pool and records it in the jobs table: batched progress and
 * log writes (never one write per progress tick), a heartbeat, the cancellation flag, and the
 * job's next state (succeeded, failed, cancelled, or queued again for a retry). Both queue
 * backends use it, so the job state machine lives in one place.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Store } from '../store/database.ts';
import type { JobCatalogue } from './handlers.ts';
import type { JobResult } from './job.types.ts';
import { appendLogs, failAttemptRun, heartbeat, recordAttemptRun, settleRunning, type JobRow, type JobSettlement } from './jobs.repository.ts';
import type { WorkerOutcome, WorkerRun, WorkerPool } from './worker.pool.ts';

/** How a run of a job ended, from the queue's point of view. */
export type RunEnd = 'succeeded' | 'failed' | 'cancelled' | 'retry' | 'interrupted' | 'lost';

export interface RunnerTimings {
  /** Progress and log lines are written at most this often (ms). Default 250 (4 writes a second). */
  readonly flushIntervalMs: number;
  /** The job row's heartbeat (and cancellation poll) period (ms). */
  readonly heartbeatIntervalMs: number;
}

export interface RunnerDeps {
  readonly store: Store;
  readonly catalogue: JobCatalogue;
  readonly pool: WorkerPool;
  readonly log: Logger;
  readonly workerId: string;
  readonly timings: RunnerTimings;
  /** Called once per terminal end (metrics). */
  readonly onFinished?: (end: 'succeeded' | 'failed' | 'cancelled', durationSeconds: number) => void;
}

/** `host:pid:instance`: recovery on the same host can tell a dead process from a live one. */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/**
 * A runner with a fresh worker id on `pool`, as both queues (embedded and BullMQ) build theirs:
 * the queue's store, log and finish callback.
 */
export function runnerOnPool(deps: Pick<RunnerDeps, 'store' | 'catalogue' | 'log' | 'onFinished'>, pool: WorkerPool, timings: RunnerTimings): JobRunner {
  return new JobRunner({
    store: deps.store,
    catalogue: deps.catalogue,
    pool,
    log: deps.log,
    workerId: newWorkerId(),
    timings,
    ...(deps.onFinished === undefined ? {} : { onFinished: deps.onFinished }),
  });
}

/** Parses a worker id written by `newWorkerId`. */
export function parseWorkerId(id: string): { host: string; pid: number; instance: string } | undefined {
  const m = /^(.*):(\d+):([0-9a-f]{8})$/.exec(id);
  return m === null ? undefined : { host: m[1]!, pid: Number(m[2]), instance: m[3]! };
}

interface ActiveRun {
  readonly worker: WorkerRun | undefined;
  cancelRequested: boolean;
}

export class JobRunner {
  private readonly active = new Map<string, ActiveRun>();

  constructor(private readonly deps: RunnerDeps) {}

  get workerId(): string {
    return this.deps.workerId;
  }

  /** Jobs running here now. */
  get activeCount(): number {
    return this.active.size;
  }

  isRunningHere(jobId: string): boolean {
    return this.active.has(jobId);
  }

  /** Cancels a job running in this process without waiting for the next heartbeat poll. */
  cancelLocal(jobId: string): boolean {
    const run = this.active.get(jobId);
    if (run === undefined) return false;
    run.cancelRequested = true;
    run.worker?.cancel();
    return true;
  }

  /** Stops every job running here (shutdown); each goes back to `queued` without using up an attempt. */
  interruptAll(): void {
    for (const run of this.active.values()) run.worker?.interrupt();
  }

  /** Runs a job already claimed by this worker (status `running`, attempts counted) to its next state. */
  async execute(row: JobRow): Promise<RunEnd> {
    const { store, pool, log, workerId, timings } = this.deps;
    const db = store.db;
    const kind = this.deps.catalogue.get(row.kind);
    if (kind === undefined) {
      const error = `no handler is registered for job kind '${row.kind}' in worker ${workerId}`;
      await appendLogs(db, row.id, [{ at: Date.now(), line: error }]);
      return this.settle(row, { status: 'failed', error, stage: 'failed', message: error }, 'failed');
    }

    let payload: unknown;
    try {
      payload = JSON.parse(row.payload);
    } catch {
      const error = 'job payload is not valid JSON';
      return this.settle(row, { status: 'failed', error, stage: 'failed', message: error }, 'failed');
    }

    let progress = { percent: 0, stage: 'starting', message: null as string | null };
    let progressDirty = true;
    const pendingLogs: Array<{ at: number; line: string }> = [
      { at: Date.now(), line: `attempt ${row.attempts} of ${row.max_attempts} started on worker ${workerId}` },
    ];
    let lost = false;
    let writing: Promise<void> | undefined;
    /** The tracking run this attempt created, once it says so; ended here if the attempt dies. */
    let attemptRunId: string | undefined;
    let recording: Promise<void> | undefined;
    let lastBeat = 0;

    const worker = pool.run(
      { jobId: row.id, attempt: row.attempts, module: kind.module, payload },
      {
        progress: (percent, stage, message) => {
          progress = { percent, stage, message };
          progressDirty = true;
        },
        log: (at, line) => {
          pendingLogs.push({ at, line });
        },
        runStarted: (runId) => {
          attemptRunId = runId;
          recording = recordAttemptRun(db, row.id, workerId, runId)
            .then(() => undefined)
            .catch((err: unknown) => log.warn({ err, jobId: row.id, runId }, 'recording the attempt\'s tracking run failed'));
        },
      },
      () => `stage '${progress.stage}'`,
    );
    const run: ActiveRun = { worker, cancelRequested: row.cancel_requested !== 0 };
    this.active.set(row.id, run);
    if (run.cancelRequested) worker.cancel();

    const flush = async (force: boolean): Promise<void> => {
      const now = Date.now();
      const beatDue = now - lastBeat >= timings.heartbeatIntervalMs;
      if (!force && !progressDirty && pendingLogs.length === 0 && !beatDue) return;
      const lines = pendingLogs.splice(0, pendingLogs.length);
      const p = progressDirty ? progress : undefined;
      progressDirty = false;
      lastBeat = now;
      const state = await heartbeat(db, row.id, workerId, now, p);
      if (lines.length > 0) await appendLogs(db, row.id, lines);
      if (state === undefined) {
        // Someone else recovered this job (our heartbeats were late): stop, write nothing more.
        if (!lost) log.warn({ jobId: row.id, workerId }, 'job is no longer owned by this worker; stopping it');
        lost = true;
        worker.interrupt();
      } else if (state.cancelRequested && !run.cancelRequested) {
        run.cancelRequested = true;
        worker.cancel();
      }
    };
    const tick = setInterval(() => {
      if (writing !== undefined) return;
      writing = flush(false)
        .catch((err: unknown) => log.warn({ err, jobId: row.id }, 'writing job progress failed'))
        .finally(() => {
          writing = undefined;
        });
    }, timings.flushIntervalMs);

    let outcome: WorkerOutcome;
    try {
      outcome = await worker.outcome;
    } finally {
      clearInterval(tick);
      this.active.delete(row.id);
    }
    await writing;
    await recording;
    if (attemptRunId !== undefined && outcome.kind !== 'done') await this.endAttemptRun(row.id, attemptRunId, outcome);
    if (lost) return 'lost';
    try {
      await flush(true);
    } catch (err) {
      log.warn({ err, jobId: row.id }, 'writing job progress failed');
    }
    if (lost) return 'lost';
    return this.conclude(row, outcome, run.cancelRequested);
  }

  /**
   * Ends the run of an attempt that did not succeed, unless the pipeline already did: a worker
   * that died, hung, was terminated after a cancellation or interrupted by shutdown cannot end it
   * itself, and a run must never stay RUNNING. The next attempt makes a run of its own.
   */
  private async endAttemptRun(jobId: string, runId: string, outcome: WorkerOutcome): Promise<void> {
    const reason =
      outcome.kind === 'died'
        ? outcome.reason
        : outcome.kind === 'interrupted'
          ? 'attempt interrupted by worker shutdown; the job runs again'
          : outcome.kind === 'failed'
            ? outcome.message
            : 'attempt cancelled';
    try {
      await failAttemptRun(this.deps.store.db, runId, Date.now(), reason);
    } catch (err) {
      this.deps.log.warn({ err, jobId, runId }, 'ending the attempt\'s tracking run failed; recovery ends it');
    }
  }

  /** Maps a worker's outcome to the job's next state and writes it. */
  private async conclude(row: JobRow, outcome: WorkerOutcome, cancelRequested: boolean): Promise<RunEnd> {
    const db = this.deps.store.db;
    const at = Date.now();
    switch (outcome.kind) {
      case 'done':
        await appendLogs(db, row.id, [{ at, line: 'job succeeded' }]);
        return this.settle(row, successSettlement(outcome.result), 'succeeded');
      case 'cancelled':
        await appendLogs(db, row.id, [{ at, line: 'job cancelled' }]);
        return this.settle(row, { status: 'cancelled', stage: 'cancelled', message: 'cancelled while running' }, 'cancelled');
      case 'interrupted':
        await appendLogs(db, row.id, [{ at, line: 'interrupted by shutdown; the job will run again' }]);
        return this.settle(
          row,
          { status: 'queued', attempts: Math.max(0, row.attempts - 1), progressPercent: 0, stage: 'queued', message: 'interrupted by shutdown; will run again' },
          'interrupted',
        );
      case 'failed':
      case 'died': {
        const reason = outcome.kind === 'failed' ? outcome.message : outcome.reason;
        if (cancelRequested) {
          await appendLogs(db, row.id, [{ at, line: `job cancelled (${reason})` }]);
          return this.settle(row, { status: 'cancelled', stage: 'cancelled', message: 'cancelled while running' }, 'cancelled');
        }
        const deterministic = outcome.kind === 'failed' && outcome.deterministic;
        const next = nextStateAfterFailure(row, reason, deterministic);
        await appendLogs(db, row.id, [{ at, line: next.logLine }]);
        return this.settle(row, next.settlement, next.end);
      }
    }
  }

  private async settle(row: JobRow, settlement: JobSettlement, end: RunEnd): Promise<RunEnd> {
    const now = Date.now();
    const ok = await settleRunning(this.deps.store.db, row.id, this.deps.workerId, now, settlement);
    if (!ok) return 'lost';
    if (end === 'succeeded' || end === 'failed' || end === 'cancelled') {
      this.deps.onFinished?.(end, (now - (row.started_at ?? now)) / 1000);
    }
    return end;
  }
}

function successSettlement(result: JobResult): JobSettlement {
  return {
    status: 'succeeded',
    result: JSON.stringify(result),
    runId: result.runId,
    error: null,
    progressPercent: 100,
    stage: 'done',
    message: null,
  };
}

/**
 * The state after a failed attempt: deterministic failures and the last attempt fail the job;
 * anything else goes back to the queue.
 */
export function nextStateAfterFailure(
  row: Pick<JobRow, 'attempts' | 'max_attempts'>,
  reason: string,
  deterministic: boolean,
): { settlement: JobSettlement; end: 'failed' | 'retry'; logLine: string } {
  if (!deterministic && row.attempts < row.max_attempts) {
    return {
      settlement: { status: 'queued', error: reason, progressPercent: 0, stage: 'queued', message: `attempt ${row.attempts} failed; retrying` },
      end: 'retry',
      logLine: `attempt ${row.attempts} failed: ${reason}; retrying`,
    };
  }
  const error = deterministic || row.attempts <= 1 ? reason : `${reason} (after ${row.attempts} attempts)`;
  return {
    settlement: { status: 'failed', error, stage: 'failed', message: deterministic ? 'failed (not retried: the failure is deterministic)' : 'failed' },
    end: 'failed',
    logLine: `job failed: ${error}`,
  };
}
