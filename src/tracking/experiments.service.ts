/**
 * Experiments with MLflow's semantics: soft-deleted and restorable, names unique (deleted ones
 * included), tags, search in MLflow's filter grammar, and per-experiment run summaries.
 */
import { conflict, notFound } from '../platform/errors.ts';
import { decodePageToken, encodePageToken } from '../platform/schemas.ts';
import type { Store } from '../store/database.ts';
import { EXPERIMENT_SEARCH, parseFilter, parseOrderBy } from './search-filter.ts';
import {
  experimentsRepository as experimentsRepo,
  isUniqueViolation,
  runsRepository as runsRepo,
  type ExperimentRow,
} from './tracking.repository.ts';
import {
  DEFAULT_EXPERIMENT_ID,
  type BestRun,
  type Experiment,
  type ExperimentSummary,
  type Page,
} from './tracking.types.ts';
import {
  LIMITS,
  invalidParameter,
  validateExperimentName,
  validateKey,
  validateTagValue,
} from './validation.ts';

import {
  BEST_RUN_STATUSES,
  activeExperimentRow,
  checkMaxResults,
  experimentFromRow,
  experimentRow,
  experimentTags,
  parseExperimentId,
  stagesOf,
  tagList,
  toExperiment,
  DEFAULT_ARTIFACT_LOCATION,
  MAX_SEARCH_RESULTS,
  PRIMARY_METRICS,
  PRIMARY_METRIC_GOAL_TAG,
  PRIMARY_METRIC_TAG,
  type CreateExperimentInput,
  type Db,
  type SearchExperimentsInput,
} from './tracking.shared.ts';

/** Experiments: create, find, search, rename, delete and restore, tags, and run summaries. */
export class ExperimentsService {
  constructor(
    private readonly store: Store,
    /** Clock in ms, injectable for tests. */
    private readonly now: () => number = Date.now,
  ) {}

  private get db(): Db {
    return this.store.db;
  }

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
    return experimentFromRow(this.db, await experimentRow(this.db, experimentId));
  }

  /** An experiment by exact name, deleted ones included; 404 if unknown. */
  async getExperimentByName(name: string): Promise<Experiment> {
    const row = await experimentsRepo.byName(this.db, name);
    if (row === undefined) throw notFound(`experiment '${name}' not found`);
    return experimentFromRow(this.db, row);
  }

  /** By name, else (for a numeric string) by id: what the native `/experiments/{name}` paths accept. */
  async resolveExperiment(nameOrId: string): Promise<Experiment> {
    const row = await experimentsRepo.byName(this.db, nameOrId);
    if (row !== undefined) return experimentFromRow(this.db, row);
    const id = parseExperimentId(nameOrId);
    const byId = id === undefined ? undefined : await experimentsRepo.byId(this.db, id);
    if (byId === undefined) throw notFound(`experiment '${nameOrId}' not found`);
    return experimentFromRow(this.db, byId);
  }

  /** MLflow's `search_experiments`: filter by `name`, times and `tags.x`; default order last update first. */
  async searchExperiments(input: SearchExperimentsInput = {}): Promise<Page<Experiment>> {
    const limit = checkMaxResults(input.maxResults, 1000, MAX_SEARCH_RESULTS);
    const comparisons = parseFilter(input.filter, EXPERIMENT_SEARCH);
    const orderBy = parseOrderBy(input.orderBy, EXPERIMENT_SEARCH);
    const offset = decodePageToken(input.pageToken);
    const rows = await experimentsRepo.search(this.db, this.store.dialect, { stages: stagesOf(input.viewType), comparisons, orderBy, limit: limit + 1, offset });
    const page = rows.slice(0, limit);
    const tags = await experimentTags(this.db, page.map((r) => r.experiment_id));
    return {
      items: page.map((r) => toExperiment(r, tags.get(r.experiment_id) ?? {})),
      ...(rows.length > limit ? { nextPageToken: encodePageToken(offset + limit) } : {}),
    };
  }

  /** Renames an active experiment (MLflow's `update`); 409 when the new name is taken. */
  async renameExperiment(experimentId: string, newName: string): Promise<Experiment> {
    const row = await activeExperimentRow(this.db, experimentId);
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
    const row = await experimentRow(this.db, experimentId);
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
    const row = await experimentRow(this.db, experimentId);
    if (row.lifecycle_stage === 'active') return;
    // While deleted, nothing else updates an experiment, so last_update_time is the deletion time.
    const deletedAt = Number(row.last_update_time);
    await this.db.transaction().execute(async (trx) => {
      await runsRepo.restoreDeletedSince(trx, row.experiment_id, deletedAt);
      await experimentsRepo.update(trx, row.experiment_id, { lifecycle_stage: 'active', last_update_time: this.now() });
    });
  }

  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    const row = await activeExperimentRow(this.db, experimentId);
    await experimentsRepo.setTag(this.db, row.experiment_id, validateKey('tag', key), validateTagValue(key, value, LIMITS.experimentTagValueLength));
  }

  async deleteExperimentTag(experimentId: string, key: string): Promise<void> {
    const row = await activeExperimentRow(this.db, experimentId);
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
}
