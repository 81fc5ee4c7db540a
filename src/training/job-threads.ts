/**
 * How many threads one training job builds trees on (the random forest's workers, gradient
 * boosting's histogram threads) when its parameters leave `n_jobs` unset.
 *
 * A process that also serves predictions keeps one core for its event loop: a forest grown on
 * every core left `/predict` waiting behind the tree builders. The cores left are shared by the
 * jobs that can run at once on the host's serving processes (`TRAINING_WORKERS` per process, times
 * the processes of `serve --workers N`), so concurrent jobs do not add up to more threads than
 * cores. A `modelplane worker` serves nothing and shares every core among its `--concurrency` jobs.
 * `TRAINING_THREADS` wins over both.
 */
import os from 'node:os';

export interface JobThreadsOptions {
  /** `TRAINING_THREADS`: used as it is when set. */
  readonly configured?: number | undefined;
  /** Whether the process serves HTTP (one core is kept for it). */
  readonly serving: boolean;
  /** Jobs that may run at the same time on the cores counted. */
  readonly concurrentJobs: number;
  /** Cores the process may run on; default `os.availableParallelism()`. */
  readonly cores?: number;
}

/** Threads per job (at least 1); see the module comment. */
export function jobThreads(options: JobThreadsOptions): number {
  if (options.configured !== undefined) return options.configured;
  const cores = options.cores ?? os.availableParallelism();
  const free = options.serving ? cores - 1 : cores;
  return Math.max(1, Math.floor(free / Math.max(1, options.concurrentJobs)));
}
