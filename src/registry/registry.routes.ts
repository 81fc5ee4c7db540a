import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { App } from '../platform/app-type.ts';
import type { RegistryService } from './registry.service.ts';
import { invalidField, payloadTooLarge, unauthorized, unsupportedMediaType } from '../platform/errors.ts';
import { AUTH_ERRORS, PageQuery, decodePageToken, encodePageToken, errorResponses } from '../platform/schemas.ts';
import { Stage as StageSchema } from '../config.ts';
import { parseTags, parseUploadFields, type UploadFields } from './registry.hints.ts';
import { checkModelName, type Actor } from './registry.model.ts';
import {
  AliasBody,
  AliasParams,
  CreateModelBody,
  HistorySchema,
  ModelDetailSchema,
  ModelSummarySchema,
  NameParams,
  PatchBody,
  TrafficBody,
  TrafficSchema,
  TransitionBody,
  UploadJsonBody,
  UploadQuery,
  VersionParams,
  VersionSchema,
  VersionSummarySchema,
  historyReply,
  modelDetailReply,
  modelSummaryReply,
  trafficReply,
  versionReply,
  versionSummaryReply,
} from './registry.schemas.ts';
import type { RegisterExtras } from './registry.service.ts';

const TAGS = ['registry'];
const MAX_FIELD_BYTES = 1024 * 1024;

/**
 * Documentation of the multipart form. The multipart parser leaves the body empty (validated as
 * `null`), so this constrains nothing; the handler reads the parts.
 */
const UploadFormDoc = Type.Unsafe({
  type: 'object',
  nullable: true,
  properties: {
    file: { type: 'string', format: 'binary', description: 'the .onnx file' },
    feature_names: { type: 'string', description: 'JSON array or comma-separated list' },
    class_labels: { type: 'string', description: 'JSON array or comma-separated list' },
    task: { type: 'string', enum: ['classification', 'regression'] },
    description: { type: 'string' },
    run_id: { type: 'string' },
    reference_dataset: { type: 'string', description: 'name or name:version' },
    tags: { type: 'string', description: 'JSON object of string tags' },
  },
});

const AliasReply = Type.Object({ name: Type.String(), alias: Type.String(), version: Type.Integer(), model_version: VersionSchema });

/**
 * Native model registry API (API.md "Model registry"): registered models, versions (upload as
 * multipart, raw bytes or a run artifact), stages, aliases, traffic splits and history.
 */
export async function registryRoutes(app: App, registry: RegistryService, options: { maxModelBytes: number }): Promise<void> {
  const limit = options.maxModelBytes;

  // Other features may accept the same content types; the first to ask installs the parser.
  if (!app.hasContentTypeParser('multipart/form-data')) {
    await app.register(multipart, { limits: { fileSize: limit, files: 1, fieldSize: MAX_FIELD_BYTES } });
  }
  if (!app.hasContentTypeParser('application/octet-stream')) {
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: limit }, (_request, body, done) => {
      done(null, body);
    });
  }

  app.get(
    '/models',
    {
      config: { role: 'read' },
      schema: {
        summary: 'List registered models with the latest version per stage and their aliases',
        tags: TAGS,
        querystring: PageQuery,
        response: {
          200: Type.Object({ models: Type.Array(ModelSummarySchema), next_page_token: Type.Optional(Type.String()) }),
          ...errorResponses(400, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const offset = decodePageToken(request.query.page_token);
      const page = await registry.listModels(offset, request.query.limit ?? 100);
      return {
        models: page.items.map(modelSummaryReply),
        ...(page.nextOffset === undefined ? {} : { next_page_token: encodePageToken(page.nextOffset) }),
      };
    },
  );

  app.post(
    '/models',
    {
      config: { role: 'train' },
      schema: {
        summary: 'Create a registered model (409 if the name is taken)',
        tags: TAGS,
        body: CreateModelBody,
        response: { 201: ModelSummarySchema, ...errorResponses(400, 409, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const { name, description, tags } = request.body;
      const model = await registry.createModel(
        name,
        { ...(description === undefined ? {} : { description }), ...(tags === undefined ? {} : { tags: parseTags(tags, '/body/tags') }) },
        actorOf(request).keyId,
      );
      return reply.code(201).send(modelSummaryReply(model));
    },
  );

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
      const result = await registry.transitionStage(body.name, body.version, body.stage, {
        archiveExistingVersions: body.archive_existing_versions ?? false,
        actor: actorOf(request),
      });
      return { ...versionReply(result.version), archived_versions: [...result.archived] };
    },
  );

  app.get(
    '/models/:name',
    {
      config: { role: 'read' },
      schema: {
        summary: 'A registered model with all versions, stages, aliases, tags and traffic split',
        tags: TAGS,
        params: NameParams,
        response: { 200: ModelDetailSchema, ...errorResponses(404, ...AUTH_ERRORS) },
      },
    },
    async (request) => modelDetailReply(await registry.getModel(request.params.name)),
  );

  app.patch(
    '/models/:name',
    {
      config: { role: 'train' },
      schema: {
        summary: "Change a registered model's description and tags (tags are merged; null removes one)",
        tags: TAGS,
        params: NameParams,
        body: PatchBody,
        response: { 200: ModelSummarySchema, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const model = await registry.updateModel(request.params.name, patchOf(request.body));
      return modelSummaryReply(model);
    },
  );

  app.delete(
    '/models/:name',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Delete a registered model and all its versions (409 while a version is in service)',
        tags: TAGS,
        params: NameParams,
        response: { 200: Type.Object({ name: Type.String(), deleted: Type.Boolean() }), ...errorResponses(404, 409, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      await registry.deleteModel(request.params.name, actorOf(request).keyId);
      return { name: request.params.name, deleted: true };
    },
  );

  app.get(
    '/models/:name/versions',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Versions of a registered model, oldest first, optionally in one stage',
        tags: TAGS,
        params: NameParams,
        querystring: Type.Object({ stage: Type.Optional(StageSchema) }),
        response: { 200: Type.Object({ name: Type.String(), versions: Type.Array(VersionSummarySchema) }), ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const versions = await registry.listVersions(request.params.name, request.query.stage);
      return { name: request.params.name, versions: versions.map(versionSummaryReply) };
    },
  );

  app.post(
    '/models/:name/versions',
    {
      config: { role: 'train' },
      bodyLimit: limit,
      schema: {
        summary: 'Register a new version from an ONNX file',
        description:
          'Send the file as multipart/form-data (field `file`, plus optional fields feature_names, class_labels, task, ' +
          'description, run_id, reference_dataset, tags), as raw application/octet-stream bytes (options in the query ' +
          'string), or JSON {source: "runs:/<run_id>/<path>"} to register a file a run logged (read from ' +
          '`runs/<run_id>/artifacts/<path>` in the artifact store). The file is checked (size, valid ONNX, no external ' +
          'data, loads in onnxruntime, runs on a row of zeros) before a version number is allocated; a bad file is a 400 ' +
          'that says why and leaves nothing behind. Converter ZipMap outputs are rewritten to probability tensors. The ' +
          'model is created if it does not exist.',
        tags: TAGS,
        params: NameParams,
        querystring: UploadQuery,
        // Only the JSON form is validated here; multipart and raw bodies are read in the handler,
        // so their schemas (for the OpenAPI document) constrain nothing.
        body: {
          content: {
            'application/json': { schema: UploadJsonBody },
            'multipart/form-data': { schema: UploadFormDoc },
            'application/octet-stream': { schema: Type.Unsafe({ description: 'the .onnx file; options in the query string' }) },
          },
        } as unknown as typeof UploadJsonBody,
        response: { 201: VersionSchema, ...errorResponses(400, 413, 415, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      checkModelName(name);
      const actor = actorOf(request).keyId;
      const fromQuery = parseUploadFields(request.query, '/querystring');
      const type = mediaType(request);
      let created;
      if (request.isMultipart()) {
        const { file, fields } = await readMultipart(request, limit);
        const options = mergeFields(fromQuery, parseUploadFields(fields, '/body'));
        created = await registry.registerVersion(name, file, options.hints, extrasOf(options, actor, 'upload'));
      } else if (type === 'application/octet-stream') {
        const bytes = await bodyBytes(request.body, limit);
        created = await registry.registerVersion(name, bytes, fromQuery.hints, extrasOf(fromQuery, actor, 'upload'));
      } else if (type === 'application/json') {
        const { source, ...rest } = request.body as { source: string } & Record<string, unknown>;
        const options = mergeFields(fromQuery, parseUploadFields(rest, '/body'));
        created = await registry.registerFromRun(name, source, options.hints, extrasOf(options, actor, source));
      } else {
        throw unsupportedMediaType(`send the model as multipart/form-data, application/octet-stream or JSON {source}; got ${type || 'no content type'}`);
      }
      return reply.code(201).send(versionReply(created));
    },
  );

  app.get(
    '/models/:name/versions/:version',
    {
      config: { role: 'read' },
      schema: {
        summary: 'One version: signature, metrics, stage, aliases, lineage (run, dataset)',
        tags: TAGS,
        params: VersionParams,
        response: { 200: VersionSchema, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => versionReply(await registry.getVersion(request.params.name, request.params.version)),
  );

  app.patch(
    '/models/:name/versions/:version',
    {
      config: { role: 'train' },
      schema: {
        summary: "Change a version's description and tags (tags are merged; null removes one)",
        tags: TAGS,
        params: VersionParams,
        body: PatchBody,
        response: { 200: VersionSchema, ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request) => versionReply(await registry.updateVersion(request.params.name, request.params.version, patchOf(request.body))),
  );

  app.delete(
    '/models/:name/versions/:version',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Delete a version and its files (409 while it is in Staging/Production, has an alias or takes traffic)',
        tags: TAGS,
        params: VersionParams,
        response: {
          200: Type.Object({ name: Type.String(), version: Type.Integer(), deleted: Type.Boolean() }),
          ...errorResponses(400, 404, 409, ...AUTH_ERRORS),
        },
      },
    },
    async (request) => {
      const { name, version } = request.params;
      await registry.deleteVersion(name, version, actorOf(request).keyId);
      return { name, version, deleted: true };
    },
  );

  app.get(
    '/models/:name/versions/:version/artifact',
    {
      config: { role: 'read' },
      schema: {
        summary: 'The servable ONNX file of a version (application/octet-stream)',
        tags: TAGS,
        params: VersionParams,
        response: { 200: Type.Unsafe<Buffer>({ type: 'string', format: 'binary' }), ...errorResponses(400, 404, ...AUTH_ERRORS) },
      },
    },
    async (request, reply) => {
      const { name, version } = request.params;
      const bytes = await registry.readArtifact(name, version);
      return reply
        .type('application/octet-stream')
        .header('content-disposition', `attachment; filename="${name.replace(/ /g, '_')}-v${version}.onnx"`)
        .send(bytes);
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
      const v = await registry.getAlias(name, alias);
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
      const v = await registry.setAlias(name, alias, request.body.version, actorOf(request).keyId);
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
      await registry.deleteAlias(name, alias, actorOf(request).keyId);
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
      const page = await registry.history(name, offset, request.query.limit ?? 100);
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
    async (request) => trafficReply(request.params.name, await registry.getTraffic(request.params.name)),
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
      const t = await registry.setTraffic(name, { routes: request.body.routes, shadow: request.body.shadow ?? [] }, actorOf(request).keyId);
      return trafficReply(name, t);
    },
  );
}

function actorOf(request: FastifyRequest): Actor {
  const p = request.principal;
  // The auth hook sets the principal on every non-public route; this only guards misconfiguration.
  if (p === undefined) throw unauthorized();
  return { keyId: p.keyId, role: p.role };
}

function patchOf(body: { description?: string | null; tags?: Record<string, string | null> }): {
  description?: string | null;
  tags?: Record<string, string | null>;
} {
  return {
    ...(body.description === undefined ? {} : { description: body.description }),
    ...(body.tags === undefined ? {} : { tags: body.tags }),
  };
}

function mediaType(request: FastifyRequest): string {
  const header = request.headers['content-type'] ?? '';
  return header.split(';')[0]!.trim().toLowerCase();
}

function mergeFields(base: UploadFields, over: UploadFields): UploadFields {
  return { ...base, ...over, hints: { ...base.hints, ...over.hints } };
}

function extrasOf(fields: UploadFields, actor: string, source: string): RegisterExtras {
  return {
    actor,
    source,
    ...(fields.description === undefined ? {} : { description: fields.description }),
    ...(fields.runId === undefined ? {} : { runId: fields.runId }),
    ...(fields.dataset === undefined ? {} : { dataset: fields.dataset }),
    ...(fields.tags === undefined ? {} : { tags: fields.tags }),
  };
}

/**
 * Reads a multipart upload: the one file (field `file`) and the text fields, whichever order
 * they come in. Every part is consumed, so an error leaves no half-read stream behind.
 */
async function readMultipart(request: FastifyRequest, limit: number): Promise<{ file: Buffer; fields: Record<string, string> }> {
  const fields: Record<string, string> = {};
  let file: Buffer | undefined;
  let misplaced: string | undefined;
  for await (const part of request.parts({ limits: { fileSize: limit, files: 1, fieldSize: MAX_FIELD_BYTES } })) {
    if (part.type === 'file') {
      if (part.fieldname === 'file') file = await part.toBuffer();
      else {
        misplaced = part.fieldname;
        part.file.resume();
      }
    } else {
      fields[part.fieldname] = typeof part.value === 'string' ? part.value : String(part.value);
    }
  }
  if (misplaced !== undefined) throw invalidField(`/body/${misplaced}`, "send the model file in the multipart field 'file'");
  if (file === undefined) throw invalidField('/body/file', "the multipart form has no file field 'file'");
  return { file, fields };
}

/** The raw body as bytes, whether another feature's parser gave a buffer or a stream. */
async function bodyBytes(body: unknown, limit: number): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body !== null && typeof body === 'object' && Symbol.asyncIterator in body) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as Readable) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      size += b.length;
      if (size > limit) throw payloadTooLarge(`the model file is larger than the limit of ${limit} bytes`);
      chunks.push(b);
    }
    return Buffer.concat(chunks);
  }
  throw invalidField('/body', 'the body holds no file bytes');
}
