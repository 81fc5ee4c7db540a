/**
 * MLflow's tracking service (service.proto) over the tracking services: experiments, runs and
 * their logging, metric history, run artifact listings. Only wire formats are translated here;
 * the rules (name uniqueness, lifecycle, param immutability, batch limits, the filter grammar)
 * are the tracking services' own.
 */
import type { App } from '../platform/app-type.ts';
import type { Tracking } from '../tracking/tracking.service.ts';
import { RUN_STATUSES, VIEW_TYPES, type RunStatus, type ViewType } from '../tracking/tracking.types.ts';
import { endpoint } from './route.ts';
import { experimentView, fileInfoView, metricView, runInfoView, runView } from './views.ts';
import { fieldString, invalidValue, toDouble, toInt, type MlflowMessage } from './wire.ts';

/** protobuf numbers of MLflow's `ViewType` and `RunStatus` enums. */
const VIEW_TYPE_NUMBERS: Readonly<Record<number, ViewType>> = { 1: 'ACTIVE_ONLY', 2: 'DELETED_ONLY', 3: 'ALL' };
const RUN_STATUS_NUMBERS: Readonly<Record<number, RunStatus>> = { 1: 'RUNNING', 2: 'SCHEDULED', 3: 'FINISHED', 4: 'FAILED', 5: 'KILLED' };

/** The tag MLflow appends each logged model's MLmodel (as JSON) to. */
const LOGGED_MODELS_TAG = 'mlflow.log-model.history';

/** `max_results` of the 1.x `experiments/list` when not given: everything, as 1.x answered. */
const LIST_ALL = 50_000;

const optional = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> =>
  (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;

function searchPage(m: MlflowMessage): { maxResults?: number; pageToken?: string } {
  return { ...optional('maxResults', m.optInt('max_results')), ...optional('pageToken', m.optString('page_token')) };
}

/** Experiments, runs, metric history and artifact listings of MLflow's tracking API. */
export function mlflowTrackingRoutes(scope: App, tracking: Tracking): void {
  const { experiments, runs } = tracking;

  // ------------------------------------------------------------------ experiments

  endpoint(scope, { methods: ['POST'], path: '/experiments/create', role: 'train', summary: 'MLflow CreateExperiment' }, async (m) => {
    const e = await experiments.createExperiment({
      name: m.string('name'),
      ...optional('artifactLocation', m.optString('artifact_location')),
      tags: m.keyValues('tags'),
    });
    return { experiment_id: e.experimentId };
  });

  const searchExperiments = async (m: MlflowMessage, maxResults?: number): Promise<Record<string, unknown>> => {
    const page = await experiments.searchExperiments({
      ...searchPage(m),
      ...optional('maxResults', m.optInt('max_results') ?? maxResults),
      ...optional('filter', m.optString('filter')),
      orderBy: m.stringList('order_by'),
      viewType: m.optEnum('view_type', VIEW_TYPES, VIEW_TYPE_NUMBERS) ?? 'ACTIVE_ONLY',
    });
    return { experiments: page.items.map(experimentView), next_page_token: page.nextPageToken };
  };
  endpoint(scope, { methods: ['GET', 'POST'], path: '/experiments/search', role: 'read', summary: 'MLflow SearchExperiments' }, (m) => searchExperiments(m));
  endpoint(scope, { methods: ['GET'], path: '/experiments/list', role: 'read', summary: 'MLflow 1.x ListExperiments' }, (m) => searchExperiments(m, LIST_ALL));

  endpoint(scope, { methods: ['GET'], path: '/experiments/get', role: 'read', summary: 'MLflow GetExperiment' }, async (m) => {
    const e = await experiments.getExperiment(m.string('experiment_id'));
    // 1.x clients read the runs' infos from here too; 2.x servers answer only the experiment.
    return { experiment: experimentView(e) };
  });

  endpoint(scope, { methods: ['GET'], path: '/experiments/get-by-name', role: 'read', summary: 'MLflow GetExperimentByName' }, async (m) => {
    return { experiment: experimentView(await experiments.getExperimentByName(m.string('experiment_name'))) };
  });

  endpoint(scope, { methods: ['POST'], path: '/experiments/delete', role: 'train', summary: 'MLflow DeleteExperiment' }, async (m) => {
    await experiments.deleteExperiment(m.string('experiment_id'));
  });

  endpoint(scope, { methods: ['POST'], path: '/experiments/restore', role: 'train', summary: 'MLflow RestoreExperiment' }, async (m) => {
    await experiments.restoreExperiment(m.string('experiment_id'));
  });

  endpoint(scope, { methods: ['POST'], path: '/experiments/update', role: 'train', summary: 'MLflow UpdateExperiment (rename)' }, async (m) => {
    const id = m.string('experiment_id');
    const newName = m.optString('new_name');
    // MLflow treats an update without a new name as a no-op on an existing experiment.
    if (newName === undefined || newName === '') await experiments.getExperiment(id);
    else await experiments.renameExperiment(id, newName);
  });

  endpoint(scope, { methods: ['POST'], path: '/experiments/set-experiment-tag', role: 'train', summary: 'MLflow SetExperimentTag' }, async (m) => {
    await experiments.setExperimentTag(m.string('experiment_id'), m.string('key'), m.optString('value') ?? '');
  });

  // ------------------------------------------------------------------ runs

  endpoint(scope, { methods: ['POST'], path: '/runs/create', role: 'train', summary: 'MLflow CreateRun' }, async (m, request) => {
    const run = await runs.createRun({
      ...optional('experimentId', m.optString('experiment_id')),
      ...optional('runName', m.optString('run_name') || undefined),
      ...optional('startTime', m.optInt('start_time')),
      userId: m.optString('user_id') ?? request.principal?.name ?? '',
      tags: m.keyValues('tags'),
    });
    return { run: runView(run) };
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/update', role: 'train', summary: 'MLflow UpdateRun' }, async (m) => {
    const info = await runs.updateRun(m.runId(), {
      ...optional('status', m.optEnum('status', RUN_STATUSES, RUN_STATUS_NUMBERS)),
      ...optional('endTime', m.optInt('end_time')),
      ...optional('runName', m.optString('run_name') || undefined),
    });
    return { run_info: runInfoView(info) };
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/delete', role: 'train', summary: 'MLflow DeleteRun' }, async (m) => {
    await runs.deleteRun(m.runId());
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/restore', role: 'train', summary: 'MLflow RestoreRun' }, async (m) => {
    await runs.restoreRun(m.runId());
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/log-metric', role: 'train', summary: 'MLflow LogMetric' }, async (m) => {
    await runs.logMetric(m.runId(), {
      key: m.string('key'),
      value: m.double('value'),
      ...optional('timestamp', m.optInt('timestamp')),
      ...optional('step', m.optInt('step')),
    });
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/log-parameter', role: 'train', summary: 'MLflow LogParam' }, async (m) => {
    await runs.logParam(m.runId(), m.string('key'), m.optString('value') ?? '');
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/set-tag', role: 'train', summary: 'MLflow SetTag' }, async (m) => {
    await runs.setTag(m.runId(), m.string('key'), m.optString('value') ?? '');
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/delete-tag', role: 'train', summary: 'MLflow DeleteTag' }, async (m) => {
    await runs.deleteTag(m.runId(), m.string('key'));
  });

  endpoint(scope, { methods: ['GET'], path: '/runs/get', role: 'read', summary: 'MLflow GetRun' }, async (m) => {
    return { run: runView(await runs.getRun(m.runId())) };
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/search', role: 'read', summary: 'MLflow SearchRuns' }, async (m) => {
    const page = await runs.searchRuns({
      experimentIds: m.stringList('experiment_ids'),
      ...optional('filter', m.optString('filter')),
      orderBy: m.stringList('order_by'),
      runViewType: m.optEnum('run_view_type', VIEW_TYPES, VIEW_TYPE_NUMBERS) ?? 'ACTIVE_ONLY',
      ...searchPage(m),
    });
    return { runs: page.items.map(runView), next_page_token: page.nextPageToken };
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/log-batch', role: 'train', summary: 'MLflow LogBatch' }, async (m) => {
    const metrics = m.objects('metrics').map((o, i) => {
      const where = `metrics[${i}]`;
      return {
        key: fieldString(o, 'key', where),
        value: toDouble(`${where}.value`, o['value']),
        ...optional('timestamp', o['timestamp'] === undefined || o['timestamp'] === null ? undefined : toInt(`${where}.timestamp`, o['timestamp'])),
        ...optional('step', o['step'] === undefined || o['step'] === null ? undefined : toInt(`${where}.step`, o['step'])),
      };
    });
    await runs.logBatch(m.runId(), { metrics, params: m.keyValues('params'), tags: m.keyValues('tags') });
  });

  endpoint(scope, { methods: ['POST'], path: '/runs/log-model', role: 'train', summary: "MLflow LogModel (appends the MLmodel to the run's mlflow.log-model.history tag)" }, async (m) => {
    const runId = m.runId();
    let model: unknown;
    try {
      model = JSON.parse(m.string('model_json'));
    } catch {
      throw invalidValue("invalid value for parameter 'model_json': it is not JSON");
    }
    if (typeof model !== 'object' || model === null || Array.isArray(model)) throw invalidValue("invalid value for parameter 'model_json': expected a JSON object");
    const missing = ['artifact_path', 'flavors', 'utc_time_created', 'run_id'].filter((k) => !(k in model));
    if (missing.length > 0) throw invalidValue(`model_json is missing mandatory fields: ${missing.join(', ')}`);
    const run = await runs.getRun(runId);
    const previous = run.data.tags.find((t) => t.key === LOGGED_MODELS_TAG)?.value;
    let history: unknown[] = [];
    if (previous !== undefined) {
      try {
        const parsed: unknown = JSON.parse(previous);
        if (Array.isArray(parsed)) history = parsed;
      } catch {
        // A tag someone overwrote by hand: the new entry starts the list again.
      }
    }
    await runs.setTag(runId, LOGGED_MODELS_TAG, JSON.stringify([...history, model]));
  });

  endpoint(scope, { methods: ['GET'], path: '/metrics/get-history', role: 'read', summary: 'MLflow GetMetricHistory' }, async (m) => {
    const page = await runs.getMetricHistory(m.runId(), m.string('metric_key'), searchPage(m));
    return { metrics: page.items.map(metricView), next_page_token: page.nextPageToken };
  });

  endpoint(scope, { methods: ['GET'], path: '/artifacts/list', role: 'read', summary: 'MLflow ListArtifacts' }, async (m) => {
    const runId = m.runId();
    const run = await runs.getRun(runId);
    const files = await tracking.artifacts.listArtifacts(runId, m.optString('path') ?? '');
    return { root_uri: run.info.artifactUri, files: files.map(fileInfoView) };
  });
}
