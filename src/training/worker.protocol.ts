/**
 * Messages between the job runner (parent) and a training worker thread. One thread runs one job
 * at a time; every message names the job so a late message from a previous job is ignored.
 */
import type { Config } from '../config.ts';
import type { JobResult } from './job.types.ts';

/** `workerData` of a training thread. */
export interface WorkerThreadInit {
  readonly config: Config;
  /** How often the thread says it is alive while a job runs (ms). */
  readonly heartbeatMs: number;
  /** Minimum gap between progress messages of the same stage (ms). */
  readonly progressThrottleMs: number;
  /** `JobContext.threads` of every job on this thread. */
  readonly jobThreads: number;
}

export type ToWorker =
  | { readonly type: 'run'; readonly jobId: string; readonly attempt: number; readonly module: string; readonly payload: unknown }
  | { readonly type: 'cancel'; readonly jobId: string }
  | { readonly type: 'shutdown' };

export type FromWorker =
  | { readonly type: 'progress'; readonly jobId: string; readonly percent: number; readonly stage: string; readonly message: string | null }
  | { readonly type: 'log'; readonly jobId: string; readonly at: number; readonly line: string }
  | { readonly type: 'heartbeat'; readonly jobId: string }
  /** The attempt's tracking run exists (the job row records it, so a dead attempt's run can be ended). */
  | { readonly type: 'runStarted'; readonly jobId: string; readonly runId: string }
  | { readonly type: 'done'; readonly jobId: string; readonly result: JobResult }
  | { readonly type: 'failed'; readonly jobId: string; readonly message: string; readonly deterministic: boolean; readonly cancelled: boolean }
  /** The thread finished loading and takes jobs. */
  | { readonly type: 'ready' }
  | { readonly type: 'closed' };
