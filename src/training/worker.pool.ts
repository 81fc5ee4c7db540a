/**
 * A pool of training worker processes (worker.child.ts, children of this process). They start
 * lazily (an idle server holds none), are reused by jobs that follow each other, are ended once
 * idle for `threadIdleMs`, and are killed when they die, hang or ignore a cancellation. A process
 * rather than a thread, so that everything a job allocated goes back to the system when it ends
 * (see worker.child.ts). The pool turns everything a worker can do into one `WorkerOutcome`, so
 * queue backends never see a process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { siblingModule } from '../util/threads.ts';
import type { Config } from '../config.ts';
import type { JobResult } from './job.types.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker.protocol.ts';

/** How a job's run in a worker process ended. */
export type WorkerOutcome =
  | { readonly kind: 'done'; readonly result: JobResult }
  | { readonly kind: 'failed'; readonly message: string; readonly deterministic: boolean }
  | { readonly kind: 'cancelled' }
  /** The worker exited, was killed or stopped responding; `reason` says which. */
  | { readonly kind: 'died'; readonly reason: string }
  /** The pool was asked to stop the job (shutdown); it should run again later. */
  | { readonly kind: 'interrupted' };

export interface PoolTimings {
  /** A worker silent for this long while running a job is considered hung and killed. */
  readonly stallTimeoutMs: number;
  /** After a cancellation, how long a job may take to stop before its worker is killed. */
  readonly cancelGraceMs: number;
  /** Heartbeat period inside the worker. */
  readonly threadHeartbeatMs: number;
  /** Minimum gap between progress messages of one stage, inside the worker. */
  readonly progressThrottleMs: number;
}

export interface PoolOptions extends PoolTimings {
  /** Threads a job builds trees on when its params leave `n_jobs` unset (`JobContext.threads`). */
  readonly jobThreads: number;
  /**
   * An idle worker process is ended after this long, which hands everything its jobs allocated
   * back to the system (a finished job's arrays stay in its heap until collected, and the C
   * allocator keeps freed blocks). A new worker costs a process start plus loading the job's
   * handler, about 0.3 s compiled.
   */
  readonly threadIdleMs: number;
}

/**
 * A worker that has not finished loading after this long is considered broken: the process's own
 * start, then a job's handler module and its dependencies (`loaded`). Loading is not a stall: at
 * nice 10 on cores that serving keeps busy it can take seconds, silent ones when compiling
 * modules holds the worker's event loop.
 */
const STARTUP_TIMEOUT_MS = 120_000;
/** How long an idle worker may take to close its handlers' dependencies before it is killed. */
const GRACEFUL_EXIT_MS = 2000;

export interface RunCallbacks {
  progress(percent: number, stage: string, message: string | null): void;
  log(at: number, line: string): void;
  /** The job's attempt created its tracking run. */
  runStarted(runId: string): void;
}

/** A job running in a worker process. */
export interface WorkerRun {
  readonly outcome: Promise<WorkerOutcome>;
  /** Asks the job to stop (AbortSignal in the worker); kills the worker after the grace period. */
  cancel(): void;
  /** Stops the job at once for shutdown; the outcome is `interrupted`. */
  interrupt(): void;
}

interface PooledWorker {
  readonly worker: WorkerProcess;
  /** Listener of the job currently in the worker. */
  onMessage: ((msg: FromWorker) => void) | undefined;
  onExit: ((why: string) => void) | undefined;
  lastError: Error | undefined;
  exited: boolean;
  /** Ends the worker when it stays idle (see `PoolOptions.threadIdleMs`). */
  idleTimer: NodeJS.Timeout | undefined;
  /** Resident memory the worker last reported (bytes). */
  rss: number;
}

/** A training worker process and the one channel to it. */
class WorkerProcess {
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      // A process that could not be started (EAGAIN, ENOMEM) reports 'error' and never 'exit'.
      child.once('error', () => {
        if (child.pid === undefined) resolve();
      });
    });
  }

  /** Sends a message; one the worker can no longer receive is dropped (its exit is reported). */
  postMessage(message: ToWorker): void {
    if (!this.child.connected) return;
    this.child.send(message, (err) => {
      // EPIPE and the like: the worker is going away, and 'exit' says why.
      void err;
    });
  }

  /** Kills the worker at once (SIGKILL: a job may be in a loop that never yields). */
  async terminate(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * Starts a worker process on worker.child: the compiled `.js` beside this module, or from the
 * TypeScript sources the `.ts` with tsx's loader. V8 heap flags given to this process are passed
 * on (NODE_OPTIONS travels in the environment anyway); nothing else of its command line is (a
 * test runner's or inspector's flags would change what the child does).
 */
function spawnWorkerProcess(init: WorkerInit): WorkerProcess {
  const entry = siblingModule(import.meta.url, './worker.child');
  const execArgv = process.execArgv.filter((a) => /^--(max-old-space-size|max-semi-space-size|min-semi-space-size|stack-size)=/.test(a));
  if (entry.endsWith('.ts')) execArgv.push('--import', import.meta.resolve('tsx'));
  // The environment is inherited as it is (a cluster worker of `serve --workers N` has no
  // NODE_UNIQUE_ID left: Node removes it once the worker is set up).
  const child = fork(fileURLToPath(entry), [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const worker = new WorkerProcess(child);
  worker.postMessage({ type: 'init', init });
  return worker;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null, error: Error | undefined): string {
  if (error !== undefined) return `worker crashed (${error.message})`;
  return signal !== null ? `worker died (killed by ${signal})` : `worker died (exit code ${code})`;
}

export class WorkerPool {
  private readonly idle: PooledWorker[] = [];
  private readonly all = new Set<PooledWorker>();
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly options: PoolOptions,
  ) {}

  /** Worker processes alive now (idle or busy). */
  get size(): number {
    return this.all.size;
  }

  /** Resident memory of the worker processes alive now, as each last reported (bytes). */
  residentBytes(): number {
    let sum = 0;
    for (const t of this.all) sum += t.rss;
    return sum;
  }

  private take(): PooledWorker {
    const reused = this.idle.pop();
    if (reused !== undefined) {
      clearTimeout(reused.idleTimer);
      reused.idleTimer = undefined;
      return reused;
    }
    const worker = spawnWorkerProcess({
      config: this.config,
      heartbeatMs: this.options.threadHeartbeatMs,
      progressThrottleMs: this.options.progressThrottleMs,
      jobThreads: this.options.jobThreads,
    });
    const t: PooledWorker = { worker, onMessage: undefined, onExit: undefined, lastError: undefined, exited: false, idleTimer: undefined, rss: 0 };
    worker.child.on('message', (msg: FromWorker) => {
      if (msg.type === 'memory') {
        t.rss = msg.rss;
        return;
      }
      t.onMessage?.(msg);
    });
    const ended = (why: string): void => {
      if (t.exited) return;
      t.exited = true;
      clearTimeout(t.idleTimer);
      this.all.delete(t);
      const i = this.idle.indexOf(t);
      if (i >= 0) this.idle.splice(i, 1);
      t.onExit?.(why);
    };
    // A failed start (no 'exit' follows) or a failed kill; a failed send is reported by 'exit'.
    worker.child.on('error', (err) => {
      t.lastError = err;
      if (worker.child.pid === undefined) ended(`worker could not start (${err.message})`);
    });
    worker.child.on('exit', (code, signal) => ended(describeExit(code, signal, t.lastError)));
    this.all.add(t);
    return t;
  }

  private release(t: PooledWorker): void {
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
   * Ends an idle worker: it closes its handlers' dependencies and exits, or is killed after
   * `gracefulMs`. Resolves once it has exited.
   */
  private async shutDown(t: PooledWorker, gracefulMs: number): Promise<void> {
    if (t.exited) return;
    t.worker.postMessage({ type: 'shutdown' });
    const timer = setTimeout(() => void t.worker.terminate(), gracefulMs);
    await t.worker.exited;
    clearTimeout(timer);
  }

  /**
   * Runs one job in a worker process. `describeStage` names the stage the job was last seen in, for the
   * reason of a death ("worker died (exit code 1) during stage 'fit'").
   */
  run(job: { jobId: string; attempt: number; module: string; payload: unknown }, callbacks: RunCallbacks, describeStage: () => string): WorkerRun {
    if (this.closed) throw new Error('worker pool is closed');
    const t = this.take();
    let settled = false;
    let cancelTimer: NodeJS.Timeout | undefined;
    let lastHeard = Date.now();
    /** The worker has the job's handler loaded: from here on a silence is a stall. */
    let loaded = false;
    let resolveOutcome!: (o: WorkerOutcome) => void;
    const outcome = new Promise<WorkerOutcome>((resolve) => {
      resolveOutcome = resolve;
    });
    const stallCheck = setInterval(
      () => {
        const silentMs = Date.now() - lastHeard;
        if (silentMs > (loaded ? this.options.stallTimeoutMs : STARTUP_TIMEOUT_MS)) {
          finish({ kind: 'died', reason: `worker stopped responding (no heartbeat for ${Math.round(silentMs / 1000)} s) during ${describeStage()}` }, true);
        }
      },
      Math.max(50, Math.min(1000, this.options.stallTimeoutMs / 4)),
    );
    stallCheck.unref();

    const finish = (o: WorkerOutcome, terminate: boolean): void => {
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
      if (msg.type === 'closed' || msg.type === 'ready' || msg.type === 'memory' || msg.jobId !== job.jobId) return;
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
        case 'loaded':
          loaded = true;
          break;
        case 'done':
          finish({ kind: 'done', result: msg.result }, false);
          break;
        case 'failed':
          finish(msg.cancelled ? { kind: 'cancelled' } : { kind: 'failed', message: msg.message, deterministic: msg.deterministic }, false);
          break;
      }
    };
    t.onExit = (why) => {
      finish({ kind: 'died', reason: `${why} during ${describeStage()}` }, false);
    };
    t.worker.postMessage({ type: 'run', ...job });

    return {
      outcome,
      cancel: () => {
        if (settled || cancelTimer !== undefined) return;
        t.worker.postMessage({ type: 'cancel', jobId: job.jobId });
        cancelTimer = setTimeout(() => finish({ kind: 'cancelled' }, true), this.options.cancelGraceMs);
        cancelTimer.unref();
      },
      interrupt: () => finish({ kind: 'interrupted' }, true),
    };
  }

  /**
   * Stops every worker: idle ones close their handlers' dependencies first (bounded wait), busy
   * ones are killed (callers interrupt their jobs before closing the pool).
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
