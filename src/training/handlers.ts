/**
 * The job catalogue: which kinds of job exist, how a request for one is validated before it is
 * queued, and which module runs it. Handlers run inside worker threads (a separate module graph),
 * so a kind names its handler by module URL; the thread imports that module and calls its
 * exported `handler`. The training pipeline registers kind `train`; tests register their own.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { AppContext } from '../platform/context.ts';
import type { JobContext, JobResult } from './job.types.ts';

/** Any job payload: the queue only looks at `kind`. */
export interface AnyJobPayload {
  readonly kind: string;
}

/**
 * What a handler module exports as `handler`. `createDeps` runs once per worker thread (open the
 * store, artifacts, ...); `run` once per job attempt. Throw `DeterministicJobError` for failures
 * that a retry cannot fix; any other error is retried while attempts remain.
 */
export interface JobHandler<P extends AnyJobPayload = AnyJobPayload, D = unknown> {
  createDeps?(config: Config, log: Logger): Promise<D>;
  closeDeps?(deps: D): Promise<void>;
  run(payload: P, job: JobContext, deps: D): Promise<JobResult>;
}

/** One registered kind of job. */
export interface JobKind<P extends AnyJobPayload = AnyJobPayload> {
  readonly kind: P['kind'];
  /** URL (`import.meta.url` style) of the module whose `handler` export runs this kind. */
  readonly module: string;
  /**
   * Up-front checks of a submitted request in the API process (throws `AppError` 400/404);
   * returns the payload to queue. Kinds without it cannot be submitted over HTTP.
   */
  readonly validate?: (request: unknown, ctx: AppContext, actor: string) => Promise<P>;
  /** Attempts before a transiently failing job is failed for good (default 2: one retry). */
  readonly maxAttempts?: number;
}

const kinds = new Map<string, JobKind>();

/**
 * Registers (or replaces) a kind of job in this process. Returns a function that removes it again
 * (tests). Every process that runs workers must register the same kinds as the API.
 */
export function registerJobKind<P extends AnyJobPayload>(definition: JobKind<P>): () => void {
  const def = definition as unknown as JobKind;
  kinds.set(def.kind, def);
  return () => {
    if (kinds.get(def.kind) === def) kinds.delete(def.kind);
  };
}

/** The registered definition of `kind`, if any. */
export function getJobKind(kind: string): JobKind | undefined {
  return kinds.get(kind);
}

/** Names of every registered kind (workers claim only jobs they can run). */
export function registeredJobKinds(): string[] {
  return [...kinds.keys()];
}

/** Default number of attempts of a job: the first run plus one retry of a transient failure. */
export const DEFAULT_MAX_ATTEMPTS = 2;
