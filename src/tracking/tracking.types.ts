/**
 * Domain objects of experiment tracking, named after MLflow's entities (Experiment, Run, RunInfo,
 * RunData, Metric, Param, RunTag, RunInputs, RunOutputs) so that the MLflow-compatible API is a
 * renaming to snake_case and nothing more. Times are integer milliseconds since the epoch here;
 * the native routes render them as ISO strings.
 */

export const LIFECYCLE_STAGES = ['active', 'deleted'] as const;
export type LifecycleStage = (typeof LIFECYCLE_STAGES)[number];

/** MLflow's `ViewType`: which lifecycle stages a search returns. */
export const VIEW_TYPES = ['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL'] as const;
export type ViewType = (typeof VIEW_TYPES)[number];

export const RUN_STATUSES = ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Statuses after which a run is over (a training job sets one of these with `end_time`). */
export const TERMINAL_STATUSES: readonly RunStatus[] = ['FINISHED', 'FAILED', 'KILLED'];

/** The experiment every run lands in when none is named, created by the migration. */
export const DEFAULT_EXPERIMENT_ID = '0';
export const DEFAULT_EXPERIMENT_NAME = 'Default';

/** The tag MLflow keeps in sync with `run_name`. */
export const RUN_NAME_TAG = 'mlflow.runName';

export interface Experiment {
  /** Numeric string, as MLflow. */
  readonly experimentId: string;
  readonly name: string;
  readonly artifactLocation: string;
  readonly lifecycleStage: LifecycleStage;
  readonly creationTime: number;
  readonly lastUpdateTime: number;
  readonly tags: Readonly<Record<string, string>>;
}

export interface RunInfo {
  /** 32 lowercase hex characters. */
  readonly runId: string;
  readonly runName: string;
  readonly experimentId: string;
  readonly userId: string;
  readonly status: RunStatus;
  readonly startTime: number | null;
  readonly endTime: number | null;
  /** `mlflow-artifacts:/runs/<run_id>/artifacts`: the artifact store key prefix, as a URI. */
  readonly artifactUri: string;
  readonly lifecycleStage: LifecycleStage;
  /** When the run was soft-deleted, else `null`. */
  readonly deletedTime: number | null;
}

/** One point of a metric. `value` may be NaN or ±Infinity, as MLflow allows. */
export interface Metric {
  readonly key: string;
  readonly value: number;
  readonly timestamp: number;
  readonly step: number;
}

export interface Param {
  readonly key: string;
  readonly value: string;
}

export interface RunTag {
  readonly key: string;
  readonly value: string;
}

export interface RunData {
  /** Latest value of every metric (MLflow's rule: greatest (step, timestamp, value)). */
  readonly metrics: readonly Metric[];
  readonly params: readonly Param[];
  readonly tags: readonly RunTag[];
}

/** A modelplane dataset version, shaped like MLflow's `Dataset`. */
export interface DatasetRef {
  readonly name: string;
  readonly version: number;
  /** Content hash when known (the dataset version's sha256), else the version as a string. */
  readonly digest: string;
  readonly sourceType: 'modelplane';
  /** `datasets/<name>/versions/<version>`. */
  readonly source: string;
}

export interface DatasetInput {
  readonly dataset: DatasetRef;
  /** `mlflow.data.context = training`, as MLflow tags training inputs. */
  readonly tags: readonly RunTag[];
}

export interface RunInputs {
  readonly datasetInputs: readonly DatasetInput[];
}

/** A registered model version produced by a run. */
export interface ModelOutput {
  readonly name: string;
  readonly version: number;
}

export interface RunOutputs {
  readonly modelVersions: readonly ModelOutput[];
}

export interface Run {
  readonly info: RunInfo;
  readonly data: RunData;
  readonly inputs: RunInputs;
  readonly outputs: RunOutputs;
}

/** One entry of a run's artifact folder listing (MLflow's `FileInfo`). */
export interface FileInfo {
  /** Path relative to the run's artifact root. */
  readonly path: string;
  readonly isDir: boolean;
  /** Bytes, for files. */
  readonly fileSize?: number;
}

/** A page of results and the token of the next one, if any. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextPageToken?: string;
}

/** Run count and best run of an experiment, shown by `GET /experiments`. */
export interface ExperimentSummary {
  readonly runCount: number;
  readonly bestRun: BestRun | null;
}

export interface BestRun {
  readonly runId: string;
  readonly runName: string;
  /** The metric that made it best, or `null` when it is only the latest run. */
  readonly metric: { readonly key: string; readonly value: number; readonly goal: 'max' | 'min' } | null;
}
