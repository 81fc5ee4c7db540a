import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { Task } from '../ml/types.ts';
import type { AlgorithmParams } from './pipeline-params.ts';

/**
 * The contract between the job system (queues, workers, status, cancellation) and the training
 * pipeline that a job runs. The job system never looks inside a payload; the pipeline never
 * touches queues.
 */

export const TrainRequest = Type.Object(
  {
    experiment_name: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    run_name: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    dataset: Type.Object(
      { name: Type.String({ minLength: 1, maxLength: 200 }), version: Type.Optional(Type.Integer({ minimum: 1 })) },
      { additionalProperties: false },
    ),
    target: Type.String({ minLength: 1 }),
    features: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    task: Type.Optional(Type.Union([Type.Literal('classification'), Type.Literal('regression')])),
    algorithm: Type.Union([
      Type.Literal('logistic_regression'),
      Type.Literal('linear_regression'),
      Type.Literal('decision_tree'),
      Type.Literal('random_forest'),
      Type.Literal('gradient_boosting'),
    ]),
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    validation: Type.Optional(
      Type.Object(
        {
          test_size: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
          seed: Type.Optional(Type.Integer()),
          stratify: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    register_as: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    promote_to: Type.Optional(Type.Union([Type.Literal('Staging'), Type.Literal('Production')])),
    promotion_gate: Type.Optional(
      Type.Object(
        { metric: Type.String({ minLength: 1 }), min: Type.Optional(Type.Number()), max: Type.Optional(Type.Number()) },
        { additionalProperties: false },
      ),
    ),
    tags: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: false, $id: 'TrainRequest' },
);
export type TrainRequest = Static<typeof TrainRequest>;

/**
 * A training job as queued: the request with everything the API resolved when it checked it (the
 * dataset version, the task, the feature columns, the effective parameters), so the worker runs
 * exactly what was accepted and recomputes none of it.
 */
export interface TrainJob {
  readonly kind: 'train';
  readonly request: TrainRequest;
  readonly datasetVersion: number;
  readonly task: Task;
  readonly features: readonly string[];
  readonly params: AlgorithmParams;
  /** Key id of whoever submitted it (run user, registry history). */
  readonly actor: string;
}

/** The typed job catalogue (one kind for now). */
export type JobPayload = TrainJob;

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** What a running job may report. */
export interface JobContext {
  readonly jobId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborted when the job is cancelled; the pipeline checks it between steps and inside fit loops. */
  readonly signal: AbortSignal;
  /**
   * Threads the job may build trees on when its params leave `n_jobs` unset: what the process can
   * spare (`jobThreads`: a serving process keeps a core for requests).
   */
  readonly threads: number;
  progress(percent: number, stage: string, message?: string): void;
  log(line: string): void;
  /**
   * Tells the job system which tracking run this attempt writes to, as soon as it exists, so an
   * attempt that dies (its thread or process gone) can have its run ended instead of left RUNNING.
   */
  runStarted?(runId: string): void;
}

/** What a finished job produced (shown in `/train/status/{id}`). */
export interface JobResult {
  readonly runId: string | null;
  readonly experimentName: string | null;
  readonly model: { readonly name: string; readonly version: number; readonly stage: string } | null;
  readonly metrics: Readonly<Record<string, number>>;
}

/**
 * A failure that retrying cannot fix (bad data, bad parameters, a failed export check): the job
 * system fails the job at once instead of retrying it.
 */
export class DeterministicJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeterministicJobError';
  }
}
