/**
 * The job catalogue: which kinds of job a process can run and which module runs each. Handlers
 * run inside worker processes (a separate module graph), so a kind names its handler by module URL;
 * the worker imports that module and calls its exported `handler`. The catalogue is a value built
 * by the composition root (`createJobCatalogue`) and handed to the queue; tests build their own.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { JobContext, JobResult } from './job.types.ts';

/** Any job payload: the queue only looks at `kind`. */
export interface AnyJobPayload {
  readonly kind: string;
}

/**
 * What a handler module exports as `handler`. `createDeps` runs once per worker process (open the
 * store, artifacts, ...); `run` once per job attempt. Throw `DeterministicJobError` for failures
 * that a retry cannot fix; any other error is retried while attempts remain.
 */
export interface JobHandler<P extends AnyJobPayload = AnyJobPayload, D = unknown> {
  createDeps?(config: Config, log: Logger): Promise<D>;
  closeDeps?(deps: D): Promise<void>;
  run(payload: P, job: JobContext, deps: D): Promise<JobResult>;
}

/** One kind of job the queue can run. */
export interface JobKind {
  readonly kind: string;
  /** URL (`import.meta.url` style) of the module whose `handler` export runs this kind. */
  readonly module: string;
  /** Attempts before a transiently failing job is failed for good (default 2: one retry). */
  readonly maxAttempts?: number;
}

/** Default number of attempts of a job: the first run plus one retry of a transient failure. */
export const DEFAULT_MAX_ATTEMPTS = 2;

/** The kinds of job one process runs; immutable once built. */
export class JobCatalogue {
  private readonly kinds: ReadonlyMap<string, JobKind>;

  constructor(kinds: readonly JobKind[]) {
    this.kinds = new Map(kinds.map((k) => [k.kind, k]));
  }

  /** The definition of `kind`, if this process runs it. */
  get(kind: string): JobKind | undefined {
    return this.kinds.get(kind);
  }

  /** Names of every kind (workers claim only jobs they can run). */
  names(): string[] {
    return [...this.kinds.keys()];
  }

  /** Attempts a new job of `kind` gets. */
  maxAttempts(kind: string): number {
    return this.kinds.get(kind)?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  }
}
