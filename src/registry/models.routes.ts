/**
 * Registered models and their versions over HTTP (API.md "Model registry"): create, list, show,
 * update and delete models; upload versions (multipart, raw bytes or a run's file), show, update,
 * delete them and download their ONNX bytes.
 */
import { multipartError, multipartParts } from '../platform/multipart.ts';
import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { App } from '../platform/app-type.ts';
import { AppError, forbidden, invalidField, payloadTooLarge, unsupportedMediaType } from '../platform/errors.ts';
import { roleAllows } from '../platform/auth.ts';
import { TUNABLE_PREFIX } from '../serving/model-tunables.ts';
import { AUTH_ERRORS, PageQuery, decodePageToken, encodePageToken, errorResponses } from '../platform/schemas.ts';
import { Stage as StageSchema } from '../config.ts';
import { parseTags, parseUploadFields, type UploadFields } from './registry.hints.ts';
import { checkModelName } from './registry.model.ts';
import type { ModelsService, RegisterExtras } from './models.service.ts';
import { actorOf } from './lifecycle.routes.ts';
import {
  CreateModelBody,
  ModelDetailSchema,
  ModelSummarySchema,
  NameParams,
  PatchBody,
  UploadJsonBody,
  UploadQuery,
  VersionParams,
  VersionSchema,
  VersionSummarySchema,
  modelDetailReply,
  modelSummaryReply,
  versionReply,
  versionSummaryReply,
} from './registry.schemas.ts';

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


/**
 * Lookups of what an upload's lineage points at, owned by other features (tracking, datasets).
 * Each resolves when the run or dataset version exists and rejects with a 404 `AppError`
 * otherwise.
 */
export interface LineageChecks {
  run(runId: string): Promise<unknown>;
  dataset(name: string, version: number | undefined): Promise<unknown>;
}

/**
 * Refuses an upload whose `run_id` or `reference_dataset` names nothing: a version's lineage
 * must point at a run and a dataset that exist. 400 naming the field and what was missing.
 */
async function checkLineage(checks: LineageChecks | undefined, fields: UploadFields, where: '/querystring' | '/body'): Promise<void> {
  if (checks === undefined) return;
  const refuse = (field: string) => (err: unknown) => {
    if (err instanceof AppError && err.status === 404) throw invalidField(`${where}/${field}`, err.message);
    throw err;
  };
  if (fields.runId !== undefined) await checks.run(fields.runId).catch(refuse('run_id'));
  if (fields.dataset !== undefined) await checks.dataset(fields.dataset.name, fields.dataset.version ?? undefined).catch(refuse('reference_dataset'));
}

/**
 * Serving tunables (`modelplane.*` tags: batch size, queue delay) change how every prediction
 * of a model is served. On a model that serves Production, an alias or a traffic split they are
 * an admin's to set, like the stage itself: a train key could otherwise slow every request.
 * @throws AppError 403
 */
async function checkTunablesRole(models: ModelsService, request: FastifyRequest): Promise<void> {
  const principal = request.principal;
  const tags = (request.body as { tags?: Record<string, unknown> } | undefined)?.tags;
  if (principal === undefined || roleAllows(principal.role, 'admin') || tags === undefined) return;
  const tunables = Object.keys(tags).filter((k) => k.startsWith(TUNABLE_PREFIX));
  if (tunables.length === 0) return;
  const { name } = request.params as { name: string };
  const model = await models.getModel(name);
  const serves = model.latestVersions.some((l) => l.stage === 'Production') || Object.keys(model.aliases).length > 0 || model.traffic !== null;
  if (serves) {
    throw forbidden(`tags ${tunables.join(', ')} tune how '${name}' serves Production or an alias; setting them needs role 'admin' (the key has role '${principal.role}')`);
  }
}

/** Model and version routes, with the upload parsers (multipart and raw bytes up to `maxModelBytes`). */
export async function modelRoutes(app: App, models: ModelsService, options: { maxModelBytes: number; lineage?: LineageChecks }): Promise<void> {
  const limit = options.maxModelBytes;

  // Other features may accept the same content type; the first to ask installs the parser.
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
      const page = await models.listModels(offset, request.query.limit ?? 100);
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
      const model = await models.createModel(
        name,
        { ...(description === undefined ? {} : { description }), ...(tags === undefined ? {} : { tags: parseTags(tags, '/body/tags') }) },
        actorOf(request).keyId,
      );
      return reply.code(201).send(modelSummaryReply(model));
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
    async (request) => modelDetailReply(await models.getModel(request.params.name)),
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
      await checkTunablesRole(models, request);
      const model = await models.updateModel(request.params.name, patchOf(request.body));
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
      await models.deleteModel(request.params.name, actorOf(request).keyId);
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
      const versions = await models.listVersions(request.params.name, request.query.stage);
      return { name: request.params.name, versions: versions.map(versionSummaryReply) };
    },
  );

  // The upload route has the multipart parser in a scope of its own: @fastify/multipart adds an
  // onRequest and an onResponse hook to every route of the scope it is registered in, which on the
  // root would run (and allocate) on every prediction.
  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    await scope.register(multipart, { limits: { fileSize: limit, files: 1, fieldSize: MAX_FIELD_BYTES } });

    scope.post(
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
        await checkLineage(options.lineage, fromQuery, '/querystring');
        const type = mediaType(request);
        let created;
        if (request.isMultipart()) {
          const { file, fields } = await readMultipart(request, limit);
          const fromBody = parseUploadFields(fields, '/body');
          await checkLineage(options.lineage, fromBody, '/body');
          const merged = mergeFields(fromQuery, fromBody);
          created = await models.registerVersion(name, file, merged.hints, extrasOf(merged, actor, 'upload'));
        } else if (type === 'application/octet-stream') {
          const bytes = await bodyBytes(request.body, limit);
          created = await models.registerVersion(name, bytes, fromQuery.hints, extrasOf(fromQuery, actor, 'upload'));
        } else if (type === 'application/json') {
          const { source, ...rest } = request.body as { source: string } & Record<string, unknown>;
          const fromBody = parseUploadFields(rest, '/body');
          await checkLineage(options.lineage, fromBody, '/body');
          const merged = mergeFields(fromQuery, fromBody);
          created = await models.registerFromRun(name, source, merged.hints, extrasOf(merged, actor, source));
        } else {
          throw unsupportedMediaType(`send the model as multipart/form-data, application/octet-stream or JSON {source}; got ${type || 'no content type'}`);
        }
        return reply.code(201).send(versionReply(created));
      },
    );
  });

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
    async (request) => versionReply(await models.getVersion(request.params.name, request.params.version)),
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
    async (request) => versionReply(await models.updateVersion(request.params.name, request.params.version, patchOf(request.body))),
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
      await models.deleteVersion(name, version, actorOf(request).keyId);
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
      const bytes = await models.readArtifact(name, version);
      return reply
        .type('application/octet-stream')
        .header('content-disposition', `attachment; filename="${name.replace(/ /g, '_')}-v${version}.onnx"`)
        .send(bytes);
    },
  );

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
  for await (const part of multipartParts(request, { limits: { fileSize: limit, files: 1, fieldSize: MAX_FIELD_BYTES } })) {
    if (part.type === 'file') {
      if (part.fieldname === 'file') file = await readPart(part, limit);
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

/**
 * A file part's bytes, up to `limit`. The parser truncates a larger file but keeps reading the
 * request to the part's end, so the first byte over the limit is refused here at once (and the
 * route closes the connection); a form cut off inside the file is the client's 400.
 */
async function readPart(part: { file: Readable & { truncated?: boolean } }, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of part.file) {
      if (part.file.truncated === true) {
        part.file.destroy();
        throw payloadTooLarge(`the model file is larger than the limit of ${limit} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw multipartError(err);
  }
  return Buffer.concat(chunks);
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
