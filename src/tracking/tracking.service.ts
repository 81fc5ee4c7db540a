/**
 * Experiment tracking with MLflow's semantics: experiments and runs are soft-deleted and
 * restorable, a param is immutable once logged, metric history is append-only and the latest
 * value of a metric follows MLflow's "greatest (step, timestamp, value)" rule. The native routes,
 * the training pipeline and the MLflow-compatible API all go through this one service.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import { ArtifactNotFoundError, InvalidArtifactKeyError } from '../artifacts/errors.ts';
import { AppError, conflict, notFound } from '../platform/errors.ts';
import { decodePageToken, encodePageToken } from '../platform/schemas.ts';
import type { Store } from '../store/database.ts';
import type { Database } from '../store/schema.ts';
import { randomRunName } from './run-names.ts';
import { EXPERIMENT_SEARCH, RUN_SEARCH, parseFilter, parseOrderBy } from './search-filter.ts';
import {
  experimentsRepository as experimentsRepo,
  isUniqueViolation,
  runDataRepository as dataRepo,
  runsRepository as runsRepo,
  type ExperimentRow,
  type LatestMetricRow,
  type MetricRow,
  type RunRow,
} from './tracking.repository.ts';
import {
  DEFAULT_EXPERIMENT_ID,
  RUN_NAME_TAG,
  RUN_STATUSES,
  type BestRun,
  type Experiment,
  type ExperimentSummary,
  type FileInfo,
  type Metric,
  type Page,
  type Param,
  type Run,
  type RunInfo,
  type RunStatus,
  type RunTag,
  type ViewType,
} from './tracking.types.ts';
import {
  LIMITS,
  invalidParameter,
  validateArtifactPath,
  validateExperimentName,
  validateInteger,
  validateKey,
  validateMetricValue,
  validateParamValue,
  validateRunName,
  validateTagValue,
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
const BEST_RUN_STATUSES: readonly RunStatus[] = ['FINISHED', 'RUNNING', 'SCHEDULED'];

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

const stagesOf = (view: ViewType = 'ACTIVE_ONLY'): string[] =>
  view === 'ALL' ? ['active', 'deleted'] : view === 'DELETED_ONLY' ? ['deleted'] : ['active'];

const tagList = (tags: CreateRunInput['tags']): RunTag[] =>
  tags === undefined ? [] : Array.isArray(tags) ? [...(tags as readonly RunTag[])] : Object.entries(tags).map(([key, value]) => ({ key, value: value as string }));

function parseExperimentId(id: string): number | undefined {
  return /^[0-9]{1,15}$/.test(id) ? Number(id) : undefined;
}

function checkMaxResults(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw invalidParameter(`max_results must be an integer between 1 and ${max}, got ${value}`);
  return value;
}

function toExperiment(row: ExperimentRow, tags: Readonly<Record<string, string>>): Experiment {
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

function toRunInfo(row: RunRow): RunInfo {
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

function toMetric(row: Pick<MetricRow, 'key' | 'value' | 'timestamp' | 'step' | 'is_nan'>): Metric {
  return { key: row.key, value: row.is_nan === 1 ? Number.NaN : Number(row.value), timestamp: Number(row.timestamp), step: Number(row.step) };
}

/** MLflow's order of metric points: (step, timestamp, value), NaN counting as 0 as it is stored. */
function greaterPoint(a: LatestMetricRow, b: LatestMetricRow): boolean {
  if (a.step !== b.step) return a.step > b.step;
  if (a.timestamp !== b.timestamp) return a.timestamp > b.timestamp;
  return a.value > b.value;
}

type Db = Kysely<Database>;

/** The tracking service. Construct once per store (see `getTracking`). */
export class TrackingService {
  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
    /** Clock in ms, injectable for tests. */
    private readonly now: () => number = Date.now,
  ) {}

  private get db(): Db {
    return this.store.db;
  }

  // -------------------------------------------------------------------------------------------
  // Experiments

  /** Creates an experiment; 409 when the name is taken (also by a deleted experiment). */
  async createExperiment(input: CreateExperimentInput): Promise<Experiment> {
    const name = validateExperimentName(input.name);
    const tags = tagList(input.tags).map((t) => ({ key: validateKey('tag', t.key), value: validateTagValue(t.key, t.value, LIMITS.experimentTagValueLength) }));
    const artifactLocation = input.artifactLocation === undefined || input.artifactLocation === '' ? DEFAULT_ARTIFACT_LOCATION : input.artifactLocation;
    const existing = await experimentsRepo.byName(this.db, name);
    if (existing !== undefined) throw this.nameTaken(existing);
    const now = this.now();
    let id: number;
    try {
      id = await this.db.transaction().execute(async (trx) => {
        const newId = await experimentsRepo.insert(trx, { name, artifact_location: artifactLocation, lifecycle_stage: 'active', creation_time: now, last_update_time: now });
        for (const t of tags) await experimentsRepo.setTag(trx, newId, t.key, t.value);
        return newId;
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const winner = await experimentsRepo.byName(this.db, name);
      throw winner === undefined ? conflict(`experiment '${name}' already exists`) : this.nameTaken(winner);
    }
    return this.getExperiment(String(id));
  }

  private nameTaken(row: ExperimentRow) {
    return conflict(
      row.lifecycle_stage === 'deleted'
        ? `experiment '${row.name}' already exists in deleted state (id ${row.experiment_id}); restore it or choose another name`
        : `experiment '${row.name}' already exists (id ${row.experiment_id})`,
    );
  }

  /** An experiment by id, deleted ones included; 404 if unknown. */
  async getExperiment(experimentId: string): Promise<Experiment> {
    return this.experimentFromRow(await this.experimentRow(experimentId));
  }

  /** An experiment by exact name, deleted ones included; 404 if unknown. */
  async getExperimentByName(name: string): Promise<Experiment> {
    const row = await experimentsRepo.byName(this.db, name);
    if (row === undefined) throw notFound(`experiment '${name}' not found`);
    return this.experimentFromRow(row);
  }

  /** By name, else (for a numeric string) by id: what the native `/experiments/{name}` paths accept. */
  async resolveExperiment(nameOrId: string): Promise<Experiment> {
    const row = await experimentsRepo.byName(this.db, nameOrId);
    if (row !== undefined) return this.experimentFromRow(row);
    const id = parseExperimentId(nameOrId);
    const byId = id === undefined ? undefined : await experimentsRepo.byId(this.db, id);
    if (byId === undefined) throw notFound(`experiment '${nameOrId}' not found`);
    return this.experimentFromRow(byId);
  }

  /** MLflow's `search_experiments`: filter by `name`, times and `tags.x`; default order last update first. */
  async searchExperiments(input: SearchExperimentsInput = {}): Promise<Page<Experiment>> {
    const limit = checkMaxResults(input.maxResults, 1000, MAX_SEARCH_RESULTS);
    const comparisons = parseFilter(input.filter, EXPERIMENT_SEARCH);
    const orderBy = parseOrderBy(input.orderBy, EXPERIMENT_SEARCH);
    const offset = decodePageToken(input.pageToken);
    const rows = await experimentsRepo.search(this.db, this.store.dialect, { stages: stagesOf(input.viewType), comparisons, orderBy, limit: limit + 1, offset });
    const page = rows.slice(0, limit);
    const tags = await this.experimentTags(page.map((r) => r.experiment_id));
    return {
      items: page.map((r) => toExperiment(r, tags.get(r.experiment_id) ?? {})),
      ...(rows.length > limit ? { nextPageToken: encodePageToken(offset + limit) } : {}),
    };
  }

  /** Renames an active experiment (MLflow's `update`); 409 when the new name is taken. */
  async renameExperiment(experimentId: string, newName: string): Promise<Experiment> {
    const row = await this.activeExperimentRow(experimentId);
    const name = validateExperimentName(newName);
    if (name === row.name) return this.getExperiment(experimentId);
    const other = await experimentsRepo.byName(this.db, name);
    if (other !== undefined) throw this.nameTaken(other);
    try {
      await experimentsRepo.update(this.db, row.experiment_id, { name, last_update_time: this.now() });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`experiment '${name}' already exists`);
      throw err;
    }
    return this.getExperiment(experimentId);
  }

  /**
   * Soft-deletes an experiment and its active runs. The Default experiment cannot be deleted.
   * Deleting a deleted experiment changes nothing.
   */
  async deleteExperiment(experimentId: string): Promise<void> {
    const row = await this.experimentRow(experimentId);
    if (String(row.experiment_id) === DEFAULT_EXPERIMENT_ID) throw invalidParameter('the Default experiment (id 0) cannot be deleted');
    if (row.lifecycle_stage === 'deleted') return;
    const now = this.now();
    await this.db.transaction().execute(async (trx) => {
      await experimentsRepo.update(trx, row.experiment_id, { lifecycle_stage: 'deleted', last_update_time: now });
      await runsRepo.deleteAllOf(trx, row.experiment_id, now);
    });
  }

  /**
   * Restores a deleted experiment and the runs that were deleted with it. Runs deleted on their
   * own before the experiment stay deleted (MLflow restores all; that would undo deliberate
   * deletions).
   */
  async restoreExperiment(experimentId: string): Promise<void> {
    const row = await this.experimentRow(experimentId);
    if (row.lifecycle_stage === 'active') return;
    // While deleted, nothing else updates an experiment, so last_update_time is the deletion time.
    const deletedAt = Number(row.last_update_time);
    await this.db.transaction().execute(async (trx) => {
      await runsRepo.restoreDeletedSince(trx, row.experiment_id, deletedAt);
      await experimentsRepo.update(trx, row.experiment_id, { lifecycle_stage: 'active', last_update_time: this.now() });
    });
  }

  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    const row = await this.activeExperimentRow(experimentId);
    await experimentsRepo.setTag(this.db, row.experiment_id, validateKey('tag', key), validateTagValue(key, value, LIMITS.experimentTagValueLength));
  }

  async deleteExperimentTag(experimentId: string, key: string): Promise<void> {
    const row = await this.activeExperimentRow(experimentId);
    if ((await experimentsRepo.deleteTag(this.db, row.experiment_id, key)) === 0) {
      throw notFound(`no tag '${key}' on experiment ${experimentId}`);
    }
  }

  /**
   * Active run count and best run of each experiment (see `PRIMARY_METRICS` for "best").
   * A handful of indexed queries per call, plus one per experiment for its best run.
   */
  async summarizeExperiments(experiments: readonly Experiment[]): Promise<Map<string, ExperimentSummary>> {
    const ids = experiments.map((e) => Number(e.experimentId));
    const counts = await runsRepo.countActive(this.db, ids);
    const present = await runsRepo.metricKeysPresent(
      this.db,
      ids,
      PRIMARY_METRICS.map((m) => m.key),
      BEST_RUN_STATUSES,
    );
    const out = new Map<string, ExperimentSummary>();
    for (const e of experiments) {
      const id = Number(e.experimentId);
      const runCount = counts.get(id) ?? 0;
      let bestRun: BestRun | null = null;
      if (runCount > 0) {
        const chosen = this.primaryMetric(e, present.get(id));
        const best = chosen === undefined ? undefined : await runsRepo.bestByMetric(this.db, id, chosen.key, chosen.goal, BEST_RUN_STATUSES);
        if (chosen !== undefined && best !== undefined) {
          bestRun = { runId: best.run_id, runName: best.run_name, metric: { key: chosen.key, value: Number(best.value), goal: chosen.goal } };
        } else {
          const latest = await runsRepo.latestStarted(this.db, id, BEST_RUN_STATUSES);
          if (latest !== undefined) bestRun = { runId: latest.run_id, runName: latest.run_name, metric: null };
        }
      }
      out.set(e.experimentId, { runCount, bestRun });
    }
    return out;
  }

  private primaryMetric(e: Experiment, present: ReadonlySet<string> | undefined): { key: string; goal: 'max' | 'min' } | undefined {
    const explicit = e.tags[PRIMARY_METRIC_TAG];
    if (explicit !== undefined && explicit !== '') {
      const known = PRIMARY_METRICS.find((m) => m.key === explicit);
      const goalTag = e.tags[PRIMARY_METRIC_GOAL_TAG];
      const goal = goalTag === 'min' || goalTag === 'max' ? goalTag : (known?.goal ?? 'max');
      return { key: explicit, goal };
    }
    return PRIMARY_METRICS.find((m) => present?.has(m.key) === true);
  }

  private async experimentRow(experimentId: string): Promise<ExperimentRow> {
    const id = parseExperimentId(experimentId);
    const row = id === undefined ? undefined : await experimentsRepo.byId(this.db, id);
    if (row === undefined) throw notFound(`experiment with id '${experimentId}' not found`);
    return row;
  }

  private async activeExperimentRow(experimentId: string): Promise<ExperimentRow> {
    const row = await this.experimentRow(experimentId);
    if (row.lifecycle_stage !== 'active') throw invalidParameter(`the experiment ${experimentId} must be in the 'active' state; it is deleted`);
    return row;
  }

  private async experimentFromRow(row: ExperimentRow): Promise<Experiment> {
    const tags = await this.experimentTags([row.experiment_id]);
    return toExperiment(row, tags.get(row.experiment_id) ?? {});
  }

  private async experimentTags(ids: readonly number[]): Promise<Map<number, Record<string, string>>> {
    const out = new Map<number, Record<string, string>>();
    for (const t of await experimentsRepo.tagsOf(this.db, ids)) {
      const id = Number(t.experiment_id);
      let tags = out.get(id);
      if (tags === undefined) out.set(id, (tags = {}));
      tags[t.key] = t.value;
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Runs

  /** Creates a RUNNING run (MLflow `create_run`), in an experiment given by id or name. */
  async createRun(input: CreateRunInput = {}): Promise<Run> {
    let experiment: ExperimentRow | undefined;
    if (input.experimentId !== undefined) {
      experiment = await this.experimentRow(input.experimentId);
    } else if (input.experimentName !== undefined) {
      experiment = await experimentsRepo.byName(this.db, input.experimentName);
      if (experiment === undefined) {
        if (input.createExperiment !== true) throw notFound(`experiment '${input.experimentName}' not found`);
        try {
          await this.createExperiment({ name: input.experimentName });
        } catch (err) {
          // Another writer created it meanwhile: use theirs.
          if (!(err instanceof AppError && err.status === 409)) throw err;
        }
        experiment = await experimentsRepo.byName(this.db, input.experimentName);
        if (experiment === undefined) throw notFound(`experiment '${input.experimentName}' not found`);
      }
    } else {
      experiment = await this.experimentRow(DEFAULT_EXPERIMENT_ID);
    }
    if (experiment.lifecycle_stage !== 'active') {
      throw invalidParameter(`the experiment ${experiment.experiment_id} must be in the 'active' state to create runs in it; it is deleted`);
    }
    const tags = tagList(input.tags).map((t) => ({ key: validateKey('tag', t.key), value: validateTagValue(t.key, t.value) }));
    const nameTag = tags.find((t) => t.key === RUN_NAME_TAG)?.value;
    if (input.runName !== undefined && nameTag !== undefined && input.runName !== nameTag) {
      throw invalidParameter(`both run_name ('${input.runName}') and the ${RUN_NAME_TAG} tag ('${nameTag}') are given, with different values`);
    }
    const runName = validateRunName(input.runName ?? nameTag ?? randomRunName());
    if (nameTag === undefined) tags.push({ key: RUN_NAME_TAG, value: runName });
    const status = input.status ?? 'RUNNING';
    if (!RUN_STATUSES.includes(status)) throw invalidParameter(`invalid run status '${String(status)}' (use one of ${RUN_STATUSES.join(', ')})`);
    const startTime = input.startTime === undefined ? this.now() : validateInteger('start_time', input.startTime);
    const runId = randomUUID().replaceAll('-', '');
    const row: RunRow = {
      run_id: runId,
      experiment_id: experiment.experiment_id,
      run_name: runName,
      status,
      start_time: startTime,
      end_time: null,
      lifecycle_stage: 'active',
      artifact_uri: `${DEFAULT_ARTIFACT_LOCATION}/${runId}/artifacts`,
      user_id: input.userId ?? '',
      dataset_name: null,
      dataset_version: null,
      dataset_digest: null,
      deleted_time: null,
    };
    await this.db.transaction().execute(async (trx) => {
      await runsRepo.insert(trx, row);
      await dataRepo.upsertTags(trx, tags.map((t) => ({ run_id: runId, key: t.key, value: t.value })));
    });
    return this.getRun(runId);
  }

  /** A run with its params, latest metrics, tags, dataset input and produced model versions. */
  async getRun(runId: string): Promise<Run> {
    const row = await this.runRow(this.db, runId);
    const [run] = await this.loadRuns([row]);
    return run!;
  }

  /** MLflow `update_run`: status, end time and name of an active run. */
  async updateRun(runId: string, input: UpdateRunInput): Promise<RunInfo> {
    const patch: Partial<RunRow> = {};
    if (input.status !== undefined) {
      if (!RUN_STATUSES.includes(input.status)) throw invalidParameter(`invalid run status '${String(input.status)}' (use one of ${RUN_STATUSES.join(', ')})`);
      patch.status = input.status;
    }
    if (input.endTime !== undefined) patch.end_time = input.endTime === null ? null : validateInteger('end_time', input.endTime);
    if (input.runName !== undefined) patch.run_name = validateRunName(input.runName);
    await this.db.transaction().execute(async (trx) => {
      await this.activeRunRow(trx, runId);
      if (Object.keys(patch).length > 0) await runsRepo.update(trx, runId, patch);
      if (patch.run_name !== undefined) await dataRepo.upsertTags(trx, [{ run_id: runId, key: RUN_NAME_TAG, value: patch.run_name }]);
    });
    return toRunInfo(await this.runRow(this.db, runId));
  }

  /**
   * Ends a run that failed or was stopped, with the reason as its `modelplane.error` tag, in one
   * transaction. A run that already ended is left as it is (returns false).
   */
  async endRun(runId: string, status: 'FAILED' | 'KILLED', endTime: number, error?: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const row = await this.runRow(trx, runId);
      if (row.status !== 'RUNNING' && row.status !== 'SCHEDULED') return false;
      await runsRepo.update(trx, runId, { status, end_time: validateInteger('end_time', endTime) });
      if (error !== undefined) await dataRepo.upsertTags(trx, [{ run_id: runId, key: 'modelplane.error', value: validateTagValue('modelplane.error', error.slice(0, 5000)) }]);
      return true;
    });
  }

  /** Soft-deletes a run (restorable). */
  async deleteRun(runId: string): Promise<void> {
    const row = await this.runRow(this.db, runId);
    if (row.lifecycle_stage === 'deleted') return;
    await runsRepo.update(this.db, runId, { lifecycle_stage: 'deleted', deleted_time: this.now() });
  }

  /** Restores a deleted run; its experiment must be active. */
  async restoreRun(runId: string): Promise<void> {
    const row = await this.runRow(this.db, runId);
    if (row.lifecycle_stage === 'active') return;
    const experiment = await this.experimentRow(String(row.experiment_id));
    if (experiment.lifecycle_stage !== 'active') {
      throw invalidParameter(`run ${runId} belongs to the deleted experiment ${experiment.experiment_id}; restore the experiment first`);
    }
    await runsRepo.update(this.db, runId, { lifecycle_stage: 'active', deleted_time: null });
  }

  /** Logs a param; re-logging the same value is accepted, a different value is a 400. */
  async logParam(runId: string, key: string, value: string): Promise<void> {
    await this.logBatch(runId, { params: [{ key, value }] });
  }

  /** Appends a metric point (NaN and ±Infinity allowed) and moves the latest value if it is greater. */
  async logMetric(runId: string, metric: MetricInput): Promise<void> {
    await this.logBatch(runId, { metrics: [metric] });
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.logBatch(runId, { tags: [{ key, value }] });
  }

  /** Deletes a run tag; 404 when the run has no such tag. */
  async deleteTag(runId: string, key: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await this.activeRunRow(trx, runId);
      if ((await dataRepo.deleteTag(trx, runId, key)) === 0) throw notFound(`no tag '${key}' on run ${runId}`);
    });
  }

  /**
   * Logs metrics, params and tags atomically: every entry is validated first, and a conflict
   * found in the store (a param already logged with another value) rolls the whole batch back.
   * Limits as MLflow: 1000 metrics, 100 params, 100 tags, 1000 entries in all.
   */
  async logBatch(runId: string, batch: LogBatchInput): Promise<void> {
    const metrics = batch.metrics ?? [];
    const params = batch.params ?? [];
    const tags = batch.tags ?? [];
    if (metrics.length > LIMITS.metricsPerBatch) throw invalidParameter(`a batch can hold at most ${LIMITS.metricsPerBatch} metrics, got ${metrics.length}`);
    if (params.length > LIMITS.paramsPerBatch) throw invalidParameter(`a batch can hold at most ${LIMITS.paramsPerBatch} params, got ${params.length}`);
    if (tags.length > LIMITS.tagsPerBatch) throw invalidParameter(`a batch can hold at most ${LIMITS.tagsPerBatch} tags, got ${tags.length}`);
    const total = metrics.length + params.length + tags.length;
    if (total > LIMITS.entitiesPerBatch) throw invalidParameter(`a batch can hold at most ${LIMITS.entitiesPerBatch} metrics, params and tags in all, got ${total}`);

    const now = this.now();
    const paramRows = new Map<string, string>();
    for (const p of params) {
      const key = validateKey('param', p.key);
      const value = validateParamValue(key, p.value);
      const seen = paramRows.get(key);
      if (seen !== undefined && seen !== value) throw invalidParameter(`param '${key}' appears twice in the batch with different values`);
      paramRows.set(key, value);
    }
    const metricRows: MetricRow[] = metrics.map((m) => {
      const key = validateKey('metric', m.key);
      const value = validateMetricValue(key, m.value);
      const isNan = Number.isNaN(value);
      return {
        run_id: runId,
        key,
        value: isNan ? 0 : value,
        is_nan: isNan ? 1 : 0,
        timestamp: m.timestamp === undefined ? now : validateInteger(`timestamp of metric '${key}'`, m.timestamp),
        step: m.step === undefined ? 0 : validateInteger(`step of metric '${key}'`, m.step),
      };
    });
    const tagRows = new Map<string, string>();
    for (const t of tags) {
      const key = validateKey('tag', t.key);
      tagRows.set(key, validateTagValue(key, t.value));
    }
    const runName = tagRows.get(RUN_NAME_TAG);
    if (runName !== undefined) validateRunName(runName);

    // The greatest point per key: one upsert row each (an upsert may touch a row only once).
    const latest = new Map<string, LatestMetricRow>();
    for (const m of metricRows) {
      const prev = latest.get(m.key);
      if (prev === undefined || greaterPoint(m, prev)) latest.set(m.key, m);
    }

    await this.db.transaction().execute(async (trx) => {
      await this.activeRunRow(trx, runId);
      if (paramRows.size > 0) {
        await dataRepo.insertParams(trx, [...paramRows].map(([key, value]) => ({ run_id: runId, key, value })));
        // Checked after the insert, so a concurrent writer's different value is caught too.
        for (const stored of await dataRepo.params(trx, [runId], [...paramRows.keys()])) {
          const wanted = paramRows.get(stored.key)!;
          if (stored.value !== wanted) {
            throw invalidParameter(
              `param already logged with a different value: param '${stored.key}' of run ${runId} is '${stored.value}', ` +
                `attempted '${wanted}' (params are immutable once logged)`,
            );
          }
        }
      }
      if (metricRows.length > 0) {
        await dataRepo.insertMetrics(trx, metricRows);
        await dataRepo.upsertLatest(trx, [...latest.values()]);
      }
      if (tagRows.size > 0) {
        await dataRepo.upsertTags(trx, [...tagRows].map(([key, value]) => ({ run_id: runId, key, value })));
        if (runName !== undefined) await runsRepo.update(trx, runId, { run_name: runName });
      }
    });
  }

  /** One page of a metric's full history, ordered by step then timestamp. */
  async getMetricHistory(runId: string, key: string, page: { maxResults?: number; pageToken?: string } = {}): Promise<Page<Metric>> {
    await this.runRow(this.db, runId);
    const limit = checkMaxResults(page.maxResults, MAX_HISTORY_RESULTS, MAX_HISTORY_RESULTS);
    const offset = decodePageToken(page.pageToken);
    const rows = await dataRepo.history(this.db, runId, key, limit + 1, offset);
    return {
      items: rows.slice(0, limit).map(toMetric),
      ...(rows.length > limit ? { nextPageToken: encodePageToken(offset + limit) } : {}),
    };
  }

  /** Records that a run produced a registered model version (idempotent). */
  async recordModelOutput(runId: string, model: string, version: number): Promise<void> {
    await this.runRow(this.db, runId);
    if (typeof model !== 'string' || model === '') throw invalidParameter('model name must be a non-empty string');
    await dataRepo.insertOutput(this.db, { run_id: runId, model_name: model, model_version: validateInteger('model version', version), created_time: this.now() });
  }

  /** Records the dataset version a run trained on; `digest` defaults to the version number. */
  async setRunDataset(runId: string, name: string, version: number, digest?: string): Promise<void> {
    await this.runRow(this.db, runId);
    if (typeof name !== 'string' || name === '') throw invalidParameter('dataset name must be a non-empty string');
    const v = validateInteger('dataset version', version);
    await runsRepo.update(this.db, runId, { dataset_name: name, dataset_version: v, dataset_digest: digest ?? String(v) });
  }

  /**
   * MLflow's `search_runs`: runs of the given experiments matching `filter` (MLflow grammar),
   * ordered by `orderBy` (default `start_time DESC`), one page at a time.
   */
  async searchRuns(input: SearchRunsInput): Promise<Page<Run>> {
    const limit = checkMaxResults(input.maxResults, 1000, MAX_SEARCH_RESULTS);
    const experimentIds = input.experimentIds.map((id) => {
      const n = parseExperimentId(id);
      if (n === undefined) throw invalidParameter(`experiment id '${id}' is not a valid id`);
      return n;
    });
    const comparisons = parseFilter(input.filter, RUN_SEARCH);
    const orderBy = parseOrderBy(input.orderBy, RUN_SEARCH);
    const offset = decodePageToken(input.pageToken);
    if (experimentIds.length === 0) return { items: [] };
    const rows = await runsRepo.search(this.db, this.store.dialect, {
      experimentIds,
      stages: stagesOf(input.runViewType),
      comparisons,
      orderBy,
      limit: limit + 1,
      offset,
    });
    return {
      items: await this.loadRuns(rows.slice(0, limit)),
      ...(rows.length > limit ? { nextPageToken: encodePageToken(offset + limit) } : {}),
    };
  }

  private async runRow(db: Db, runId: string): Promise<RunRow> {
    const row = typeof runId === 'string' && runId !== '' ? await runsRepo.byId(db, runId) : undefined;
    if (row === undefined) throw notFound(`run '${runId}' not found`);
    return row;
  }

  private async activeRunRow(db: Db, runId: string): Promise<RunRow> {
    const row = await this.runRow(db, runId);
    if (row.lifecycle_stage !== 'active') throw invalidParameter(`the run ${runId} must be in the 'active' state; it is deleted`);
    return row;
  }

  /** Maps rows to runs with their data, in the rows' order, with one query per child table. */
  private async loadRuns(rows: readonly RunRow[]): Promise<Run[]> {
    const ids = rows.map((r) => r.run_id);
    const [params, tags, latest, outputs] = await Promise.all([
      dataRepo.params(this.db, ids),
      dataRepo.tags(this.db, ids),
      dataRepo.latest(this.db, ids),
      dataRepo.outputs(this.db, ids),
    ]);
    const group = <T extends { run_id: string }>(list: readonly T[]): Map<string, T[]> => {
      const m = new Map<string, T[]>();
      for (const x of list) {
        let arr = m.get(x.run_id);
        if (arr === undefined) m.set(x.run_id, (arr = []));
        arr.push(x);
      }
      return m;
    };
    const p = group(params);
    const t = group(tags);
    const l = group(latest);
    const o = group(outputs);
    return rows.map((row) => ({
      info: toRunInfo(row),
      data: {
        metrics: (l.get(row.run_id) ?? []).map(toMetric),
        params: (p.get(row.run_id) ?? []).map((x) => ({ key: x.key, value: x.value })),
        tags: (t.get(row.run_id) ?? []).map((x) => ({ key: x.key, value: x.value })),
      },
      inputs: {
        datasetInputs:
          row.dataset_name === null || row.dataset_version === null
            ? []
            : [
                {
                  dataset: {
                    name: row.dataset_name,
                    version: Number(row.dataset_version),
                    digest: row.dataset_digest ?? String(row.dataset_version),
                    sourceType: 'modelplane' as const,
                    source: `datasets/${row.dataset_name}/versions/${row.dataset_version}`,
                  },
                  tags: [{ key: 'mlflow.data.context', value: 'training' }],
                },
              ],
      },
      outputs: { modelVersions: (o.get(row.run_id) ?? []).map((x) => ({ name: x.model_name, version: Number(x.model_version) })) },
    }));
  }

  // -------------------------------------------------------------------------------------------
  // Artifacts: stored under runs/<run_id>/artifacts/<path>

  private artifactKey(runId: string, path: string): string {
    return runArtifactPrefix(runId) + validateArtifactPath(path, false);
  }

  /** Stores one file of an active run; refuses paths that are absolute or contain `..`. */
  async logArtifact(runId: string, path: string, body: Buffer | Uint8Array | Readable): Promise<FileInfo> {
    const key = this.artifactKey(runId, path);
    await this.activeRunRow(this.db, runId);
    try {
      const info = await this.artifacts.put(key, body);
      return { path, isDir: false, fileSize: info.size };
    } catch (err) {
      if (err instanceof InvalidArtifactKeyError) throw invalidParameter(`artifact path '${path}' is refused: ${err.reason}`);
      throw err;
    }
  }

  /** Direct children of a folder of a run's artifacts (MLflow's `list_artifacts`), folders first-class. */
  async listArtifacts(runId: string, path = ''): Promise<FileInfo[]> {
    const folder = validateArtifactPath(path.endsWith('/') ? path.slice(0, -1) : path, true);
    await this.runRow(this.db, runId);
    const prefix = runArtifactPrefix(runId) + (folder === '' ? '' : `${folder}/`);
    const out: FileInfo[] = [];
    const dirs = new Set<string>();
    for (const info of await this.listPrefix(prefix)) {
      const rest = info.key.slice(prefix.length);
      const slash = rest.indexOf('/');
      const childPath = (folder === '' ? '' : `${folder}/`) + (slash < 0 ? rest : rest.slice(0, slash));
      if (slash < 0) {
        out.push({ path: childPath, isDir: false, fileSize: info.size });
      } else if (!dirs.has(childPath)) {
        dirs.add(childPath);
        out.push({ path: childPath, isDir: true });
      }
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Every file of a run's artifacts (recursive), up to `limit`, for the native run view. */
  async listAllArtifacts(runId: string, limit = 1000): Promise<{ files: FileInfo[]; truncated: boolean }> {
    await this.runRow(this.db, runId);
    const prefix = runArtifactPrefix(runId);
    const all = await this.listPrefix(prefix);
    return {
      files: all.slice(0, limit).map((i) => ({ path: i.key.slice(prefix.length), isDir: false, fileSize: i.size })),
      truncated: all.length > limit,
    };
  }

  /** Streams one artifact file; 404 when absent. */
  async getArtifact(runId: string, path: string): Promise<Readable> {
    const key = this.artifactKey(runId, path);
    await this.runRow(this.db, runId);
    try {
      return await this.artifacts.getStream(key);
    } catch (err) {
      throw this.mapArtifactError(err, runId, path);
    }
  }

  /** Reads one artifact file whole; 404 when absent. */
  async readArtifact(runId: string, path: string): Promise<Buffer> {
    const key = this.artifactKey(runId, path);
    await this.runRow(this.db, runId);
    try {
      return await this.artifacts.getBuffer(key);
    } catch (err) {
      throw this.mapArtifactError(err, runId, path);
    }
  }

  private async listPrefix(prefix: string) {
    try {
      return await this.artifacts.list(prefix);
    } catch (err) {
      if (err instanceof InvalidArtifactKeyError) throw invalidParameter(`artifact path is refused: ${err.reason}`);
      throw err;
    }
  }

  private mapArtifactError(err: unknown, runId: string, path: string): unknown {
    if (err instanceof ArtifactNotFoundError) return notFound(`artifact '${path}' not found in run ${runId}`);
    if (err instanceof InvalidArtifactKeyError) return invalidParameter(`artifact path '${path}' is refused: ${err.reason}`);
    return err;
  }
}
