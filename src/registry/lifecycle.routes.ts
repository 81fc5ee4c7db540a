/**
 * Where versions serve, over HTTP (API.md "Model registry"): stage transitions, aliases, the
 * traffic split of the default route and the audit history.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { App } from '../platform/app-type.ts';
import type { LifecycleService } from './lifecycle.service.ts';
import { unauthorized } from '../platform/errors.ts';
import { AUTH_ERRORS, PageQuery, decodePageToken, encodePageToken, errorResponses } from '../platform/schemas.ts';
import type { Actor } from './registry.model.ts';
import {
  AliasBody,
  AliasParams,
  HistorySchema,
  NameParams,
  TrafficBody,
  TrafficSchema,
  TransitionBody,
  VersionSchema,
  historyReply,
  trafficReply,
  versionReply,
} from './registry.schemas.ts';

const TAGS = ['registry'];

const AliasReply = Type.Object({ name: Type.String(), alias: Type.String(), version: Type.Integer(), model_version: VersionSchema });

/** Stage, alias, traffic and history routes. */
export async function lifecycleRoutes(app: App, lifecycle: LifecycleService): Promise<void> {
  app.post(
    '/models/transition',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Move a version to a stage (None/Staging: train; Production/Archived or out of Production: admin)',
        description:
          'With archive_existing_versions (Staging or Production only) the other versions in the target stage move to Archived in the same step.',
        tags: TAGS,
        body: TransitionBody,
        response: {
          200: Type.Composite([VersionSchema, Type.Object({ archived_versions: Type.Array(Type.Integer()) })]),
          ...errorResponses(400, 404, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const body = request.body;
      const result = await lifecycle.transitionStage(body.name, body.version, body.stage, {
        archiveExistingVersions: body.archive_existing_versions ?? false,
        actor: actorOf(request),
      });
      return { ...versionReply(result.version), archived_versions: [...result.archived] };
    },
  );

  app.get(
    '/models/:name/aliases/:alias',
    {
      config: { role: 'read' },
      schema: {
        summary: "The version an alias points at ('latest' and 'v<n>' resolve to the newest version and version n)",
        tags: TAGS,
        params: AliasParams,
        response: { 200: AliasReply, ...errorResponses(404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const { name, alias } = request.params;
      const v = await lifecycle.getAlias(name, alias);
      return { name, alias, version: v.version, model_version: versionReply(v) };
    },
  );

  app.put(
    '/models/:name/aliases/:alias',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Point an alias at a version (creating or moving it); letters, digits, _ and -, latest and v<n> reserved',
        tags: TAGS,
        params: AliasParams,
        body: AliasBody,
        response: { 200: AliasReply, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const { name, alias } = request.params;
      const v = await lifecycle.setAlias(name, alias, request.body.version, actorOf(request).keyId);
      return { name, alias, version: v.version, model_version: versionReply(v) };
    },
  );

  app.delete(
    '/models/:name/aliases/:alias',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Remove an alias',
        tags: TAGS,
        params: AliasParams,
        response: { 200: Type.Object({ name: Type.String(), alias: Type.String(), deleted: Type.Boolean() }), ...errorResponses(404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const { name, alias } = request.params;
      await lifecycle.deleteAlias(name, alias, actorOf(request).keyId);
      return { name, alias, deleted: true };
    },
  );

  app.get(
    '/models/:name/history',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Audit trail of stage, alias, traffic and version changes, newest first: when, which key, from, to',
        tags: TAGS,
        params: NameParams,
        querystring: PageQuery,
        response: {
          200: Type.Object({ name: Type.String(), history: Type.Array(HistorySchema), next_page_token: Type.Optional(Type.String()) }),
          ...errorResponses(400, 404, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      const offset = decodePageToken(request.query.page_token);
      const page = await lifecycle.history(name, offset, request.query.limit ?? 100);
      return {
        name,
        history: page.items.map(historyReply),
        ...(page.nextOffset === undefined ? {} : { next_page_token: encodePageToken(page.nextOffset) }),
      };
    },
  );

  app.get(
    '/models/:name/traffic',
    {
      config: { role: 'admin' },
      schema: {
        summary: "The weighted split of the model's default route and its shadow versions (empty when none is set)",
        tags: TAGS,
        params: NameParams,
        response: { 200: TrafficSchema, ...errorResponses(404, ...AUTH_ERRORS) },
      },
    },
    async (request) => trafficReply(request.params.name, await lifecycle.getTraffic(request.params.name)),
  );

  app.put(
    '/models/:name/traffic',
    {
      config: { role: 'admin' },
      schema: {
        summary: "Set the weighted split of the model's default route (weights are percentages adding up to 100)",
        description:
          'Every version must exist and appear once. `shadow` versions get a copy of the traffic and never answer. ' +
          'Routes may be empty when shadows are given (the default route stays stage-based); an empty split clears it.',
        tags: TAGS,
        params: NameParams,
        body: TrafficBody,
        response: { 200: TrafficSchema, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const { name } = request.params;
      const t = await lifecycle.setTraffic(name, { routes: request.body.routes, shadow: request.body.shadow ?? [] }, actorOf(request).keyId);
      return trafficReply(name, t);
    },
  );
}

/** The calling key as the registry's actor (history, role checks). */
export function actorOf(request: FastifyRequest): Actor {
  const p = request.principal;
  // The auth hook sets the principal on every non-public route; this only guards misconfiguration.
  if (p === undefined) throw unauthorized();
  return { keyId: p.keyId, role: p.role };
}

