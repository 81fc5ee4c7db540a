/**
 * Native tracking endpoints: experiments with run counts and best runs, run search with MLflow's
 * filter grammar, run details, metric history, and the write routes (role `train`) a script uses
 * to log without an MLflow client. Routes only validate, call the service and shape replies.
 */
import { Type } from '@sinclair/typebox';
import type { App } from '../platform/app-type.ts';
import { invalidField, notFound } from '../platform/errors.ts';
import { AUTH_ERRORS, PageQuery, errorResponses } from '../platform/schemas.ts';
import {
  CreateExperimentBody,
  CreateRunBody,
  ExperimentParams,
  ExperimentView,
  ListExperimentsQuery,
  ListRunsQuery,
  LogBody,
  MetricPoint,
  RunDetailView,
  RunIdParams,
  RunParams,
  RunView,
  UpdateExperimentBody,
  UpdateRunBody,
} from './tracking.schemas.ts';
import type { TrackingService } from './tracking.service.ts';
import { TERMINAL_STATUSES, type Experiment, type ExperimentSummary, type Run, type RunStatus, type ViewType } from './tracking.types.ts';

const MAX_DATE_MS = 8.64e15;

/** ISO-8601 for a ms timestamp (clamped to the range a Date can show). */
function iso(ms: number): string {
  return new Date(Math.max(-MAX_DATE_MS, Math.min(MAX_DATE_MS, ms))).toISOString();
}
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** JSON has no NaN or Infinity: render them as MLflow's JSON does. */
function metricValue(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

function parseMetricValue(v: number | string): number {
  if (typeof v === 'number') return v;
  const s = v.toLowerCase();
  return s === 'nan' ? Number.NaN : s.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}

/** ms from an integer or an ISO string; `path` names the field in the 400. */
function timeInput(v: number | string, path: string): number {
  if (typeof v === 'number') return v;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw invalidField(path, 'must be an ISO-8601 date-time or integer milliseconds');
  return ms;
}

function viewType(v: string | undefined): ViewType {
  return (v?.toUpperCase() ?? 'ACTIVE_ONLY') as ViewType;
}

function experimentView(e: Experiment, s: ExperimentSummary | undefined) {
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

function runView(run: Run) {
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

async function runDetail(tracking: TrackingService, run: Run) {
  const { files, truncated } = await tracking.listAllArtifacts(run.info.runId);
  return {
    ...runView(run),
    deleted_time: isoOrNull(run.info.deletedTime),
    latest_metrics: run.data.metrics.map((m) => ({ key: m.key, value: metricValue(m.value), step: m.step, timestamp: iso(m.timestamp) })),
    artifacts: files.map((f) => ({ path: f.path, size: f.fileSize ?? 0 })),
    artifacts_truncated: truncated,
  };
}

/** A run addressed under an experiment: 404 unless it belongs to it. */
async function runOfExperiment(tracking: TrackingService, experimentRef: string, runId: string): Promise<Run> {
  const experiment = await tracking.resolveExperiment(experimentRef);
  const run = await tracking.getRun(runId).catch(() => undefined);
  if (run === undefined || run.info.experimentId !== experiment.experimentId) {
    throw notFound(`run '${runId}' not found in experiment '${experiment.name}'`);
  }
  return run;
}

const TAGS = ['experiments'];

/** Native tracking routes (API.md "Training, datasets, experiments"). */
export async function trackingRoutes(app: App, tracking: TrackingService): Promise<void> {

  const withSummary = async (e: Experiment) => experimentView(e, (await tracking.summarizeExperiments([e])).get(e.experimentId));

  app.get(
    '/experiments',
    {
      config: { role: 'read' },
      schema: {
        summary: 'List experiments with their run counts and best runs',
        description: 'Newest update first by default. `filter` and `order_by` follow MLflow search_experiments.',
        tags: TAGS,
        querystring: ListExperimentsQuery,
        response: {
          200: Type.Object({ experiments: Type.Array(ExperimentView), next_page_token: Type.Optional(Type.String()) }),
          ...errorResponses(400, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await tracking.searchExperiments({
        viewType: viewType(q.view_type),
        ...(q.filter === undefined ? {} : { filter: q.filter }),
        ...(q.order_by === undefined ? {} : { orderBy: q.order_by }),
        maxResults: q.limit ?? 100,
        ...(q.page_token === undefined ? {} : { pageToken: q.page_token }),
      });
      const summaries = await tracking.summarizeExperiments(page.items);
      return {
        experiments: page.items.map((e) => experimentView(e, summaries.get(e.experimentId))),
        ...(page.nextPageToken === undefined ? {} : { next_page_token: page.nextPageToken }),
      };
    },
  );

  app.post(
    '/experiments',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Create an experiment',
        description: 'Names are unique, including those of deleted experiments (restore those instead): 409 when taken.',
        tags: TAGS,
        body: CreateExperimentBody,
        response: { 201: ExperimentView, ...errorResponses(400, 409, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const e = await tracking.createExperiment({
        name: b.name,
        ...(b.artifact_location === undefined ? {} : { artifactLocation: b.artifact_location }),
        ...(b.tags === undefined ? {} : { tags: b.tags }),
      });
      return reply.code(201).send(experimentView(e, { runCount: 0, bestRun: null }));
    },
  );

  app.get(
    '/experiments/:name',
    {
      config: { role: 'read' },
      schema: {
        summary: 'One experiment (by name, or numeric id) with its run count and best run',
        tags: TAGS,
        params: ExperimentParams,
        response: { 200: ExperimentView, ...errorResponses(404, ...AUTH_ERRORS) },
      },
    },
    async (request) => withSummary(await tracking.resolveExperiment(request.params.name)),
  );

  app.patch(
    '/experiments/:name',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Rename an experiment and/or set its tags',
        tags: TAGS,
        params: ExperimentParams,
        body: UpdateExperimentBody,
        response: { 200: ExperimentView, ...errorResponses(400, 404, 409, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const e = await tracking.resolveExperiment(request.params.name);
      for (const [key, value] of Object.entries(request.body.tags ?? {})) await tracking.setExperimentTag(e.experimentId, key, value);
      if (request.body.name !== undefined) await tracking.renameExperiment(e.experimentId, request.body.name);
      return withSummary(await tracking.getExperiment(e.experimentId));
    },
  );

  app.delete(
    '/experiments/:name',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Soft-delete an experiment and its runs (restorable)',
        tags: TAGS,
        params: ExperimentParams,
        response: { 200: ExperimentView, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const e = await tracking.resolveExperiment(request.params.name);
      await tracking.deleteExperiment(e.experimentId);
      return withSummary(await tracking.getExperiment(e.experimentId));
    },
  );

  app.post(
    '/experiments/:name/restore',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Restore a deleted experiment and the runs deleted with it',
        tags: TAGS,
        params: ExperimentParams,
        response: { 200: ExperimentView, ...errorResponses(404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const e = await tracking.resolveExperiment(request.params.name);
      await tracking.restoreExperiment(e.experimentId);
      return withSummary(await tracking.getExperiment(e.experimentId));
    },
  );

  app.get(
    '/experiments/:name/runs',
    {
      config: { role: 'read' },
      schema: {
        summary: "Search an experiment's runs with MLflow's filter grammar",
        description:
          "filter: comparisons joined by AND over metrics.x, params.x, tags.x, datasets.name|version|digest and attributes (status, run_name, run_id, user_id, artifact_uri, start_time, end_time); " +
          "operators = != > >= < <= for numbers, = != LIKE ILIKE IN NOT IN for strings, IS [NOT] NULL; quote keys with backquotes. " +
          'order_by: e.g. metrics.accuracy DESC; missing values sort last; ties by start_time DESC then run_id.',
        tags: TAGS,
        params: ExperimentParams,
        querystring: ListRunsQuery,
        response: {
          200: Type.Object({ experiment_id: Type.String(), runs: Type.Array(RunView), next_page_token: Type.Optional(Type.String()) }),
          ...errorResponses(400, 404, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const e = await tracking.resolveExperiment(request.params.name);
      const q = request.query;
      const page = await tracking.searchRuns({
        experimentIds: [e.experimentId],
        ...(q.filter === undefined ? {} : { filter: q.filter }),
        ...(q.order_by === undefined ? {} : { orderBy: q.order_by }),
        maxResults: q.limit ?? 100,
        ...(q.page_token === undefined ? {} : { pageToken: q.page_token }),
        runViewType: viewType(q.view_type),
      });
      return {
        experiment_id: e.experimentId,
        runs: page.items.map(runView),
        ...(page.nextPageToken === undefined ? {} : { next_page_token: page.nextPageToken }),
      };
    },
  );

  app.post(
    '/experiments/:name/runs',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Start a run (status RUNNING) in an experiment',
        description: 'With create_experiment=true a missing experiment is created first.',
        tags: TAGS,
        params: ExperimentParams,
        body: CreateRunBody,
        response: { 201: RunDetailView, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      let experimentName = request.params.name;
      if (b.create_experiment !== true) experimentName = (await tracking.resolveExperiment(experimentName)).name;
      const run = await tracking.createRun({
        experimentName,
        createExperiment: b.create_experiment === true,
        ...(b.run_name === undefined ? {} : { runName: b.run_name }),
        ...(b.start_time === undefined ? {} : { startTime: timeInput(b.start_time, '/start_time') }),
        ...(b.tags === undefined ? {} : { tags: b.tags }),
        userId: request.principal?.name ?? '',
      });
      return reply.code(201).send(await runDetail(tracking, run));
    },
  );

  app.get(
    '/experiments/:name/runs/:run_id',
    {
      config: { role: 'read' },
      schema: {
        summary: 'One run: params, latest metrics, tags, artifacts, dataset and produced model versions',
        tags: TAGS,
        params: RunParams,
        response: { 200: RunDetailView, ...errorResponses(404, ...AUTH_ERRORS) },
      },
    },
    async (request) => runDetail(tracking, await runOfExperiment(tracking, request.params.name, request.params.run_id)),
  );

  app.get(
    '/experiments/:name/runs/:run_id/metrics/:key',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Full history of one metric of a run, by step then timestamp',
        description: 'URL-encode keys holding slashes (train%2Floss).',
        tags: TAGS,
        params: Type.Composite([RunParams, Type.Object({ key: Type.String({ minLength: 1, maxLength: 250 }) })]),
        querystring: PageQuery,
        response: {
          200: Type.Object({ run_id: Type.String(), key: Type.String(), history: Type.Array(MetricPoint), next_page_token: Type.Optional(Type.String()) }),
          ...errorResponses(400, 404, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const run = await runOfExperiment(tracking, request.params.name, request.params.run_id);
      const q = request.query;
      const page = await tracking.getMetricHistory(run.info.runId, request.params.key, {
        maxResults: q.limit ?? 100,
        ...(q.page_token === undefined ? {} : { pageToken: q.page_token }),
      });
      if (page.items.length === 0 && q.page_token === undefined && !run.data.metrics.some((m) => m.key === request.params.key)) {
        throw notFound(`run ${run.info.runId} has no metric '${request.params.key}'`);
      }
      return {
        run_id: run.info.runId,
        key: request.params.key,
        history: page.items.map((m) => ({ value: metricValue(m.value), step: m.step, timestamp: iso(m.timestamp) })),
        ...(page.nextPageToken === undefined ? {} : { next_page_token: page.nextPageToken }),
      };
    },
  );

  app.get(
    '/experiments/:name/runs/:run_id/artifacts/*',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Download one artifact file of a run',
        tags: TAGS,
        params: Type.Composite([RunParams, Type.Object({ '*': Type.String() })]),
        response: { ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const run = await runOfExperiment(tracking, request.params.name, request.params.run_id);
      const stream = await tracking.getArtifact(run.info.runId, request.params['*']);
      return reply.type('application/octet-stream').send(stream);
    },
  );

  app.get(
    '/runs/:run_id',
    {
      config: { role: 'read' },
      schema: { summary: 'One run by id, whatever its experiment', tags: TAGS, params: RunIdParams, response: { 200: RunDetailView, ...errorResponses(404, ...AUTH_ERRORS) } },
    },
    async (request) => runDetail(tracking, await tracking.getRun(request.params.run_id)),
  );

  app.patch(
    '/runs/:run_id',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Update a run: status, end time, name',
        description: 'Setting a terminal status (FINISHED, FAILED, KILLED) without end_time on a run that has none sets end_time to now.',
        tags: TAGS,
        params: RunIdParams,
        body: UpdateRunBody,
        response: { 200: RunDetailView, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const { run_id: runId } = request.params;
      const b = request.body;
      const status = b.status as RunStatus | undefined;
      let endTime: number | null | undefined = b.end_time === undefined ? undefined : b.end_time === null ? null : timeInput(b.end_time, '/end_time');
      if (endTime === undefined && status !== undefined && TERMINAL_STATUSES.includes(status)) {
        const current = await tracking.getRun(runId);
        if (current.info.endTime === null) endTime = Date.now();
      }
      await tracking.updateRun(runId, {
        ...(status === undefined ? {} : { status }),
        ...(endTime === undefined ? {} : { endTime }),
        ...(b.run_name === undefined ? {} : { runName: b.run_name }),
      });
      return runDetail(tracking, await tracking.getRun(runId));
    },
  );

  app.post(
    '/runs/:run_id/log',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Log params, metrics and tags to a run, atomically',
        description:
          'Params are immutable: re-logging the same value is accepted, a different value is a 400 and nothing of the batch is stored. ' +
          'Metric history is append-only; limits as MLflow log-batch (1000 metrics, 100 params, 100 tags, 1000 entries).',
        tags: TAGS,
        params: RunIdParams,
        body: LogBody,
        response: {
          200: Type.Object({ run_id: Type.String(), logged: Type.Object({ params: Type.Integer(), metrics: Type.Integer(), tags: Type.Integer() }) }),
          ...errorResponses(400, 404, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const { run_id: runId } = request.params;
      const b = request.body;
      const toPairs = (v: Record<string, string | number | boolean> | { key: string; value: string | number | boolean }[] | undefined) =>
        v === undefined ? [] : Array.isArray(v) ? v.map((x) => ({ key: x.key, value: String(x.value) })) : Object.entries(v).map(([key, value]) => ({ key, value: String(value) }));
      const params = toPairs(b.params);
      const tags = toPairs(b.tags);
      const metrics = (b.metrics ?? []).map((m, i) => ({
        key: m.key,
        value: parseMetricValue(m.value),
        ...(m.step === undefined ? {} : { step: m.step }),
        ...(m.timestamp === undefined ? {} : { timestamp: timeInput(m.timestamp, `/metrics/${i}/timestamp`) }),
      }));
      await tracking.logBatch(runId, { params, metrics, tags });
      return { run_id: runId, logged: { params: params.length, metrics: metrics.length, tags: tags.length } };
    },
  );

  app.delete(
    '/runs/:run_id',
    {
      config: { role: 'train' },
      schema: { summary: 'Soft-delete a run (restorable)', tags: TAGS, params: RunIdParams, response: { 200: RunDetailView, ...errorResponses(404, ...AUTH_ERRORS) } },
    },
    async (request) => {
      await tracking.deleteRun(request.params.run_id);
      return runDetail(tracking, await tracking.getRun(request.params.run_id));
    },
  );

  app.post(
    '/runs/:run_id/restore',
    {
      config: { role: 'train' },
      schema: { summary: 'Restore a deleted run', tags: TAGS, params: RunIdParams, response: { 200: RunDetailView, ...errorResponses(400, 404, ...AUTH_ERRORS) } },
    },
    async (request) => {
      await tracking.restoreRun(request.params.run_id);
      return runDetail(tracking, await tracking.getRun(request.params.run_id));
    },
  );

  app.delete(
    '/runs/:run_id/tags/:key',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Delete a run tag',
        tags: TAGS,
        params: Type.Composite([RunIdParams, Type.Object({ key: Type.String({ minLength: 1, maxLength: 250 }) })]),
        response: { 200: RunDetailView, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      await tracking.deleteTag(request.params.run_id, request.params.key);
      return runDetail(tracking, await tracking.getRun(request.params.run_id));
    },
  );
}
