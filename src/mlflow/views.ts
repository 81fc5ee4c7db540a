/**
 * The tracking and registry domain objects as MLflow's protobuf messages in JSON (service.proto,
 * model_registry.proto): snake_case, times in milliseconds, model version numbers as strings,
 * tags as `[{key, value}]`, and what protobuf leaves out (null, empty strings and lists) left out here (`opt`).
 */
import type { ModelVersion, RegisteredModel } from '../registry/registry.model.ts';
import type { Experiment, FileInfo, Metric, Run, RunInfo } from '../tracking/tracking.types.ts';
import { opt, wireDouble } from './wire.ts';

const tagList = (tags: Readonly<Record<string, string>>): { key: string; value: string | undefined }[] | undefined =>
  opt(Object.entries(tags).map(([key, value]) => ({ key, value: opt(value) })));

const keyValues = (list: readonly { key: string; value: string }[]): { key: string; value: string | undefined }[] | undefined =>
  opt(list.map((x) => ({ key: x.key, value: opt(x.value) })));

export function experimentView(e: Experiment): Record<string, unknown> {
  return {
    experiment_id: e.experimentId,
    name: e.name,
    artifact_location: opt(e.artifactLocation),
    lifecycle_stage: e.lifecycleStage,
    last_update_time: e.lastUpdateTime,
    creation_time: e.creationTime,
    tags: tagList(e.tags),
  };
}

export function runInfoView(info: RunInfo): Record<string, unknown> {
  return {
    run_id: info.runId,
    run_uuid: info.runId,
    run_name: opt(info.runName),
    experiment_id: info.experimentId,
    user_id: opt(info.userId),
    status: info.status,
    start_time: opt(info.startTime),
    end_time: opt(info.endTime),
    artifact_uri: opt(info.artifactUri),
    lifecycle_stage: info.lifecycleStage,
  };
}

export function metricView(m: Metric): Record<string, unknown> {
  return { key: m.key, value: wireDouble(m.value), timestamp: m.timestamp, step: m.step };
}

export function runView(run: Run): Record<string, unknown> {
  return {
    info: runInfoView(run.info),
    data: {
      metrics: opt(run.data.metrics.map(metricView)),
      params: keyValues(run.data.params),
      tags: keyValues(run.data.tags),
    },
    inputs: {
      dataset_inputs: opt(
        run.inputs.datasetInputs.map((d) => ({
          tags: keyValues(d.tags),
          dataset: { name: d.dataset.name, digest: d.dataset.digest, source_type: d.dataset.sourceType, source: d.dataset.source },
        })),
      ),
    },
  };
}

export function fileInfoView(f: FileInfo): Record<string, unknown> {
  return { path: f.path, is_dir: f.isDir, ...(f.isDir ? {} : { file_size: f.fileSize }) };
}

/** Where a version's files are downloaded from: its run's folder when it came from a run, else its bundle. */
export function versionArtifactUri(v: ModelVersion): string {
  const m = /^runs:\/([A-Za-z0-9_-]+)\/(.+)$/.exec(v.source);
  if (m !== null) return `mlflow-artifacts:/runs/${m[1]!}/artifacts/${m[2]!}`;
  return `mlflow-artifacts:/models/${v.name}/${v.version}`;
}

export function modelVersionView(v: ModelVersion): Record<string, unknown> {
  return {
    name: v.name,
    version: String(v.version),
    creation_timestamp: v.createdAt,
    last_updated_timestamp: v.updatedAt,
    user_id: opt(v.createdBy),
    current_stage: v.stage,
    description: opt(v.description),
    source: v.source.startsWith('runs:/') ? v.source : versionArtifactUri(v),
    run_id: opt(v.runId),
    // Versions exist here only once their file is checked: they are always ready.
    status: 'READY',
    tags: tagList(v.tags),
    aliases: opt([...v.aliases]),
  };
}

export function registeredModelView(m: RegisteredModel, latest: readonly ModelVersion[]): Record<string, unknown> {
  return {
    name: m.name,
    creation_timestamp: m.createdAt,
    last_updated_timestamp: m.updatedAt,
    description: opt(m.description),
    latest_versions: opt(latest.map(modelVersionView)),
    tags: tagList(m.tags),
    aliases: opt(Object.entries(m.aliases).map(([alias, version]) => ({ alias, version: String(version) }))),
  };
}
