/**
 * Runs over HTTP (API.md "Training, datasets, experiments"): runs of an experiment (search in
 * MLflow's filter grammar, create), one run with its metrics history and artifacts, update,
 * logging, delete and restore.
 */
import { Type } from '@sinclair/typebox';
import type { App } from '../platform/app-type.ts';
import { notFound } from '../platform/errors.ts';
import { AUTH_ERRORS, PageQuery, errorResponses } from '../platform/schemas.ts';
import {
  CreateRunBody,
  ExperimentParams,
  ListRunsQuery,
  LogBody,
  MetricPoint,
  RunDetailView,
  RunIdParams,
  RunParams,
  RunView,
  UpdateRunBody,
} from './tracking.schemas.ts';
import type { Tracking } from './tracking.service.ts';
import { TERMINAL_STATUSES, type RunStatus } from './tracking.types.ts';

import { TAGS, iso, metricValue, parseMetricValue, runDetail, runOfExperiment, runView, timeInput, viewType } from './tracking.views.ts';

/** Run routes. */
export async function runRoutes(app: App, tracking: Tracking): Promise<void> {
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
      const e = await tracking.experiments.resolveExperiment(request.params.name);
      const q = request.query;
      const page = await tracking.runs.searchRuns({
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
      if (b.create_experiment !== true) experimentName = (await tracking.experiments.resolveExperiment(experimentName)).name;
      const run = await tracking.runs.createRun({
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
      const page = await tracking.runs.getMetricHistory(run.info.runId, request.params.key, {
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
      const stream = await tracking.artifacts.getArtifact(run.info.runId, request.params['*']);
      return reply.type('application/octet-stream').send(stream);
    },
  );

  app.get(
    '/runs/:run_id',
    {
      config: { role: 'read' },
      schema: { summary: 'One run by id, whatever its experiment', tags: TAGS, params: RunIdParams, response: { 200: RunDetailView, ...errorResponses(404, ...AUTH_ERRORS) } },
    },
    async (request) => runDetail(tracking, await tracking.runs.getRun(request.params.run_id)),
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
        const current = await tracking.runs.getRun(runId);
        if (current.info.endTime === null) endTime = Date.now();
      }
      await tracking.runs.updateRun(runId, {
        ...(status === undefined ? {} : { status }),
        ...(endTime === undefined ? {} : { endTime }),
        ...(b.run_name === undefined ? {} : { runName: b.run_name }),
      });
      return runDetail(tracking, await tracking.runs.getRun(runId));
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
      await tracking.runs.logBatch(runId, { params, metrics, tags });
      return { run_id: runId, logged: { params: params.length, metrics: metrics.length, tags: tags.length } };
    },
  );

  app.delete(
    '/runs/:run_id',
    {
      config: { role: 'admin' },
      schema: { summary: 'Soft-delete a run (restorable)', tags: TAGS, params: RunIdParams, response: { 200: RunDetailView, ...errorResponses(404, ...AUTH_ERRORS) } },
    },
    async (request) => {
      await tracking.runs.deleteRun(request.params.run_id);
      return runDetail(tracking, await tracking.runs.getRun(request.params.run_id));
    },
  );

  app.post(
    '/runs/:run_id/restore',
    {
      config: { role: 'train' },
      schema: { summary: 'Restore a deleted run', tags: TAGS, params: RunIdParams, response: { 200: RunDetailView, ...errorResponses(400, 404, ...AUTH_ERRORS) } },
    },
    async (request) => {
      await tracking.runs.restoreRun(request.params.run_id);
      return runDetail(tracking, await tracking.runs.getRun(request.params.run_id));
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
      await tracking.runs.deleteTag(request.params.run_id, request.params.key);
      return runDetail(tracking, await tracking.runs.getRun(request.params.run_id));
    },
  );
}
