/** Experiments over HTTP (API.md "Training, datasets, experiments"): list, create, show, rename, tag, delete, restore. */
import { Type } from '@sinclair/typebox';
import type { App } from '../platform/app-type.ts';
import { AUTH_ERRORS, errorResponses } from '../platform/schemas.ts';
import {
  CreateExperimentBody,
  ExperimentParams,
  ExperimentView,
  ListExperimentsQuery,
  UpdateExperimentBody,
} from './tracking.schemas.ts';
import type { Tracking } from './tracking.service.ts';
import { type Experiment } from './tracking.types.ts';

import { TAGS, experimentView, viewType } from './tracking.views.ts';

/** Experiment routes. */
export async function experimentRoutes(app: App, tracking: Tracking): Promise<void> {

  const withSummary = async (e: Experiment) => experimentView(e, (await tracking.experiments.summarizeExperiments([e])).get(e.experimentId));

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
      const page = await tracking.experiments.searchExperiments({
        viewType: viewType(q.view_type),
        ...(q.filter === undefined ? {} : { filter: q.filter }),
        ...(q.order_by === undefined ? {} : { orderBy: q.order_by }),
        maxResults: q.limit ?? 100,
        ...(q.page_token === undefined ? {} : { pageToken: q.page_token }),
      });
      const summaries = await tracking.experiments.summarizeExperiments(page.items);
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
      const e = await tracking.experiments.createExperiment({
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
    async (request) => withSummary(await tracking.experiments.resolveExperiment(request.params.name)),
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
      const e = await tracking.experiments.resolveExperiment(request.params.name);
      for (const [key, value] of Object.entries(request.body.tags ?? {})) await tracking.experiments.setExperimentTag(e.experimentId, key, value);
      if (request.body.name !== undefined) await tracking.experiments.renameExperiment(e.experimentId, request.body.name);
      return withSummary(await tracking.experiments.getExperiment(e.experimentId));
    },
  );

  app.delete(
    '/experiments/:name',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Soft-delete an experiment and its runs (restorable)',
        tags: TAGS,
        params: ExperimentParams,
        response: { 200: ExperimentView, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const e = await tracking.experiments.resolveExperiment(request.params.name);
      await tracking.experiments.deleteExperiment(e.experimentId);
      return withSummary(await tracking.experiments.getExperiment(e.experimentId));
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
      const e = await tracking.experiments.resolveExperiment(request.params.name);
      await tracking.experiments.restoreExperiment(e.experimentId);
      return withSummary(await tracking.experiments.getExperiment(e.experimentId));
    },
  );

}
