/**
 * Entry of a training worker thread. It imports the handler module a job names (once per thread),
 * builds that handler's dependencies once, and runs one job at a time, reporting progress, log
 * lines and a heartbeat to the parent by message. CPU-heavy fitting happens here, never on the
 * API's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../platform/logging.ts';
import type { JobHandler } from './handlers.ts';
import { DeterministicJobError, type JobContext } from './job.types.ts';
import { lowerThreadPriority } from '../util/threads.ts';
import type { FromWorker, ToWorker, WorkerThreadInit } from './worker.protocol.ts';

/** Scheduling priority (nice) of a training thread; see `lowerThreadPriority`. */
const TRAINING_NICE = 10;

if (parentPort === null) throw new Error('worker.thread.ts must run in a worker thread');
const port = parentPort;
const init = workerData as WorkerThreadInit;
const log = createLogger(init.config, { pretty: false });
// Training is batch work: when it competes for a core with the event loop (requests, the queue's
// heartbeats), the event loop goes first. The forest's tree builders, started from this thread,
// inherit the priority.
lowerThreadPriority(TRAINING_NICE);

interface LoadedHandler {
  readonly handler: JobHandler;
  readonly deps: unknown;
}
const loaded = new Map<string, Promise<LoadedHandler>>();
let current: { jobId: string; controller: AbortController } | undefined;

function post(message: FromWorker): void {
  port.postMessage(message);
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
  post({ type: 'closed' });
  port.close();
}

port.on('message', (msg: ToWorker) => {
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
  }
});
post({ type: 'ready' });
