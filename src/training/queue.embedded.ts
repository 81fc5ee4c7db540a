/**
 * The embedded queue: the jobs table is the queue. This process claims queued rows (atomically,
 * so several API processes on one PostgreSQL database share the work) and runs them on its pool
 * of worker processes. Jobs left running by a dead process are recovered at start and by a
 * periodic sweep.
 */
import { randomUUID } from 'node:crypto';
import type { AnyJobPayload } from './handlers.ts';
import { markWorkerAlive, markWorkerGone, orphanReason, settleOrphan } from './job.recovery.ts';
import { claimNextQueued, insertJob, listRunning } from './jobs.repository.ts';
import { cancelInStore, FinishedListeners, type CancelOutcome, type EnqueueOptions, type FinishedListener, type JobQueue, type QueueDeps, type QueueOptions } from './queue.ts';
import { WorkerPool } from './worker.pool.ts';
import { runnerOnPool, type JobRunner } from './worker.runner.ts';

export class EmbeddedQueue implements JobQueue {
  readonly backend = 'embedded' as const;
  private readonly pool: WorkerPool;
  private readonly runner: JobRunner;
  private readonly running = new Set<Promise<unknown>>();
  private readonly finished = new FinishedListeners();
  private pollTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closing = false;
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;

  constructor(
    private readonly deps: QueueDeps,
    private readonly options: QueueOptions,
  ) {
    this.pool = new WorkerPool(deps.config, options);
    this.runner = runnerOnPool({ ...deps, onFinished: this.finished.notify }, this.pool, options);
  }

  onFinished(listener: FinishedListener): () => void {
    return this.finished.add(listener);
  }

  async enqueue<P extends AnyJobPayload>(payload: P, options: EnqueueOptions = {}): Promise<string> {
    const id = randomUUID();
    await insertJob(this.deps.store.db, {
      id,
      kind: payload.kind,
      payload: JSON.stringify(payload),
      maxAttempts: options.maxAttempts ?? this.deps.catalogue.maxAttempts(payload.kind),
      now: Date.now(),
    });
    this.wake();
    return id;
  }

  cancel(jobId: string): Promise<CancelOutcome> {
    return cancelInStore(this.deps.store, this.runner, jobId);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    markWorkerAlive(this.runner.workerId);
    await this.sweep();
    if (this.options.workers > 0) {
      this.pollTimer = setInterval(() => this.wake(), this.options.pollIntervalMs);
      this.pollTimer.unref();
      this.wake();
    }
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.deps.log.warn({ err }, 'looking for orphaned training jobs failed'));
    }, this.options.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.pollTimer);
    clearInterval(this.sweepTimer);
    await this.pumping;
    this.runner.interruptAll();
    await Promise.allSettled([...this.running]);
    await this.pool.close();
    markWorkerGone(this.runner.workerId);
  }

  describe(): Record<string, unknown> {
    return { backend: this.backend, workers: this.options.workers, running_here: this.runner.activeCount, worker_processes: this.pool.size };
  }

  workerMemoryBytes(): number {
    return this.pool.residentBytes();
  }

  /** Re-queues or fails jobs whose worker died (not the ones running here). */
  async sweep(): Promise<number> {
    const now = Date.now();
    let n = 0;
    for (const row of await listRunning(this.deps.store.db)) {
      if (this.runner.isRunningHere(row.id)) continue;
      const reason = orphanReason(row, now, this.options.heartbeatTimeoutMs, true);
      if (reason === undefined) continue;
      const next = await settleOrphan(this.deps.store, row, reason);
      if (next === undefined) continue;
      n++;
      this.deps.log.warn({ jobId: row.id, reason, next }, 'recovered an orphaned training job');
      if (next === 'failed') this.finished.notify('failed', (now - (row.started_at ?? now)) / 1000);
    }
    if (n > 0) this.wake();
    return n;
  }

  /** Claims and starts jobs while workers are free; coalesces concurrent wake-ups. */
  private wake(): void {
    if (!this.started || this.closing || this.options.workers === 0) return;
    if (this.pumping !== undefined) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = (async () => {
      do {
        this.pumpAgain = false;
        await this.pump();
      } while (this.pumpAgain && !this.closing);
    })()
      .catch((err: unknown) => this.deps.log.warn({ err }, 'claiming training jobs failed'))
      .finally(() => {
        this.pumping = undefined;
      });
  }

  private async pump(): Promise<void> {
    while (!this.closing && this.runner.activeCount < this.options.workers) {
      const row = await claimNextQueued(this.deps.store.db, this.deps.store.dialect, this.deps.catalogue.names(), this.runner.workerId, Date.now());
      // A job claimed while closing starts and is interrupted (re-queued) by `close` at once.
      if (row === undefined) return;
      const run = this.runner
        .execute(row)
        .catch((err: unknown) => this.deps.log.error({ err, jobId: row.id }, 'training job runner failed'))
        .finally(() => {
          this.running.delete(run);
          this.wake();
        });
      this.running.add(run);
    }
  }
}
