/**
 * What the tracking services share: inputs, limits, row lookups and the mapping of rows to
 * MLflow's entities. Internal to the tracking feature.
 */
import type { Kysely } from 'kysely';
import { notFound } from '../platform/errors.ts';
import type { Database } from '../store/schema.ts';
import {
  experimentsRepository as experimentsRepo,
  runsRepository as runsRepo,
  type ExperimentRow,
  type LatestMetricRow,
  type MetricRow,
  type RunRow,
} from './tracking.repository.ts';
import {
  type Experiment,
  type Metric,
  type Param,
  type RunInfo,
  type RunStatus,
  type RunTag,
  type ViewType,
} from './tracking.types.ts';
import {
  invalidParameter,
} from './validation.ts';

/** Where run artifacts live; the registry resolves `runs:/<run_id>/<path>` sources from here. */
export function runArtifactPrefix(runId: string): string {
  return `runs/${runId}/artifacts/`;
}

/** Experiments' default artifact location: run URIs below it map 1:1 onto artifact store keys. */
export const DEFAULT_ARTIFACT_LOCATION = 'mlflow-artifacts:/runs';

/** MLflow's bound on `max_results` of searches. */
export const MAX_SEARCH_RESULTS = 50_000;
/** MLflow's page size for metric history. */
export const MAX_HISTORY_RESULTS = 25_000;

/**
 * Metrics that make a run "best" in experiment listings, in order of precedence: the first of
 * these that some candidate run of the experiment has decides, with its goal. An experiment tag
 * `modelplane.primary_metric` (and optionally `modelplane.primary_metric_goal` = max|min)
 * overrides the list. With no such metric, the best run is the most recently started one.
 */
export const PRIMARY_METRICS: readonly { readonly key: string; readonly goal: 'max' | 'min' }[] = [
  { key: 'accuracy', goal: 'max' },
  { key: 'f1', goal: 'max' },
  { key: 'roc_auc', goal: 'max' },
  { key: 'r2', goal: 'max' },
  { key: 'rmse', goal: 'min' },
  { key: 'mae', goal: 'min' },
  { key: 'mse', goal: 'min' },
  { key: 'log_loss', goal: 'min' },
  { key: 'loss', goal: 'min' },
];
export const PRIMARY_METRIC_TAG = 'modelplane.primary_metric';
export const PRIMARY_METRIC_GOAL_TAG = 'modelplane.primary_metric_goal';
/** Runs considered for "best": failed and killed runs carry partial metrics. */
export const BEST_RUN_STATUSES: readonly RunStatus[] = ['FINISHED', 'RUNNING', 'SCHEDULED'];

export interface CreateExperimentInput {
  readonly name: string;
  /** Stored and reported; run artifacts always go to the server's artifact store. */
  readonly artifactLocation?: string;
  readonly tags?: Readonly<Record<string, string>> | readonly RunTag[];
}

export interface CreateRunInput {
  /** Experiment by id; else `experimentName`; else the Default experiment "0". */
  readonly experimentId?: string;
  readonly experimentName?: string;
  /** Create the experiment named by `experimentName` when it does not exist. */
  readonly createExperiment?: boolean;
  /** Defaults to the `mlflow.runName` tag, else a random `adjective-noun-NNN`. */
  readonly runName?: string;
  /** ms; defaults to now. */
  readonly startTime?: number;
  readonly userId?: string;
  readonly status?: RunStatus;
  readonly tags?: Readonly<Record<string, string>> | readonly RunTag[];
}

export interface UpdateRunInput {
  readonly status?: RunStatus;
  readonly endTime?: number | null;
  readonly runName?: string;
}

/** One metric point to log; `timestamp` defaults to now, `step` to 0. */
export interface MetricInput {
  readonly key: string;
  readonly value: number;
  readonly timestamp?: number;
  readonly step?: number;
}

export interface LogBatchInput {
  readonly metrics?: readonly MetricInput[];
  readonly params?: readonly Param[];
  readonly tags?: readonly RunTag[];
}

export interface SearchRunsInput {
  readonly experimentIds: readonly string[];
  readonly filter?: string;
  readonly orderBy?: readonly string[];
  /** 1..50000, default 1000 (MLflow). */
  readonly maxResults?: number;
  readonly pageToken?: string;
  readonly runViewType?: ViewType;
}

export interface SearchExperimentsInput {
  readonly viewType?: ViewType;
  readonly filter?: string;
  readonly orderBy?: readonly string[];
  readonly maxResults?: number;
  readonly pageToken?: string;
}

export const stagesOf = (view: ViewType = 'ACTIVE_ONLY'): string[] =>
  view === 'ALL' ? ['active', 'deleted'] : view === 'DELETED_ONLY' ? ['deleted'] : ['active'];

export const tagList = (tags: CreateRunInput['tags']): RunTag[] =>
  tags === undefined ? [] : Array.isArray(tags) ? [...(tags as readonly RunTag[])] : Object.entries(tags).map(([key, value]) => ({ key, value: value as string }));

export function parseExperimentId(id: string): number | undefined {
  return /^[0-9]{1,15}$/.test(id) ? Number(id) : undefined;
}

export function checkMaxResults(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw invalidParameter(`max_results must be an integer between 1 and ${max}, got ${value}`);
  return value;
}

export function toExperiment(row: ExperimentRow, tags: Readonly<Record<string, string>>): Experiment {
  return {
    experimentId: String(row.experiment_id),
    name: row.name,
    artifactLocation: row.artifact_location,
    lifecycleStage: row.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
    creationTime: Number(row.creation_time),
    lastUpdateTime: Number(row.last_update_time),
    tags,
  };
}

export function toRunInfo(row: RunRow): RunInfo {
  return {
    runId: row.run_id,
    runName: row.run_name,
    experimentId: String(row.experiment_id),
    userId: row.user_id,
    status: row.status as RunStatus,
    startTime: row.start_time === null ? null : Number(row.start_time),
    endTime: row.end_time === null ? null : Number(row.end_time),
    artifactUri: row.artifact_uri,
    lifecycleStage: row.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
    deletedTime: row.deleted_time === null ? null : Number(row.deleted_time),
  };
}

export function toMetric(row: Pick<MetricRow, 'key' | 'value' | 'timestamp' | 'step' | 'is_nan'>): Metric {
  return { key: row.key, value: row.is_nan === 1 ? Number.NaN : Number(row.value), timestamp: Number(row.timestamp), step: Number(row.step) };
}

/** MLflow's order of metric points: (step, timestamp, value), NaN counting as 0 as it is stored. */
export function greaterPoint(a: LatestMetricRow, b: LatestMetricRow): boolean {
  if (a.step !== b.step) return a.step > b.step;
  if (a.timestamp !== b.timestamp) return a.timestamp > b.timestamp;
  return a.value > b.value;
}

export type Db = Kysely<Database>;


export async function experimentRow(db: Db, experimentId: string): Promise<ExperimentRow> {
  const id = parseExperimentId(experimentId);
  const row = id === undefined ? undefined : await experimentsRepo.byId(db, id);
  if (row === undefined) throw notFound(`experiment with id '${experimentId}' not found`);
  return row;
}
export async function activeExperimentRow(db: Db, experimentId: string): Promise<ExperimentRow> {
  const row = await experimentRow(db, experimentId);
  if (row.lifecycle_stage !== 'active') throw invalidParameter(`the experiment ${experimentId} must be in the 'active' state; it is deleted`);
  return row;
}
export async function experimentFromRow(db: Db, row: ExperimentRow): Promise<Experiment> {
  const tags = await experimentTags(db, [row.experiment_id]);
  return toExperiment(row, tags.get(row.experiment_id) ?? {});
}
export async function experimentTags(db: Db, ids: readonly number[]): Promise<Map<number, Record<string, string>>> {
  const out = new Map<number, Record<string, string>>();
  for (const t of await experimentsRepo.tagsOf(db, ids)) {
    const id = Number(t.experiment_id);
    let tags = out.get(id);
    if (tags === undefined) out.set(id, (tags = {}));
    tags[t.key] = t.value;
  }
  return out;
}
export async function runRow(db: Db, runId: string): Promise<RunRow> {
  const row = typeof runId === 'string' && runId !== '' ? await runsRepo.byId(db, runId) : undefined;
  if (row === undefined) throw notFound(`run '${runId}' not found`);
  return row;
}
export async function activeRunRow(db: Db, runId: string): Promise<RunRow> {
  const row = await runRow(db, runId);
  if (row.lifecycle_stage !== 'active') throw invalidParameter(`the run ${runId} must be in the 'active' state; it is deleted`);
  return row;
}
