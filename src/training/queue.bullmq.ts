/**
 * The BullMQ queue: jobs travel through Redis to any number of worker processes (`modelplane
 * worker`, plus the API's own in-process worker when TRAINING_WORKERS > 0). The jobs table stays
 * the record of each job: the BullMQ job id is the job's uuid and carries no payload, so a worker
 * reads the payload from the store it shares with the API (same DATABASE_URL).
 *
 * Retries: the jobs table decides (attempts, deterministic failures); BullMQ only re-delivers.
 * A transient failure with attempts left throws a plain error (BullMQ retries at once); anything
 * final throws `UnrecoverableError`. A worker process that dies loses its lock; BullMQ's stalled
 * check hands the job to another worker, which takes it over in the table.
 */
import { randomUUID } from 'node:crypto';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { unavailable } from '../platform/errors.ts';
import type { AnyJobPayload } from './handlers.ts';
import { markWorkerAlive, markWorkerGone, orphanReason, settleOrphan } from './job.recovery.ts';
import { appendLogs, claimById, failAttemptRun, failQueued, failUnfinished, getJob, insertJob, listQueuedBefore, listRunning } from './jobs.repository.ts';
import { cancelInStore, FinishedListeners, type CancelOutcome, type EnqueueOptions, type FinishedListener, type JobQueue, type QueueDeps, type QueueOptions } from './queue.ts';
import { WorkerPool } from './worker.pool.ts';
import { runnerOnPool, type JobRunner } from './worker.runner.ts';

/**
 * BullMQ's own attempt limit sits well above ours: the table's count also includes runs cut short
 * by dead workers and shutdowns, and it alone decides when a job has had enough.
 */
const BULL_ATTEMPT_HEADROOM = 10;

const QUEUE_UNAVAILABLE = 'the training queue (Redis) is unavailable; try again later';
/** Longest wait for Redis to take a new job before the submission answers 503. */
const ENQUEUE_TIMEOUT_MS = 3000;

/** `work`, or a rejection with `message` after `ms` (the work itself goes on). */
async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface BullMqOptions extends QueueOptions {
  readonly redisUrl: string;
}

export class BullMqQueue implements JobQueue {
  readonly backend = 'bullmq' as const;
  private readonly queueConnection: Redis;
  private readonly queue: Queue;
  private worker: Worker | undefined;
  private workerConnection: Redis | undefined;
  private readonly pool: WorkerPool;
  private readonly runner: JobRunner;
  private readonly finished = new FinishedListeners();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private started = false;
  private closed = false;

  constructor(
    private readonly deps: QueueDeps,
    private readonly options: BullMqOptions,
  ) {
    // BullMQ blocks on its connections, so they must not give up on slow commands.
    this.queueConnection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
    this.queueConnection.on('error', (err) => deps.log.warn({ err: { message: err.message } }, 'training queue redis error'));
    this.queue = new Queue(options.queueName, { connection: this.queueConnection });
    this.queue.on('error', (err) => deps.log.warn({ err: { message: err.message } }, 'training queue error'));
    this.pool = new WorkerPool(deps.config, options);
    this.runner = runnerOnPool({ ...deps, onFinished: this.finished.notify }, this.pool, options);
  }

  onFinished(listener: FinishedListener): () => void {
    return this.finished.add(listener);
  }

  async enqueue<P extends AnyJobPayload>(payload: P, options: EnqueueOptions = {}): Promise<string> {
    // Refused at once while Redis is away: the connection would otherwise hold the call until it returns.
    if (this.queueConnection.status !== 'ready') throw unavailable(QUEUE_UNAVAILABLE, 5);
    const id = randomUUID();
    const maxAttempts = options.maxAttempts ?? this.deps.catalogue.maxAttempts(payload.kind);
    const db = this.deps.store.db;
    await insertJob(db, { id, kind: payload.kind, payload: JSON.stringify(payload), maxAttempts, now: Date.now() });
    try {
      await withTimeout(this.add(id, payload.kind, maxAttempts), ENQUEUE_TIMEOUT_MS, 'the queue did not answer in time');
    } catch (err) {
      const reason = `could not hand the job to the queue: ${err instanceof Error ? err.message : String(err)}`;
      await failQueued(db, id, Date.now(), reason);
      throw unavailable(QUEUE_UNAVAILABLE, 5);
    }
    return id;
  }

  private async add(id: string, kind: string, maxAttempts: number): Promise<void> {
    await this.queue.add(
      kind,
      { kind },
      {
        jobId: id,
        attempts: maxAttempts + BULL_ATTEMPT_HEADROOM,
        // The table keeps the history; Redis keeps only a little for BullMQ's own tools.
        removeOnComplete: { age: 3600, count: 1000 },
        removeOnFail: { age: 24 * 3600, count: 1000 },
      },
    );
  }

  async cancel(jobId: string): Promise<CancelOutcome> {
    const outcome = await cancelInStore(this.deps.store, this.runner, jobId);
    if (outcome === 'cancelled') {
      // Still waiting in Redis: drop it. If a worker locked it meanwhile, it sees the cancelled row and skips it.
      await this.queue.remove(jobId).catch(() => 0);
    }
    return outcome;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    markWorkerAlive(this.runner.workerId);
    if (this.options.workers === 0) {
      // An API replica that only enqueues starts without Redis (submissions answer 503 until it
      // comes), after the start-up wait of REDIS_CONNECT_TIMEOUT_MS.
      const waitMs = this.deps.config.redis.connectTimeoutMs;
      const ready = await withTimeout(this.queue.waitUntilReady(), waitMs, 'redis not ready').then(
        () => true,
        () => false,
      );
      if (!ready) {
        this.deps.log.warn({ wait_ms: waitMs }, 'training queue (redis) not reachable at start-up; job submissions answer 503 until it is');
        this.startSweeping(true);
        return;
      }
    } else {
      await this.queue.waitUntilReady();
    }
    if (this.options.workers > 0) {
      this.workerConnection = new Redis(this.options.redisUrl, { maxRetriesPerRequest: null });
      this.workerConnection.on('error', (err) => this.deps.log.warn({ err: { message: err.message } }, 'training worker redis error'));
      this.worker = new Worker(this.options.queueName, (job) => this.process(job), {
        connection: this.workerConnection,
        concurrency: this.options.workers,
        lockDuration: this.options.lockDurationMs,
        stalledInterval: this.options.stalledIntervalMs,
        maxStalledCount: 1,
        autorun: false,
      });
      this.worker.on('error', (err) => this.deps.log.warn({ err: { message: err.message } }, 'training worker error'));
      this.worker.on('failed', (job, err) => {
        if (job !== undefined) void this.onBullFailed(job, err);
      });
      void this.worker.run().catch((err: unknown) => this.deps.log.error({ err }, 'training worker stopped'));
      await this.worker.waitUntilReady();
    }
    await this.sweep();
    this.startSweeping(false);
  }

  /** The periodic sweep (first one at once when `now`); one at a time, as a sweep waits for Redis while it is away. */
  private startSweeping(now: boolean): void {
    const tick = (): void => {
      if (this.sweeping !== undefined || this.closed) return;
      this.sweeping = this.sweep()
        .catch((err: unknown) => this.deps.log.warn({ err }, 'looking for orphaned training jobs failed'))
        .then(() => undefined)
        .finally(() => {
          this.sweeping = undefined;
        });
    };
    if (now) tick();
    this.sweepTimer = setInterval(tick, this.options.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    // Running jobs go back to the queue at once, so the worker's close does not wait on training.
    this.runner.interruptAll();
    await this.worker?.close();
    await this.pool.close();
    await this.queue.close();
    for (const c of [this.workerConnection, this.queueConnection]) {
      if (c !== undefined) await c.quit().catch(() => c.disconnect());
    }
    markWorkerGone(this.runner.workerId);
  }

  describe(): Record<string, unknown> {
    return {
      backend: this.backend,
      queue: this.options.queueName,
      workers: this.options.workers,
      running_here: this.runner.activeCount,
      worker_processes: this.pool.size,
    };
  }

  workerMemoryBytes(): number {
    return this.pool.residentBytes();
  }

  /** BullMQ processor: claim the row, run it, and tell BullMQ whether to retry. */
  private async process(job: Job): Promise<{ status: string }> {
    const id = job.id;
    if (id === undefined) throw new UnrecoverableError('job without id');
    const db = this.deps.store.db;
    const row = await getJob(db, id);
    if (row === undefined) throw new UnrecoverableError(`job ${id} is not in the store (is this worker using the API's DATABASE_URL?)`);
    if (row.status !== 'queued' && row.status !== 'running') return { status: row.status };
    if (row.status === 'running') {
      // Re-delivered after its worker died (BullMQ's stalled check): settle the dead run first.
      const reason = orphanReason(row, Date.now(), 0, false) ?? `worker died during stage '${row.stage ?? 'unknown'}'`;
      const next = await settleOrphan(this.deps.store, row, reason);
      if (next === 'failed') throw new UnrecoverableError(reason);
    }
    const claimed = await claimById(db, id, ['queued'], this.runner.workerId, Date.now());
    if (claimed === undefined) {
      const now = await getJob(db, id);
      return { status: now?.status ?? 'unknown' };
    }
    const end = await this.runner.execute(claimed);
    switch (end) {
      case 'succeeded':
      case 'cancelled':
      case 'lost':
        return { status: end };
      case 'failed':
        throw new UnrecoverableError((await getJob(db, id))?.error ?? 'job failed');
      case 'retry':
        throw new Error((await getJob(db, id))?.error ?? 'job failed; retrying');
      case 'interrupted':
        throw new Error('interrupted by worker shutdown');
    }
  }

  /** When BullMQ itself gives up on a job (e.g. stalled too often), the table says so too. */
  private async onBullFailed(job: Job, err: Error): Promise<void> {
    try {
      if (job.id === undefined) return;
      const state = await job.getState();
      if (state !== 'failed') return;
      const row = await getJob(this.deps.store.db, job.id);
      if (await failUnfinished(this.deps.store.db, job.id, Date.now(), err.message)) {
        // The attempt that was running (if any) ends with the job: its run must not stay RUNNING.
        if (row?.status === 'running' && row.run_id !== null) await failAttemptRun(this.deps.store.db, row.run_id, Date.now(), err.message);
        this.finished.notify('failed', 0);
      }
    } catch (e) {
      this.deps.log.warn({ err: e, jobId: job.id }, 'recording a failed queue job failed');
    }
  }

  /**
   * Rows left running whose heartbeat stopped: BullMQ re-delivers jobs of dead workers itself, so
   * only jobs it no longer holds (removed, lost with Redis, or already failed) are settled here.
   */
  async sweep(): Promise<number> {
    const now = Date.now();
    let n = 0;
    for (const row of await listRunning(this.deps.store.db)) {
      if (this.runner.isRunningHere(row.id)) continue;
      const reason = orphanReason(row, now, this.options.heartbeatTimeoutMs, false);
      if (reason === undefined) continue;
      const bullJob = await this.queue.getJob(row.id);
      const state = bullJob === undefined ? 'missing' : await bullJob.getState();
      if (state === 'failed' || state === 'completed') {
        if (await failUnfinished(this.deps.store.db, row.id, now, bullJob?.failedReason ?? reason)) {
          if (row.run_id !== null) await failAttemptRun(this.deps.store.db, row.run_id, now, reason);
          n++;
        }
        continue;
      }
      if (state !== 'missing' && state !== 'unknown') continue;
      const next = await settleOrphan(this.deps.store, row, reason);
      if (next === undefined) continue;
      n++;
      if (next === 'queued') await this.add(row.id, row.kind, row.max_attempts);
    }
    return n + (await this.requeueLost(now));
  }

  /**
   * Queued rows whose BullMQ job is gone (Redis restarted without its data, or was flushed) are
   * added again under the same id: the jobs table, not Redis, is the record of accepted work.
   */
  private async requeueLost(now: number): Promise<number> {
    let n = 0;
    for (const row of await listQueuedBefore(this.deps.store.db, now - this.options.lostEntryGraceMs)) {
      if ((await this.queue.getJob(row.id)) !== undefined) continue;
      await this.add(row.id, row.kind, row.max_attempts);
      await appendLogs(this.deps.store.db, row.id, [{ at: Date.now(), line: 'queue entry lost (Redis restarted without its data); enqueued again' }]);
      this.deps.log.warn({ jobId: row.id }, 're-enqueued a queued training job whose queue entry was lost');
      n++;
    }
    return n;
  }
}
