/**
 * MLflow's model registry (model_registry.proto) over the registry services: registered models,
 * versions, stages, aliases and tags. The registry's own rules apply unchanged (stage roles,
 * archiving, reserved aliases, no deletion of a serving version, the audit history); versions
 * are ONNX files registered from a run's artifacts (`runs:/<run_id>/<path>` or the run's
 * `mlflow-artifacts:` URI), checked in onnxruntime before they exist.
 */
import type { Stage } from '../config.ts';
import type { App } from '../platform/app-type.ts';
import { STAGES, type ModelVersion, type RegisteredModel } from '../registry/registry.model.ts';
import type { Registry } from '../registry/registry.service.ts';
import type { Tracking } from '../tracking/tracking.service.ts';
import { MODEL_VERSION_SEARCH, REGISTERED_MODEL_SEARCH, searchItems, type Searchable } from './registry-search.ts';
import { endpoint } from './route.ts';
import { modelVersionView, registeredModelView, versionArtifactUri } from './views.ts';
import { actorOf, invalidValue, toInt, type MlflowMessage } from './wire.ts';

/** Page of the registry read when searching: models are listed in pages of this size. */
const LIST_PAGE = 1000;

/** `runs:/<run_id>/<path>`, or a run's artifact URI with a path (`mlflow-artifacts:/runs/<id>/artifacts/<path>`, or its HTTP form). */
const RUNS_URI = /^runs:\/([A-Za-z0-9_-]+)\/(.+)$/;
const RUN_ARTIFACT_URI = /^(?:mlflow-artifacts:|https?:\/\/[^/]+\/api\/2\.0\/mlflow-artifacts\/artifacts)\/+runs\/([A-Za-z0-9_-]+)\/artifacts\/(.+)$/;

/** The `runs:/` source a version is registered from, with its run id. */
function runSource(source: string): { source: string; runId: string } {
  const m = RUNS_URI.exec(source) ?? RUN_ARTIFACT_URI.exec(source);
  if (m === null) {
    throw invalidValue(
      `unsupported model version source '${source}': register a file a run logged here, as runs:/<run_id>/<path> or the run's artifact URI (mlflow-artifacts:/runs/<run_id>/artifacts/<path>)`,
    );
  }
  return { source: `runs:/${m[1]!}/${m[2]!.replace(/\/+$/, '')}`, runId: m[1]! };
}

/** MLflow accepts stage names in any case. */
function canonicalStage(stage: string): Stage {
  const found = STAGES.find((s) => s.toLowerCase() === stage.toLowerCase());
  if (found === undefined) throw invalidValue(`invalid model version stage '${stage}': use one of ${STAGES.join(', ')}`);
  return found;
}

function versionNumber(m: MlflowMessage): number {
  const v = toInt('version', m.string('version'));
  if (v < 1) throw invalidValue(`invalid value ${v} for parameter 'version': versions start at 1`);
  return v;
}

/** The newest version in each stage (MLflow's `latest_versions`), optionally only some stages. */
function latestPerStage(versions: readonly ModelVersion[], stages?: readonly Stage[]): ModelVersion[] {
  const best = new Map<Stage, ModelVersion>();
  for (const v of versions) {
    if (stages !== undefined && stages.length > 0 && !stages.includes(v.stage)) continue;
    const prev = best.get(v.stage);
    if (prev === undefined || v.version > prev.version) best.set(v.stage, v);
  }
  return [...best.values()].sort((a, b) => a.version - b.version);
}

const modelSearchable = (m: RegisteredModel): Searchable => ({
  tags: m.tags,
  attribute: (name) => (name === 'name' ? m.name : name === 'creation_timestamp' ? m.createdAt : name === 'last_updated_timestamp' ? m.updatedAt : null),
});

const versionSearchable = (v: ModelVersion): Searchable => ({
  tags: v.tags,
  attribute: (name) => {
    switch (name) {
      case 'name':
        return v.name;
      case 'version_number':
        return v.version;
      case 'run_id':
        return v.runId;
      case 'source_path':
        return v.source;
      case 'current_stage':
        return v.stage;
      case 'creation_timestamp':
        return v.createdAt;
      case 'last_updated_timestamp':
        return v.updatedAt;
      default:
        return null;
    }
  },
});

/** Registered models and model versions of MLflow's registry API. */
export function mlflowRegistryRoutes(scope: App, registry: Registry, tracking: Tracking): void {
  const { models, lifecycle } = registry;

  const modelMessage = async (name: string): Promise<Record<string, unknown>> => {
    const [summary, versions] = await Promise.all([models.getModelSummary(name), models.listVersions(name)]);
    return { registered_model: registeredModelView(summary, latestPerStage(versions)) };
  };

  const allModels = async (): Promise<RegisteredModel[]> => {
    const out: RegisteredModel[] = [];
    for (let offset = 0; ; offset += LIST_PAGE) {
      const page = await models.listModels(offset, LIST_PAGE);
      out.push(...page.items);
      if (page.nextOffset === undefined) return out;
    }
  };

  // ------------------------------------------------------------------ registered models

  endpoint(scope, { methods: ['POST'], path: '/registered-models/create', role: 'train', summary: 'MLflow CreateRegisteredModel' }, async (m, request) => {
    const name = m.string('name');
    const tags = Object.fromEntries(m.keyValues('tags').map((t) => [t.key, t.value]));
    const description = m.optString('description');
    await models.createModel(name, { ...(description === undefined ? {} : { description }), tags }, actorOf(request).keyId);
    return modelMessage(name);
  });

  endpoint(scope, { methods: ['GET'], path: '/registered-models/get', role: 'read', summary: 'MLflow GetRegisteredModel' }, async (m) => modelMessage(m.string('name')));

  endpoint(scope, { methods: ['POST'], path: '/registered-models/rename', role: 'admin', summary: 'MLflow RenameRegisteredModel (admin: it changes what serving routes by name)' }, async (m, request) => {
    const renamed = await models.renameModel(m.string('name'), m.string('new_name'), actorOf(request).keyId);
    return modelMessage(renamed.name);
  });

  endpoint(scope, { methods: ['PATCH'], path: '/registered-models/update', role: 'train', summary: 'MLflow UpdateRegisteredModel' }, async (m) => {
    const name = m.string('name');
    const description = m.optString('description');
    if (description !== undefined) await models.updateModel(name, { description });
    return modelMessage(name);
  });

  endpoint(scope, { methods: ['DELETE'], path: '/registered-models/delete', role: 'admin', summary: 'MLflow DeleteRegisteredModel', conflict: 'RESOURCE_CONFLICT' }, async (m, request) => {
    await models.deleteModel(m.string('name'), actorOf(request).keyId);
  });

  endpoint(scope, { methods: ['GET'], path: '/registered-models/search', role: 'read', summary: 'MLflow SearchRegisteredModels' }, async (m) => {
    const found = searchItems(
      (await allModels()).map((model) => Object.assign(modelSearchable(model), { model })),
      { filter: m.optString('filter'), orderBy: m.stringList('order_by'), maxResults: m.optInt('max_results'), pageToken: m.optString('page_token') },
      REGISTERED_MODEL_SEARCH,
      { defaultMax: 100, max: 1000, defaultOrder: ['name ASC'] },
    );
    const out = await Promise.all(found.items.map(async ({ model }) => registeredModelView(model, latestPerStage(await models.listVersions(model.name)))));
    return { registered_models: out, next_page_token: found.nextPageToken };
  });

  endpoint(scope, { methods: ['GET', 'POST'], path: '/registered-models/get-latest-versions', role: 'read', summary: 'MLflow GetLatestVersions' }, async (m) => {
    const stages = m.stringList('stages').map(canonicalStage);
    return { model_versions: latestPerStage(await models.listVersions(m.string('name')), stages).map(modelVersionView) };
  });

  endpoint(scope, { methods: ['POST'], path: '/registered-models/set-tag', role: 'train', summary: 'MLflow SetRegisteredModelTag' }, async (m) => {
    await models.updateModel(m.string('name'), { tags: { [m.string('key')]: m.optString('value') ?? '' } });
  });

  endpoint(scope, { methods: ['DELETE'], path: '/registered-models/delete-tag', role: 'train', summary: 'MLflow DeleteRegisteredModelTag' }, async (m) => {
    await models.updateModel(m.string('name'), { tags: { [m.string('key')]: null } });
  });

  endpoint(scope, { methods: ['POST'], path: '/registered-models/alias', role: 'admin', summary: 'MLflow SetRegisteredModelAlias' }, async (m, request) => {
    await lifecycle.setAlias(m.string('name'), m.string('alias'), versionNumber(m), actorOf(request).keyId);
  });

  endpoint(scope, { methods: ['DELETE'], path: '/registered-models/alias', role: 'admin', summary: 'MLflow DeleteRegisteredModelAlias' }, async (m, request) => {
    await lifecycle.deleteAlias(m.string('name'), m.string('alias'), actorOf(request).keyId);
  });

  endpoint(scope, { methods: ['GET'], path: '/registered-models/alias', role: 'read', summary: 'MLflow GetModelVersionByAlias' }, async (m) => {
    return { model_version: modelVersionView(await lifecycle.getAlias(m.string('name'), m.string('alias'))) };
  });

  // ------------------------------------------------------------------ model versions

  endpoint(scope, { methods: ['POST'], path: '/model-versions/create', role: 'train', summary: "MLflow CreateModelVersion (from an ONNX file a run logged)" }, async (m, request) => {
    const name = m.string('name');
    // MLflow creates versions only of registered models that exist.
    await models.getModelSummary(name);
    const { source, runId } = runSource(m.string('source'));
    const given = m.optString('run_id');
    if (given !== undefined && given !== '' && given !== runId) {
      throw invalidValue(`run_id '${given}' does not match the run of source '${m.string('source')}'`);
    }
    const description = m.optString('description');
    const tags = Object.fromEntries(m.keyValues('tags').map((t) => [t.key, t.value]));
    const version = await models.registerFromRun(name, source, {}, {
      actor: actorOf(request).keyId,
      tags,
      ...(description === undefined || description === '' ? {} : { description }),
      runId,
      source,
    });
    // The run lists the versions it produced (the native run view shows them).
    await tracking.runs.recordModelOutput(runId, name, version.version);
    return { model_version: modelVersionView(version) };
  });

  endpoint(scope, { methods: ['GET'], path: '/model-versions/get', role: 'read', summary: 'MLflow GetModelVersion' }, async (m) => {
    return { model_version: modelVersionView(await models.getVersion(m.string('name'), versionNumber(m))) };
  });

  endpoint(scope, { methods: ['PATCH'], path: '/model-versions/update', role: 'train', summary: 'MLflow UpdateModelVersion' }, async (m) => {
    const name = m.string('name');
    const version = versionNumber(m);
    const description = m.optString('description');
    const v = description === undefined ? await models.getVersion(name, version) : await models.updateVersion(name, version, { description });
    return { model_version: modelVersionView(v) };
  });

  endpoint(
    scope,
    { methods: ['POST'], path: '/model-versions/transition-stage', role: 'train', summary: 'MLflow TransitionModelVersionStage (entering or leaving Production, or Archived: admin)' },
    async (m, request) => {
      const result = await lifecycle.transitionStage(m.string('name'), versionNumber(m), canonicalStage(m.string('stage')), {
        archiveExistingVersions: m.optBool('archive_existing_versions') ?? false,
        actor: actorOf(request),
      });
      return { model_version: modelVersionView(result.version) };
    },
  );

  endpoint(scope, { methods: ['DELETE'], path: '/model-versions/delete', role: 'admin', summary: 'MLflow DeleteModelVersion', conflict: 'RESOURCE_CONFLICT' }, async (m, request) => {
    await models.deleteVersion(m.string('name'), versionNumber(m), actorOf(request).keyId);
  });

  endpoint(scope, { methods: ['GET'], path: '/model-versions/search', role: 'read', summary: 'MLflow SearchModelVersions' }, async (m) => {
    const filter = m.optString('filter');
    // `name = '...'` alone (what clients send most) reads one model's versions only.
    const single = filter === undefined ? undefined : /^\s*name\s*=\s*'((?:[^']|'')*)'\s*$/.exec(filter)?.[1]?.replaceAll("''", "'");
    let versions: ModelVersion[] = [];
    if (single !== undefined) {
      versions = await models.listVersions(single).catch(() => []);
    } else {
      for (const model of await allModels()) versions.push(...(await models.listVersions(model.name)));
    }
    const found = searchItems(
      versions.map((v) => Object.assign(versionSearchable(v), { v })),
      { filter, orderBy: m.stringList('order_by'), maxResults: m.optInt('max_results'), pageToken: m.optString('page_token') },
      MODEL_VERSION_SEARCH,
      { defaultMax: 10_000, max: 200_000, defaultOrder: ['name ASC', 'version_number DESC'] },
    );
    return { model_versions: found.items.map(({ v }) => modelVersionView(v)), next_page_token: found.nextPageToken };
  });

  endpoint(scope, { methods: ['GET'], path: '/model-versions/get-download-uri', role: 'read', summary: 'MLflow GetModelVersionDownloadUri' }, async (m) => {
    return { artifact_uri: versionArtifactUri(await models.getVersion(m.string('name'), versionNumber(m))) };
  });

  endpoint(scope, { methods: ['POST'], path: '/model-versions/set-tag', role: 'train', summary: 'MLflow SetModelVersionTag' }, async (m) => {
    await models.updateVersion(m.string('name'), versionNumber(m), { tags: { [m.string('key')]: m.optString('value') ?? '' } });
  });

  endpoint(scope, { methods: ['DELETE'], path: '/model-versions/delete-tag', role: 'train', summary: 'MLflow DeleteModelVersionTag' }, async (m) => {
    await models.updateVersion(m.string('name'), versionNumber(m), { tags: { [m.string('key')]: null } });
  });
}
