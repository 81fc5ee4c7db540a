/**
 * Messages between the job runner (parent) and a training worker process (worker.child.ts) over
 * IPC. One process runs one job at a time; every message names the job so a late message from a
 * previous job is ignored.
 */
import type { Config } from '../config.ts';
import type { JobResult } from './job.types.ts';

/** What a training process is told first (the `init` message). */
export interface WorkerInit {
  readonly config: Config;
  /** How often the process says it is alive while a job runs, and reports its memory (ms). */
  readonly heartbeatMs: number;
  /** Minimum gap between progress messages of the same stage (ms). */
  readonly progressThrottleMs: number;
  /** `JobContext.threads` of every job in this process. */
  readonly jobThreads: number;
}

export type ToWorker =
  | { readonly type: 'init'; readonly init: WorkerInit }
  | { readonly type: 'run'; readonly jobId: string; readonly attempt: number; readonly module: string; readonly payload: unknown }
  | { readonly type: 'cancel'; readonly jobId: string }
  | { readonly type: 'shutdown' };

export type FromWorker =
  | { readonly type: 'progress'; readonly jobId: string; readonly percent: number; readonly stage: string; readonly message: string | null }
  | { readonly type: 'log'; readonly jobId: string; readonly at: number; readonly line: string }
  | { readonly type: 'heartbeat'; readonly jobId: string }
  /** The job's handler module and its dependencies are loaded; the job runs now. */
  | { readonly type: 'loaded'; readonly jobId: string }
  /** The attempt's tracking run exists (the job row records it, so a dead attempt's run can be ended). */
  | { readonly type: 'runStarted'; readonly jobId: string; readonly runId: string }
  | { readonly type: 'done'; readonly jobId: string; readonly result: JobResult }
  | { readonly type: 'failed'; readonly jobId: string; readonly message: string; readonly deterministic: boolean; readonly cancelled: boolean }
  /** The process's resident memory (bytes), sent every `heartbeatMs` for as long as it lives. */
  | { readonly type: 'memory'; readonly rss: number }
  /** The process has its configuration and takes jobs. */
  | { readonly type: 'ready' }
  | { readonly type: 'closed' };
