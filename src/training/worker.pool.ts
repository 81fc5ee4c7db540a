/**
 * A pool of training worker threads. Threads start lazily (an idle server holds none), are reused
 * by jobs that follow each other, are ended once idle for `threadIdleMs`, and are thrown away when
 * they die, hang or ignore a cancellation. The pool turns everything a thread can do into one
 * `ThreadOutcome`, so queue backends never see a thread.
 */
import { Worker } from 'node:worker_threads';
import { spawnWorker } from '../util/threads.ts';
import type { Config } from '../config.ts';
import type { JobResult } from './job.types.ts';
import type { FromWorker, ToWorker, WorkerThreadInit } from './worker.protocol.ts';

/** How a job's run on a thread ended. */
export type ThreadOutcome =
  | { readonly kind: 'done'; readonly result: JobResult }
  | { readonly kind: 'failed'; readonly message: string; readonly deterministic: boolean }
  | { readonly kind: 'cancelled' }
  /** The thread exited, crashed or stopped responding; `reason` says which. */
  | { readonly kind: 'died'; readonly reason: string }
  /** The pool was asked to stop the job (shutdown); it should run again later. */
  | { readonly kind: 'interrupted' };

export interface PoolTimings {
  /** A thread silent for this long while running a job is considered hung and terminated. */
  readonly stallTimeoutMs: number;
  /** After a cancellation, how long a job may take to stop before its thread is terminated. */
  readonly cancelGraceMs: number;
  /** Heartbeat period inside the thread. */
  readonly threadHeartbeatMs: number;
  /** Minimum gap between progress messages of one stage, inside the thread. */
  readonly progressThrottleMs: number;
}

export interface PoolOptions extends PoolTimings {
  /** Threads a job builds trees on when its params leave `n_jobs` unset (`JobContext.threads`). */
  readonly jobThreads: number;
  /**
   * An idle thread is ended after this long. A finished job's arrays stay in its thread's heap
   * until that heap is collected, which an idle thread never does: ending it hands them back (for
   * a default forest on California housing, about 100 MB of trees and data, plus the thread's own
   * 40 MB). A new thread costs about 0.1 s plus loading the job's handler.
   */
  readonly threadIdleMs: number;
}

/** A new thread that has not finished loading after this long is considered broken. */
const STARTUP_TIMEOUT_MS = 120_000;
/** How long an idle thread may take to close its handlers' dependencies before it is terminated. */
const GRACEFUL_EXIT_MS = 2000;

export interface RunCallbacks {
  progress(percent: number, stage: string, message: string | null): void;
  log(at: number, line: string): void;
  /** The job's attempt created its tracking run. */
  runStarted(runId: string): void;
}

/** A job running on a thread. */
export interface ThreadRun {
  readonly outcome: Promise<ThreadOutcome>;
  /** Asks the job to stop (AbortSignal in the thread); terminates the thread after the grace period. */
  cancel(): void;
  /** Stops the job at once for shutdown; the outcome is `interrupted`. */
  interrupt(): void;
}

interface PooledThread {
  readonly worker: Worker;
  /** Listener of the job currently on the thread. */
  onMessage: ((msg: FromWorker) => void) | undefined;
  onExit: ((code: number, error: Error | undefined) => void) | undefined;
  lastError: Error | undefined;
  exited: boolean;
  /** Loading a thread (tsx, the handler's imports) is not a stall: the clock starts once it is ready. */
  ready: boolean;
  /** Ends the thread when it stays idle (see `PoolOptions.threadIdleMs`). */
  idleTimer: NodeJS.Timeout | undefined;
}

function spawnThread(init: WorkerThreadInit): Worker {
  return spawnWorker(import.meta.url, './worker.thread', init);
}

export class WorkerPool {
  private readonly idle: PooledThread[] = [];
  private readonly all = new Set<PooledThread>();
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly options: PoolOptions,
  ) {}

  /** Threads alive now (idle or busy). */
  get size(): number {
    return this.all.size;
  }

  private take(): PooledThread {
    const reused = this.idle.pop();
    if (reused !== undefined) {
      clearTimeout(reused.idleTimer);
      reused.idleTimer = undefined;
      return reused;
    }
    const worker = spawnThread({
      config: this.config,
      heartbeatMs: this.options.threadHeartbeatMs,
      progressThrottleMs: this.options.progressThrottleMs,
      jobThreads: this.options.jobThreads,
    });
    const t: PooledThread = { worker, onMessage: undefined, onExit: undefined, lastError: undefined, exited: false, ready: false, idleTimer: undefined };
    worker.on('message', (msg: FromWorker) => {
      if (msg.type === 'ready') t.ready = true;
      t.onMessage?.(msg);
    });
    worker.on('error', (err) => {
      t.lastError = err;
    });
    worker.on('exit', (code) => {
      t.exited = true;
      clearTimeout(t.idleTimer);
      this.all.delete(t);
      const i = this.idle.indexOf(t);
      if (i >= 0) this.idle.splice(i, 1);
      t.onExit?.(code, t.lastError);
    });
    this.all.add(t);
    return t;
  }

  private release(t: PooledThread): void {
    t.onMessage = undefined;
    t.onExit = undefined;
    if (t.exited) return;
    if (this.closed) {
      void t.worker.terminate();
      return;
    }
    this.idle.push(t);
    t.idleTimer = setTimeout(() => {
      const i = this.idle.indexOf(t);
      if (i < 0) return;
      this.idle.splice(i, 1);
      void this.shutDown(t, GRACEFUL_EXIT_MS);
    }, this.options.threadIdleMs);
    t.idleTimer.unref();
  }

  /**
   * Ends an idle thread: it closes its handlers' dependencies and exits, or is terminated after
   * `gracefulMs`. Resolves once it has exited.
   */
  private async shutDown(t: PooledThread, gracefulMs: number): Promise<void> {
    if (t.exited) return;
    const exited = new Promise<void>((resolve) => t.worker.once('exit', () => resolve()));
    t.worker.postMessage({ type: 'shutdown' } satisfies ToWorker);
    const timer = setTimeout(() => void t.worker.terminate(), gracefulMs);
    await exited;
    clearTimeout(timer);
  }

  /**
   * Runs one job on a thread. `describeStage` names the stage the job was last seen in, for the
   * reason of a death ("worker died (exit code 1) during stage 'fit'").
   */
  run(job: { jobId: string; attempt: number; module: string; payload: unknown }, callbacks: RunCallbacks, describeStage: () => string): ThreadRun {
    if (this.closed) throw new Error('worker pool is closed');
    const t = this.take();
    let settled = false;
    let cancelTimer: NodeJS.Timeout | undefined;
    let lastHeard = Date.now();
    let resolveOutcome!: (o: ThreadOutcome) => void;
    const outcome = new Promise<ThreadOutcome>((resolve) => {
      resolveOutcome = resolve;
    });
    const stallCheck = setInterval(
      () => {
        const silentMs = Date.now() - lastHeard;
        if (silentMs > (t.ready ? this.options.stallTimeoutMs : STARTUP_TIMEOUT_MS)) {
          finish({ kind: 'died', reason: `worker stopped responding (no heartbeat for ${Math.round(silentMs / 1000)} s) during ${describeStage()}` }, true);
        }
      },
      Math.max(50, Math.min(1000, this.options.stallTimeoutMs / 4)),
    );
    stallCheck.unref();

    const finish = (o: ThreadOutcome, terminate: boolean): void => {
      if (settled) return;
      settled = true;
      clearInterval(stallCheck);
      if (cancelTimer !== undefined) clearTimeout(cancelTimer);
      if (terminate) {
        t.onMessage = undefined;
        t.onExit = undefined;
        void t.worker.terminate();
      } else {
        this.release(t);
      }
      resolveOutcome(o);
    };

    t.onMessage = (msg) => {
      if (msg.type === 'ready') lastHeard = Date.now();
      if (msg.type === 'closed' || msg.type === 'ready' || msg.jobId !== job.jobId) return;
      lastHeard = Date.now();
      switch (msg.type) {
        case 'progress':
          callbacks.progress(msg.percent, msg.stage, msg.message);
          break;
        case 'log':
          callbacks.log(msg.at, msg.line);
          break;
        case 'runStarted':
          callbacks.runStarted(msg.runId);
          break;
        case 'heartbeat':
          break;
        case 'done':
          finish({ kind: 'done', result: msg.result }, false);
          break;
        case 'failed':
          finish(msg.cancelled ? { kind: 'cancelled' } : { kind: 'failed', message: msg.message, deterministic: msg.deterministic }, false);
          break;
      }
    };
    t.onExit = (code, error) => {
      const why = error !== undefined ? `worker crashed (${error.message})` : `worker died (exit code ${code})`;
      finish({ kind: 'died', reason: `${why} during ${describeStage()}` }, false);
    };
    const message: ToWorker = { type: 'run', ...job };
    t.worker.postMessage(message);

    return {
      outcome,
      cancel: () => {
        if (settled || cancelTimer !== undefined) return;
        t.worker.postMessage({ type: 'cancel', jobId: job.jobId } satisfies ToWorker);
        cancelTimer = setTimeout(() => finish({ kind: 'cancelled' }, true), this.options.cancelGraceMs);
        cancelTimer.unref();
      },
      interrupt: () => finish({ kind: 'interrupted' }, true),
    };
  }

  /**
   * Stops every thread: idle ones close their handlers' dependencies first (bounded wait), busy
   * ones are terminated (callers interrupt their jobs before closing the pool).
   */
  async close(gracefulMs = GRACEFUL_EXIT_MS): Promise<void> {
    this.closed = true;
    const threads = [...this.all];
    for (const t of this.idle) clearTimeout(t.idleTimer);
    this.idle.length = 0;
    await Promise.all(
      threads.map(async (t) => {
        if (t.exited) return;
        if (t.onMessage !== undefined) {
          await t.worker.terminate();
          return;
        }
        await this.shutDown(t, gracefulMs);
      }),
    );
  }
}
