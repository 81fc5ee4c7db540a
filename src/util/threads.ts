import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread on the entry module `entry` (a path without extension, relative to
 * `callerUrl`). Compiled JS runs the `.js` entry plainly; from TypeScript sources the thread first
 * registers tsx's loader in itself and then imports the `.ts` entry, because Node 20 does not apply
 * `--import tsx` given in a worker's execArgv.
 */
export function spawnWorker(callerUrl: string, entry: string, workerData: unknown): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`${entry}.js`, callerUrl), { workerData });
  const entryHref = siblingModule(callerUrl, entry);
  let tsxApi = 'tsx/esm/api';
  try {
    tsxApi = import.meta.resolve(tsxApi);
  } catch {
    // Leave the bare specifier to the thread's own resolution.
  }
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entryHref)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/**
 * URL of module `entry` (a path without extension, relative to `callerUrl`) with the caller's own
 * extension: `.ts` when running from the sources, `.js` when compiled. For modules that another
 * thread imports by URL.
 */
export function siblingModule(callerUrl: string, entry: string): string {
  return new URL(`${entry}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl).href;
}
