/**
 * Runs with MLflow's semantics: soft-deleted and restorable, a param is immutable once logged,
 * metric history is append-only and the latest value of a metric follows MLflow's "greatest
 * (step, timestamp, value)" rule; search in MLflow's filter grammar.
 */
import { randomUUID } from 'node:crypto';
import { AppError, notFound } from '../platform/errors.ts';
import { decodePageToken, encodePageToken } from '../platform/schemas.ts';
import type { Store } from '../store/database.ts';
import { randomRunName } from './run-names.ts';
import { RUN_SEARCH, parseFilter, parseOrderBy } from './search-filter.ts';
import {
  experimentsRepository as experimentsRepo,
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
  type Metric,
  type Page,
  type Run,
  type RunInfo,
} from './tracking.types.ts';
import {
  LIMITS,
  invalidParameter,
  validateInteger,
  validateKey,
  validateMetricValue,
  validateParamValue,
  validateRunName,
  validateTagValue,
} from './validation.ts';

import type { ExperimentsService } from './experiments.service.ts';
import {
  activeRunRow,
  checkMaxResults,
  experimentRow,
  greaterPoint,
  parseExperimentId,
  runRow,
  stagesOf,
  tagList,
  toMetric,
  toRunInfo,
  DEFAULT_ARTIFACT_LOCATION,
  MAX_HISTORY_RESULTS,
  MAX_SEARCH_RESULTS,
  type CreateRunInput,
  type Db,
  type LogBatchInput,
  type MetricInput,
  type SearchRunsInput,
  type UpdateRunInput,
} from './tracking.shared.ts';

/** Runs: lifecycle, logging (params, metrics, tags in atomic batches), search and metric history. */
export class RunsService {
  constructor(
    private readonly store: Store,
    private readonly experiments: ExperimentsService,
    /** Clock in ms, injectable for tests. */
    private readonly now: () => number = Date.now,
  ) {}

  private get db(): Db {
    return this.store.db;
  }

  // Runs

  /** Creates a RUNNING run (MLflow `create_run`), in an experiment given by id or name. */
  async createRun(input: CreateRunInput = {}): Promise<Run> {
    let experiment: ExperimentRow | undefined;
    if (input.experimentId !== undefined) {
      experiment = await experimentRow(this.db, input.experimentId);
    } else if (input.experimentName !== undefined) {
      experiment = await experimentsRepo.byName(this.db, input.experimentName);
      if (experiment === undefined) {
        if (input.createExperiment !== true) throw notFound(`experiment '${input.experimentName}' not found`);
        try {
          await this.experiments.createExperiment({ name: input.experimentName });
        } catch (err) {
          // Another writer created it meanwhile: use theirs.
          if (!(err instanceof AppError && err.status === 409)) throw err;
        }
        experiment = await experimentsRepo.byName(this.db, input.experimentName);
        if (experiment === undefined) throw notFound(`experiment '${input.experimentName}' not found`);
      }
    } else {
      experiment = await experimentRow(this.db, DEFAULT_EXPERIMENT_ID);
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
    // A new run holds only its tags: answered from what was written instead of five reads.
    const stored = new Map(tags.map((t) => [t.key, t.value]));
    return {
      info: toRunInfo(row),
      data: { metrics: [], params: [], tags: [...stored].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, value]) => ({ key, value })) },
      inputs: { datasetInputs: [] },
      outputs: { modelVersions: [] },
    };
  }

  /** A run with its params, latest metrics, tags, dataset input and produced model versions. */
  async getRun(runId: string): Promise<Run> {
    const row = await runRow(this.db, runId);
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
      await activeRunRow(trx, runId);
      if (Object.keys(patch).length > 0) await runsRepo.update(trx, runId, patch);
      if (patch.run_name !== undefined) await dataRepo.upsertTags(trx, [{ run_id: runId, key: RUN_NAME_TAG, value: patch.run_name }]);
    });
    return toRunInfo(await runRow(this.db, runId));
  }

  /**
   * Ends a run that failed or was stopped, with the reason as its `modelplane.error` tag, in one
   * transaction. A run that already ended is left as it is (returns false).
   */
  async endRun(runId: string, status: 'FAILED' | 'KILLED', endTime: number, error?: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const row = await runRow(trx, runId);
      if (row.status !== 'RUNNING' && row.status !== 'SCHEDULED') return false;
      await runsRepo.update(trx, runId, { status, end_time: validateInteger('end_time', endTime) });
      if (error !== undefined) await dataRepo.upsertTags(trx, [{ run_id: runId, key: 'modelplane.error', value: validateTagValue('modelplane.error', error.slice(0, 5000)) }]);
      return true;
    });
  }

  /** Soft-deletes a run (restorable). */
  async deleteRun(runId: string): Promise<void> {
    const row = await runRow(this.db, runId);
    if (row.lifecycle_stage === 'deleted') return;
    await runsRepo.update(this.db, runId, { lifecycle_stage: 'deleted', deleted_time: this.now() });
  }

  /** Restores a deleted run; its experiment must be active. */
  async restoreRun(runId: string): Promise<void> {
    const row = await runRow(this.db, runId);
    if (row.lifecycle_stage === 'active') return;
    const experiment = await experimentRow(this.db, String(row.experiment_id));
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
      await activeRunRow(trx, runId);
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
      await activeRunRow(trx, runId);
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
        await dataRepo.insertMetrics(trx, this.store.dialect, metricRows);
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
    await runRow(this.db, runId);
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
    await runRow(this.db, runId);
    if (typeof model !== 'string' || model === '') throw invalidParameter('model name must be a non-empty string');
    await dataRepo.insertOutput(this.db, { run_id: runId, model_name: model, model_version: validateInteger('model version', version), created_time: this.now() });
  }

  /** Records the dataset version a run trained on; `digest` defaults to the version number. */
  async setRunDataset(runId: string, name: string, version: number, digest?: string): Promise<void> {
    await runRow(this.db, runId);
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
}
