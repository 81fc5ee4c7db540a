/**
 * The job queue behind training: one small interface, two backends. Both record every job in the
 * store's jobs table (status, progress, logs, history); they differ in how a job reaches a worker.
 *
 * - `embedded` (no Redis): the API process claims queued rows itself and runs them in a pool of
 *   `TRAINING_WORKERS` worker processes (children of the API process, worker.pool.ts).
 * - `bullmq` (REDIS_URL/REDIS_HOST set): the API enqueues to BullMQ on Redis. It also runs an
 *   in-process BullMQ worker with `TRAINING_WORKERS` worker processes when that is above 0 (the default,
 *   1), so a single process still trains; `modelplane worker` processes add capacity and must use
 *   the same DATABASE_URL (and artifact store). Set TRAINING_WORKERS=0 for API-only replicas.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Store } from '../store/database.ts';
import type { AnyJobPayload, JobCatalogue } from './handlers.ts';
import { jobThreads } from './job-threads.ts';
import { cancelQueued, getJob, requestCancelRunning } from './jobs.repository.ts';
import type { JobRunner } from './worker.runner.ts';

/** What `cancel` did. */
export type CancelOutcome = 'cancelled' | 'cancel_requested' | 'already_finished' | 'not_found';

export interface EnqueueOptions {
  /** Attempts before a transiently failing job is failed (default: the kind's, else 2). */
  readonly maxAttempts?: number;
}

/** A training job queue backend. */
export interface JobQueue {
  readonly backend: 'embedded' | 'bullmq';
  /** Records a queued job and hands it to the backend; returns its id. */
  enqueue<P extends AnyJobPayload>(payload: P, options?: EnqueueOptions): Promise<string>;
  /** Cancels a queued job at once, or asks a running one to stop. */
  cancel(jobId: string): Promise<CancelOutcome>;
  /** Recovers jobs left running by a previous process and starts taking jobs. */
  start(): Promise<void>;
  /** Stops taking jobs; jobs running here go back to the queue without using up an attempt. */
  close(): Promise<void>;
  /** Backend facts for `/info` (no secrets). */
  describe(): Record<string, unknown>;
  /** Calls `listener` at every terminal end of a job run here (metrics); returns the unsubscribe. */
  onFinished(listener: FinishedListener): () => void;
  /** Resident memory of this process's training worker processes (bytes, as each last reported; 0 when none is alive). */
  workerMemoryBytes(): number;
}

/** Told the final status and wall time of a job that ended in this process. */
export type FinishedListener = (status: 'succeeded' | 'failed' | 'cancelled', durationSeconds: number) => void;

/** The listeners of {@link JobQueue.onFinished}, shared by both backends. */
export class FinishedListeners {
  private readonly listeners = new Set<FinishedListener>();

  add(listener: FinishedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  readonly notify: FinishedListener = (status, seconds) => {
    for (const l of this.listeners) l(status, seconds);
  };
}

/** Tunables of both backends; every field has a production default (see `DEFAULT_QUEUE_OPTIONS`). */
export interface QueueOptions {
  /** Jobs this process runs at once, each in a worker process (0: enqueue only). Default `TRAINING_WORKERS`. */
  readonly workers: number;
  /**
   * Threads a job builds trees on when its params leave `n_jobs` unset. Default: `jobThreads` for a
   * serving process running `workers` jobs (the cores less one, shared); `modelplane worker` and
   * `serve --workers N` pass their own.
   */
  readonly jobThreads: number;
  /** How often an idle embedded queue looks for queued rows written by other processes. */
  readonly pollIntervalMs: number;
  /** Heartbeat period of a running job's row. */
  readonly heartbeatIntervalMs: number;
  /** A running row whose heartbeat is older than this is an orphan (its worker died). */
  readonly heartbeatTimeoutMs: number;
  /** How often orphans are looked for. */
  readonly sweepIntervalMs: number;
  /** Progress/log writes happen at most this often per job. */
  readonly flushIntervalMs: number;
  /** A worker process silent this long while running a job is killed as hung. */
  readonly stallTimeoutMs: number;
  /** How long a cancelled job may take to stop before its worker process is killed. */
  readonly cancelGraceMs: number;
  readonly threadHeartbeatMs: number;
  readonly progressThrottleMs: number;
  /** An idle worker process is ended after this long, handing its memory back (see `PoolOptions.threadIdleMs`). */
  readonly threadIdleMs: number;
  /** BullMQ queue name (tests use unique names). */
  readonly queueName: string;
  /** BullMQ lock duration; a job whose worker process dies is re-delivered after about this long. */
  readonly lockDurationMs: number;
  /** BullMQ stalled-job check period. */
  readonly stalledIntervalMs: number;
  /**
   * A queued job older than this without its BullMQ entry lost it (Redis restarted empty) and is
   * enqueued again by the sweep; younger ones may be between the row's insert and the add.
   */
  readonly lostEntryGraceMs: number;
}

export const DEFAULT_QUEUE_OPTIONS: Omit<QueueOptions, 'workers' | 'jobThreads'> = {
  pollIntervalMs: 1000,
  heartbeatIntervalMs: 2000,
  heartbeatTimeoutMs: 30_000,
  sweepIntervalMs: 10_000,
  flushIntervalMs: 250,
  stallTimeoutMs: 10 * 60_000,
  cancelGraceMs: 10_000,
  threadHeartbeatMs: 1000,
  progressThrottleMs: 100,
  threadIdleMs: 1000,
  queueName: 'modelplane-training',
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  lostEntryGraceMs: 10_000,
};

/** What a backend needs from the process. */
export interface QueueDeps {
  readonly config: Config;
  readonly store: Store;
  readonly log: Logger;
  /** The kinds of job this process can run. */
  readonly catalogue: JobCatalogue;
}

/**
 * The cancellation rule both backends share: a queued job is cancelled at once (compare-and-set,
 * so it cannot be claimed in between); a running job gets the flag its worker polls, and is
 * signalled directly when it runs in this process.
 */
export async function cancelInStore(store: Store, runner: JobRunner | undefined, jobId: string): Promise<CancelOutcome> {
  for (let tries = 0; tries < 3; tries++) {
    const row = await getJob(store.db, jobId);
    if (row === undefined) return 'not_found';
    if (row.status === 'queued') {
      if ((await cancelQueued(store.db, jobId, Date.now())) !== undefined) return 'cancelled';
      continue;
    }
    if (row.status === 'running') {
      if ((await requestCancelRunning(store.db, jobId)) === undefined) continue;
      runner?.cancelLocal(jobId);
      return 'cancel_requested';
    }
    return 'already_finished';
  }
  // The job changed state three times under us; it is finished or about to be.
  return 'already_finished';
}

/** Resolves options from defaults, the configuration and overrides. */
export function queueOptions(config: Config, overrides: Partial<QueueOptions> = {}): QueueOptions {
  const workers = overrides.workers ?? config.trainingWorkers;
  return { ...DEFAULT_QUEUE_OPTIONS, workers, jobThreads: jobThreads({ configured: config.trainingThreads, serving: true, concurrentJobs: workers }), ...overrides };
}

/**
 * The backend the configuration asks for: BullMQ when Redis is configured, else embedded.
 * The caller starts and closes it.
 */
export async function createJobQueue(deps: QueueDeps, overrides: Partial<QueueOptions> = {}): Promise<JobQueue> {
  const options = queueOptions(deps.config, overrides);
  if (deps.config.redisUrl !== undefined) {
    const { BullMqQueue } = await import('./queue.bullmq.ts');
    return new BullMqQueue(deps, { ...options, redisUrl: deps.config.redisUrl });
  }
  const { EmbeddedQueue } = await import('./queue.embedded.ts');
  return new EmbeddedQueue(deps, options);
}
