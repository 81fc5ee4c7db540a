/**
 * How the native tracking routes show experiments and runs (API.md "Training, datasets,
 * experiments"), shared by the experiment and run route files.
 */
import { invalidField, notFound } from '../platform/errors.ts';
import type { Tracking } from './tracking.service.ts';
import { type Experiment, type ExperimentSummary, type Run, type ViewType } from './tracking.types.ts';

export const MAX_DATE_MS = 8.64e15;

/** ISO-8601 for a ms timestamp (clamped to the range a Date can show). */
export function iso(ms: number): string {
  return new Date(Math.max(-MAX_DATE_MS, Math.min(MAX_DATE_MS, ms))).toISOString();
}
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** JSON has no NaN or Infinity: render them as MLflow's JSON does. */
export function metricValue(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

export function parseMetricValue(v: number | string): number {
  if (typeof v === 'number') return v;
  const s = v.toLowerCase();
  return s === 'nan' ? Number.NaN : s.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}

/** ms from an integer or an ISO string; `path` names the field in the 400. */
export function timeInput(v: number | string, path: string): number {
  if (typeof v === 'number') return v;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw invalidField(path, 'must be an ISO-8601 date-time or integer milliseconds');
  return ms;
}

export function viewType(v: string | undefined): ViewType {
  return (v?.toUpperCase() ?? 'ACTIVE_ONLY') as ViewType;
}

export function experimentView(e: Experiment, s: ExperimentSummary | undefined) {
  return {
    experiment_id: e.experimentId,
    name: e.name,
    artifact_location: e.artifactLocation,
    lifecycle_stage: e.lifecycleStage,
    creation_time: iso(e.creationTime),
    last_update_time: iso(e.lastUpdateTime),
    tags: { ...e.tags },
    run_count: s?.runCount ?? 0,
    best_run:
      s?.bestRun == null
        ? null
        : {
            run_id: s.bestRun.runId,
            run_name: s.bestRun.runName,
            metric: s.bestRun.metric === null ? null : { key: s.bestRun.metric.key, value: metricValue(s.bestRun.metric.value), goal: s.bestRun.metric.goal },
          },
  };
}

export function runView(run: Run) {
  const i = run.info;
  const dataset = run.inputs.datasetInputs[0]?.dataset;
  return {
    run_id: i.runId,
    run_name: i.runName,
    experiment_id: i.experimentId,
    status: i.status,
    start_time: isoOrNull(i.startTime),
    end_time: isoOrNull(i.endTime),
    lifecycle_stage: i.lifecycleStage,
    artifact_uri: i.artifactUri,
    user_id: i.userId,
    params: Object.fromEntries(run.data.params.map((p) => [p.key, p.value])),
    metrics: Object.fromEntries(run.data.metrics.map((m) => [m.key, metricValue(m.value)])),
    tags: Object.fromEntries(run.data.tags.map((t) => [t.key, t.value])),
    dataset: dataset === undefined ? null : { name: dataset.name, version: dataset.version, digest: dataset.digest },
    model_versions: run.outputs.modelVersions.map((m) => ({ name: m.name, version: m.version })),
  };
}

export async function runDetail(tracking: Tracking, run: Run) {
  const { files, truncated } = await tracking.artifacts.listAllArtifacts(run.info.runId);
  return {
    ...runView(run),
    deleted_time: isoOrNull(run.info.deletedTime),
    latest_metrics: run.data.metrics.map((m) => ({ key: m.key, value: metricValue(m.value), step: m.step, timestamp: iso(m.timestamp) })),
    artifacts: files.map((f) => ({ path: f.path, size: f.fileSize ?? 0 })),
    artifacts_truncated: truncated,
  };
}

/** A run addressed under an experiment: 404 unless it belongs to it. */
export async function runOfExperiment(tracking: Tracking, experimentRef: string, runId: string): Promise<Run> {
  const experiment = await tracking.experiments.resolveExperiment(experimentRef);
  const run = await tracking.runs.getRun(runId).catch(() => undefined);
  if (run === undefined || run.info.experimentId !== experiment.experimentId) {
    throw notFound(`run '${runId}' not found in experiment '${experiment.name}'`);
  }
  return run;
}

export const TAGS = ['experiments'];

/** Native tracking routes (API.md "Training, datasets, experiments"). */
