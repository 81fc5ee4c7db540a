import { multipartError, multipartParts } from '../platform/multipart.ts';
import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { App } from '../platform/app-type.ts';
import { invalidField, unauthorized, unsupportedMediaType } from '../platform/errors.ts';
import { AUTH_ERRORS, PageQuery, decodePageToken, encodePageToken, errorResponses } from '../platform/schemas.ts';
import { type DatasetDetail, type DatasetService, type DatasetSummary, type DatasetVersion } from './dataset.service.ts';

const TAGS = ['datasets'];
const CSV_TYPES = ['text/csv', 'application/csv', 'text/tab-separated-values'];

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) });
const VersionParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }), version: Type.Integer({ minimum: 1 }) });
const UploadQuery = Type.Object({
  delimiter: Type.Optional(Type.String({ minLength: 1, maxLength: 1, description: 'field delimiter; sniffed among , ; tab | when absent' })),
});
const RowsBody = Type.Object(
  { rows: Type.Array(Type.Object({}, { additionalProperties: true }), { minItems: 1, description: 'one object per row' }) },
  { additionalProperties: false },
);

const ColumnSchemaReply = Type.Object({
  name: Type.String(),
  type: Type.Union([Type.Literal('numeric'), Type.Literal('categorical'), Type.Literal('boolean')]),
  stats: Type.Record(Type.String(), Type.Unknown(), { description: 'numeric: count, missing, min, max, mean, std, quantiles, distinct; categorical: count, missing, distinct, top' }),
});

const VersionSummaryReply = Type.Object({
  name: Type.String(),
  version: Type.Integer(),
  source: Type.String({ description: 'upload, json, builtin or import' }),
  sha256: Type.String(),
  bytes: Type.Integer(),
  rows: Type.Integer(),
  columns: Type.Integer(),
  delimiter: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  created_by: Type.String(),
});

const VersionReply = Type.Composite([
  VersionSummaryReply,
  Type.Object({ schema: Type.Object({ columns: Type.Array(ColumnSchemaReply) }) }),
]);

const BuiltinReply = Type.Object({
  description: Type.String(),
  task: Type.String(),
  target: Type.String(),
  rows: Type.Integer(),
  columns: Type.Integer(),
});

const DatasetSummaryReply = Type.Object({
  name: Type.String(),
  builtin: Type.Boolean(),
  builtin_info: Type.Optional(BuiltinReply),
  version_count: Type.Integer(),
  latest_version: Type.Union([Type.Integer(), Type.Null()]),
  updated_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const DatasetDetailReply = Type.Composite([
  DatasetSummaryReply,
  Type.Object({
    versions: Type.Array(VersionSummaryReply),
    latest: VersionReply,
    next_page_token: Type.Optional(Type.String()),
  }),
]);

/**
 * Documentation of the upload bodies. Only the JSON form is validated by the route; CSV arrives
 * as a raw stream and multipart is read part by part in the handler.
 */
const UploadBodyDoc = {
  content: {
    'application/json': { schema: RowsBody },
    // No `type`: the handler receives a stream here, which a typed schema would refuse.
    'text/csv': { schema: Type.Unsafe({ description: 'CSV with a header row, any of , ; tab | as delimiter' }) },
    'multipart/form-data': {
      schema: Type.Unsafe({
        type: 'object',
        nullable: true,
        properties: { file: { type: 'string', format: 'binary', description: 'the CSV file' } },
      }),
    },
  },
} as unknown as typeof RowsBody;

function summaryReply(s: DatasetSummary): Static<typeof DatasetSummaryReply> {
  return {
    name: s.name,
    builtin: s.builtin !== null,
    ...(s.builtin === null
      ? {}
      : {
          builtin_info: {
            description: s.builtin.description,
            task: s.builtin.task,
            target: s.builtin.target,
            rows: s.builtin.rows,
            columns: s.builtin.columns,
          },
        }),
    version_count: s.versionCount,
    latest_version: s.latestVersion,
    updated_at: s.updatedAt === null ? null : new Date(s.updatedAt).toISOString(),
  };
}

function versionSummaryReply(v: DatasetVersion): Static<typeof VersionSummaryReply> {
  return {
    name: v.name,
    version: v.version,
    source: v.source,
    sha256: v.sha256,
    bytes: v.bytes,
    rows: v.rowCount,
    columns: v.columnCount,
    delimiter: v.delimiter,
    created_at: new Date(v.createdAt).toISOString(),
    created_by: v.createdBy,
  };
}

function versionReply(v: DatasetVersion): Static<typeof VersionReply> {
  return { ...versionSummaryReply(v), schema: (v.schema ?? { columns: [] }) as unknown as Static<typeof VersionReply>['schema'] };
}

function detailReply(d: DatasetDetail & { nextOffset?: number }): Static<typeof DatasetDetailReply> {
  return {
    ...summaryReply(d),
    versions: d.versions.map(versionSummaryReply),
    latest: versionReply(d.latest),
    ...(d.nextOffset === undefined ? {} : { next_page_token: encodePageToken(d.nextOffset) }),
  };
}

function actorOf(request: FastifyRequest): string {
  const p = request.principal;
  // The auth hook sets the principal on every non-public route; this only guards misconfiguration.
  if (p === undefined) throw unauthorized();
  return p.keyId;
}

function mediaType(request: FastifyRequest): string {
  return String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * Chunks of a stream that, unlike `for await` on the stream itself, do not destroy it when the
 * consumer stops early: destroying a request would reset the connection before the 400/413 reply
 * is written.
 */
function keepOpen(stream: Readable): AsyncIterable<Buffer> {
  return { [Symbol.asyncIterator]: () => stream.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer> };
}

/** The request body was not read to its end: close the connection after the error reply. */
function closeIfUnread(request: FastifyRequest, reply: FastifyReply): void {
  if (!request.raw.complete) void reply.header('connection', 'close');
}

/**
 * Dataset API (API.md "Training, datasets, experiments"): uploads as streamed CSV, multipart or
 * JSON rows; listings and versions with schema and statistics. Registered in its own scope so its
 * streaming CSV parser stays local (`/invocations` parses CSV into a string instead).
 */
export async function datasetRoutes(app: App, datasets: DatasetService, options: { maxBytes: number }): Promise<void> {
  const maxBytes = options.maxBytes;

  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    // The raw request stream is handed on untouched: the service hashes, stores and parses it as
    // it arrives and enforces the size limit itself.
    scope.addContentTypeParser(CSV_TYPES, (_request, payload, done) => {
      done(null, payload);
    });
    if (!scope.hasContentTypeParser('multipart/form-data')) {
      await scope.register(multipart, { limits: { fileSize: maxBytes + 1, files: 1 } });
    }

    scope.post(
      '/datasets/:name',
      {
        config: { role: 'train' },
        bodyLimit: maxBytes,
        schema: {
          summary: 'Upload a new dataset version (CSV, multipart or JSON rows)',
          description:
            'Send CSV as `text/csv` (streamed; header row; delimiter sniffed among , ; tab | unless `?delimiter=` is given), ' +
            'as multipart/form-data (field `file`), or JSON `{rows: [{column: value, ...}, ...]}`. Every upload becomes a new ' +
            'immutable version with its sha-256, row count, inferred schema and column statistics. A parse error is a 400 ' +
            'naming the line (or row); a body over DATASET_MAX_BYTES is a 413; either leaves nothing behind. Built-in ' +
            'dataset names are reserved (409).',
          tags: TAGS,
          params: NameParams,
          querystring: UploadQuery,
          body: UploadBodyDoc,
          response: { 201: VersionReply, ...errorResponses(400, 409, 413, 415, ...AUTH_ERRORS) },
        },
      },
      async (request, reply) => {
        const { name } = request.params;
        const actor = actorOf(request);
        const delimiter = request.query.delimiter;
        const options = { actor, ...(delimiter === undefined ? {} : { delimiter }) };
        const type = mediaType(request);
        let created: DatasetVersion;
        try {
          if (CSV_TYPES.includes(type)) {
            created = await datasets.uploadCsv(name, keepOpen(request.body as unknown as Readable), options);
          } else if (request.isMultipart()) {
            created = await uploadMultipart(request, name, options, maxBytes);
          } else if (type === 'application/json') {
            created = await datasets.uploadRows(name, request.body.rows, options);
          } else {
            throw unsupportedMediaType(`send the dataset as text/csv, multipart/form-data or JSON {rows}; got ${type || 'no content type'}`);
          }
        } catch (err) {
          closeIfUnread(request, reply);
          throw multipartError(err);
        }
        return reply.code(201).send(versionReply(created));
      },
    );

    async function uploadMultipart(
      request: FastifyRequest,
      name: string,
      options: { actor: string; delimiter?: string },
      limit: number,
    ): Promise<DatasetVersion> {
      let created: DatasetVersion | undefined;
      let delimiter = options.delimiter;
      for await (const part of multipartParts(request, { limits: { fileSize: limit + 1, files: 1 } })) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file' || created !== undefined) {
            part.file.resume();
            throw invalidField(`/body/${part.fieldname}`, "send the CSV in one multipart field named 'file'");
          }
          created = await datasets.uploadCsv(name, keepOpen(part.file), {
            actor: options.actor,
            ...(delimiter === undefined ? {} : { delimiter }),
          });
        } else if (part.fieldname === 'delimiter' && typeof part.value === 'string' && part.value !== '') {
          delimiter = part.value;
        }
      }
      if (created === undefined) throw invalidField('/body/file', "the multipart form has no file field 'file'");
      return created;
    }

    scope.get(
      '/datasets',
      {
        config: { role: 'read' },
        schema: {
          summary: 'List datasets: stored ones and the built-ins (available by name)',
          tags: TAGS,
          querystring: PageQuery,
          response: {
            200: Type.Object({ datasets: Type.Array(DatasetSummaryReply), next_page_token: Type.Optional(Type.String()) }),
            ...errorResponses(400, ...AUTH_ERRORS),
          },
        },
      },
      async (request) => {
        const page = await datasets.listDatasets(decodePageToken(request.query.page_token), request.query.limit ?? 100);
        return {
          datasets: page.items.map(summaryReply),
          ...(page.nextOffset === undefined ? {} : { next_page_token: encodePageToken(page.nextOffset) }),
        };
      },
    );

    scope.get(
      '/datasets/:name',
      {
        config: { role: 'read' },
        schema: {
          summary: 'A dataset: its versions (newest first) and the newest version with schema and statistics',
          description: 'A built-in dataset is stored as version 1 the first time it is used.',
          tags: TAGS,
          params: NameParams,
          querystring: PageQuery,
          response: { 200: DatasetDetailReply, ...errorResponses(400, 404, ...AUTH_ERRORS) },
        },
      },
      async (request) =>
        detailReply(await datasets.getDataset(request.params.name, decodePageToken(request.query.page_token), request.query.limit ?? 100)),
    );

    scope.get(
      '/datasets/:name/versions/:version',
      {
        config: { role: 'read' },
        schema: {
          summary: 'One dataset version: schema, column statistics, row count, sha-256',
          tags: TAGS,
          params: VersionParams,
          response: { 200: VersionReply, ...errorResponses(400, 404, ...AUTH_ERRORS) },
        },
      },
      async (request) => versionReply(await datasets.getVersion(request.params.name, request.params.version)),
    );
  });
}
