/**
 * Entry of a training worker process, a child of the process that queues or claims jobs (the API,
 * or `modelplane worker`). It imports the handler module a job names (once per process), builds
 * that handler's dependencies once, and runs one job at a time, reporting progress, log lines and a
 * heartbeat to the parent over IPC. CPU-heavy fitting happens here, never on the API's event loop.
 *
 * Why a process and not a thread: what a job allocates outside V8's heap (typed arrays of the
 * data and the trees, onnxruntime's session of the export check) is C allocator memory, and glibc
 * keeps a finished job's freed blocks in its arenas between blocks still in use, so a server that
 * ran jobs on threads stayed 250-300 MB above idle after a default forest of 40,000 rows (and
 * 600 MB after one of 1,000,000). When this process ends, every page goes back; a job that dies
 * (out of memory included) takes only this process with it.
 *
 * The first message is `init` (the configuration travels over IPC, not in argv or the
 * environment); the process answers `ready`. It exits when asked to shut down, or when its
 * parent goes away (the IPC channel closes).
 */
import type { Logger } from 'pino';
import { createLogger } from '../platform/logging.ts';
import type { JobHandler } from './handlers.ts';
import { DeterministicJobError, type JobContext } from './job.types.ts';
import { lowerProcessPriority } from '../util/threads.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker.protocol.ts';

/** Scheduling priority (nice) of a training process; see `lowerProcessPriority`. */
const TRAINING_NICE = 10;

if (process.send === undefined) throw new Error('worker.child.ts must run as a child process with an IPC channel');
// The parent is gone (exited, crashed, killed): nobody can hear this job's outcome, and the
// queue's recovery re-runs it, so stop at once.
process.on('disconnect', () => process.exit(0));

// Set by the `init` message, which the parent sends before anything else (IPC keeps the order).
let init!: WorkerInit;
let log!: Logger;

interface LoadedHandler {
  readonly handler: JobHandler;
  readonly deps: unknown;
}
const loaded = new Map<string, Promise<LoadedHandler>>();
let current: { jobId: string; controller: AbortController } | undefined;

function post(message: FromWorker, then?: () => void): void {
  // A send after the parent has gone fails; 'disconnect' above ends the process.
  if (!process.connected) return;
  process.send!(message, undefined, undefined, (err) => {
    if (err === null) then?.();
  });
}

async function load(module: string): Promise<LoadedHandler> {
  let entry = loaded.get(module);
  if (entry === undefined) {
    entry = (async () => {
      const mod = (await import(module)) as { handler?: JobHandler };
      if (mod.handler === undefined || typeof mod.handler.run !== 'function') {
        throw new DeterministicJobError(`module ${module} exports no job handler`);
      }
      const deps = mod.handler.createDeps === undefined ? undefined : await mod.handler.createDeps(init.config, log);
      return { handler: mod.handler, deps };
    })();
    // A failed load (e.g. the database was briefly unreachable) is retried by the next job.
    entry.catch(() => loaded.delete(module));
    loaded.set(module, entry);
  }
  return entry;
}

/**
 * A job's view of the outside. Progress of one stage is throttled here, because a fit loop may
 * report on every iteration: a stage change always goes out at once, the same stage at most every
 * `progressThrottleMs`.
 */
function jobContext(jobId: string, attempt: number, signal: AbortSignal): JobContext {
  let lastStage = '';
  let lastSent = 0;
  return {
    jobId,
    attempt,
    signal,
    threads: init.jobThreads,
    progress(percent, stage, message) {
      const now = Date.now();
      if (stage === lastStage && now - lastSent < init.progressThrottleMs) return;
      lastStage = stage;
      lastSent = now;
      const p = Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : 0;
      post({ type: 'progress', jobId, percent: p, stage, message: message ?? null });
    },
    log(line) {
      post({ type: 'log', jobId, at: Date.now(), line: String(line) });
    },
    runStarted(runId) {
      post({ type: 'runStarted', jobId, runId });
    },
  };
}

async function run(msg: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  const controller = new AbortController();
  current = { jobId: msg.jobId, controller };
  // Covers handlers that await I/O; a synchronous fit loop proves liveness through its progress calls.
  const beat = setInterval(() => post({ type: 'heartbeat', jobId: msg.jobId }), init.heartbeatMs);
  try {
    const { handler, deps } = await load(msg.module);
    post({ type: 'loaded', jobId: msg.jobId });
    // Training is batch work: when it competes for a core with the event loop of the parent
    // (requests, the queue's heartbeats), the parent goes first. Lowered here, once the process
    // has started and loaded the handler (a second or less of work, which at nice 10 on cores
    // that serving keeps busy took many times longer), for every thread of the process; threads
    // the job starts (the forest's tree builders, gradient boosting's histogram threads) inherit it.
    lowerProcessPriority(TRAINING_NICE);
    const result = await handler.run(msg.payload as never, jobContext(msg.jobId, msg.attempt, controller.signal), deps);
    post({ type: 'done', jobId: msg.jobId, result });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    post({
      type: 'failed',
      jobId: msg.jobId,
      message: message === '' ? 'job failed' : message,
      deterministic: err instanceof DeterministicJobError || (err instanceof Error && err.name === 'DeterministicJobError'),
      cancelled: controller.signal.aborted,
    });
  } finally {
    clearInterval(beat);
    current = undefined;
  }
}

async function shutdown(): Promise<void> {
  for (const entry of loaded.values()) {
    try {
      const { handler, deps } = await entry;
      await handler.closeDeps?.(deps);
    } catch (err) {
      log.warn({ err }, 'closing job handler dependencies failed');
    }
  }
  post({ type: 'closed' }, () => process.exit(0));
}

process.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'run':
      void run(msg);
      break;
    case 'cancel':
      if (current?.jobId === msg.jobId) current.controller.abort(new Error('job cancelled'));
      break;
    case 'shutdown':
      void shutdown();
      break;
    case 'init':
      init = msg.init;
      log = createLogger(init.config, { pretty: false });
      post({ type: 'ready' });
      // For the parent's `training_worker_resident_memory_bytes`: a job's memory is this process's.
      post({ type: 'memory', rss: process.memoryUsage.rss() });
      setInterval(() => post({ type: 'memory', rss: process.memoryUsage.rss() }), init.heartbeatMs);
      break;
  }
});
