import { readdirSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';

/**
 * Starts a worker thread on the entry module `entry` (a path without extension, relative to
 * `callerUrl`). Compiled JS runs the `.js` entry plainly; from TypeScript sources the thread first
 * registers tsx's loader in itself and then imports the `.ts` entry, because Node 20 does not apply
 * `--import tsx` given in a worker's execArgv. `transferList` moves objects of `workerData` (such
 * as a MessagePort) to the thread; `resourceLimits` bounds its heap.
 */
export function spawnWorker(
  callerUrl: string,
  entry: string,
  workerData: unknown,
  transferList?: readonly TransferListItem[],
  resourceLimits?: ResourceLimits,
): Worker {
  const options = { workerData, transferList: transferList ? [...transferList] : undefined, ...(resourceLimits === undefined ? {} : { resourceLimits }) };
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`${entry}.js`, callerUrl), options);
  const entryHref = siblingModule(callerUrl, entry);
  let tsxApi = 'tsx/esm/api';
  try {
    tsxApi = import.meta.resolve(tsxApi);
  } catch {
    // Leave the bare specifier to the thread's own resolution.
  }
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entryHref)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/**
 * URL of module `entry` (a path without extension, relative to `callerUrl`) with the caller's own
 * extension: `.ts` when running from the sources, `.js` when compiled. For modules that another
 * thread imports by URL.
 */
export function siblingModule(callerUrl: string, entry: string): string {
  return new URL(`${entry}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl).href;
}

/**
 * Lowers the calling thread's scheduling priority to at least `nice` (the higher, the less CPU it
 * gets when threads compete) and returns the value now in force. Only on Linux, where each thread
 * has a priority of its own and `/proc/thread-self` names it; elsewhere the priority belongs to
 * the whole process, so nothing changes and the result is `undefined`. Threads this one starts
 * afterwards inherit the value. Lowering needs no privilege; raising it back would.
 */
export function lowerThreadPriority(nice: number): number | undefined {
  let tid: number;
  try {
    tid = Number(path.basename(readlinkSync('/proc/thread-self')));
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(tid) || tid <= 0) return undefined;
  try {
    if (os.getPriority(tid) < nice) os.setPriority(tid, nice);
    return os.getPriority(tid);
  } catch {
    return undefined;
  }
}

/**
 * Lowers the scheduling priority of the whole calling process to at least `nice`, for a process
 * that only does batch work. On Linux each thread has its own priority, so every thread alive now
 * is lowered (V8's and libuv's threads started with the process), and threads started later
 * inherit it from the thread that starts them; elsewhere the priority is the process's. Returns
 * the value now in force on the calling thread, `undefined` where it could not be set.
 */
export function lowerProcessPriority(nice: number): number | undefined {
  let tids: number[];
  try {
    tids = readdirSync('/proc/self/task').map(Number);
  } catch {
    try {
      if (os.getPriority() < nice) os.setPriority(nice);
      return os.getPriority();
    } catch {
      return undefined;
    }
  }
  for (const tid of tids) {
    try {
      if (Number.isSafeInteger(tid) && tid > 0 && os.getPriority(tid) < nice) os.setPriority(tid, nice);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return lowerThreadPriority(nice);
}

/**
 * Threads a trainer runs on for an `n_jobs` parameter (scikit-learn's convention): `null` or
 * undefined = min(available parallelism, 4), `-1` = every core, a positive count as given.
 * @throws RangeError for any other value
 */
export function resolveJobs(nJobs: number | null | undefined): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (nJobs === null || nJobs === undefined) return Math.max(1, Math.min(cores, 4));
  if (nJobs === -1) return Math.max(1, cores);
  if (Number.isInteger(nJobs) && nJobs >= 1) return nJobs;
  throw new RangeError(`invalid n_jobs: ${nJobs}`);
}
