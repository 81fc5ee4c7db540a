/**
 * Open Inference Protocol (KServe V2) REST over the serving layer: server and model metadata,
 * health (the status code is the signal), model readiness and inference, with Triton's binary
 * tensor extension. Inference goes through the prediction service like `/predict` (same route
 * with stage, alias and traffic split, cache, micro-batcher, counters); this folder only reads
 * the protocol's tensors into rows and writes the model's outputs back as tensors.
 *
 * Errors are `{"error": "<message>"}` with Triton's statuses: 400 for a bad request, 404 for an
 * unknown model or version, 503 while a model cannot serve.
 */
import { gunzip, inflate } from 'node:zlib';
import { Type, type TSchema } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../platform/app-type.ts';
import { AppError, notFound } from '../platform/errors.ts';
import type { StatusBoard } from '../platform/status.ts';
import { collectBody } from '../serving/request-body.ts';
import type { LoadedModel } from '../serving/loaded-model.ts';
import type { PredictionService } from '../serving/prediction.service.ts';
import type { ModelQuery, ServingService } from '../serving/serving.service.ts';
import { VERSION } from '../version.ts';
import { readInferRequest, readInferRows, type InferBody } from './infer-request.ts';
import { chooseOutputs, inferAnswer, modelOutputs } from './infer-response.ts';
import { badInfer } from './tensors.ts';

/** What the routes need. */
export interface KServeDeps {
  readonly service: ServingService;
  readonly predictions: PredictionService;
  readonly status: StatusBoard;
  /** Every registered version of a model (metadata `versions`); `undefined` without a registry. */
  readonly versions?: (name: string) => Promise<readonly number[]>;
}

const KServeError = Type.Object({ error: Type.String() });
const ERRORS = Object.fromEntries([400, 401, 403, 404, 413, 415, 429, 503].map((s) => [s, KServeError]));
const Tensor = Type.Object({ name: Type.String(), datatype: Type.String(), shape: Type.Array(Type.Integer()) });
const ModelMetadata = Type.Object({
  name: Type.String(),
  versions: Type.Array(Type.String()),
  platform: Type.String(),
  inputs: Type.Array(Tensor),
  outputs: Type.Array(Tensor),
});
const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 256 }) });
const VersionParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 256 }), version: Type.String({ minLength: 1, maxLength: 64 }) });
const INFER_HEADER = 'inference-header-content-length';

/** The protocol's error body: the message only. */
export function renderKServeError(error: AppError): { error: string } {
  return { error: error.message };
}

/** Registers `/v2/...` in its own scope: its body parser and error shape stay there. */
export async function kserveRoutes(app: App, deps: KServeDeps): Promise<void> {
  app.addErrorFormat({ prefix: '/v2', render: renderKServeError });
  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    installInferParser(scope);
    v2Routes(scope, deps);
  });
}

/**
 * Every infer body, whatever its content type (tritonclient sends none): collected with the
 * server's body limit, inflated when `Content-Encoding` is gzip or deflate, and split at
 * `Inference-Header-Content-Length` into the JSON header and the binary tensors after it.
 */
function installInferParser(scope: App): void {
  scope.removeAllContentTypeParsers();
  const limit = scope.initialConfig.bodyLimit ?? 1024 * 1024;
  scope.addContentTypeParser('*', (request, payload, done) => {
    collectBody(request, payload, limit, (err, chunks, length) => {
      if (err !== null) {
        done(err, undefined);
        return;
      }
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
      if (request.headers['content-encoding'] === undefined) {
        // The common case, without a promise.
        let body: InferBody;
        try {
          body = splitBody(request, raw);
        } catch (e) {
          done(e as Error, undefined);
          return;
        }
        done(null, body);
        return;
      }
      decode(request, raw, limit)
        .then((bytes) => splitBody(request, bytes))
        .then(
          (body) => done(null, body),
          (e: unknown) => done(e instanceof Error ? e : new Error(String(e)), undefined),
        );
    });
  });
}

/** The body without its `Content-Encoding` (gzip, deflate), at most `limit` bytes inflated. */
async function decode(request: FastifyRequest, raw: Buffer, limit: number): Promise<Buffer> {
  const encoding = request.headers['content-encoding']?.trim().toLowerCase();
  if (encoding === undefined || encoding === '' || encoding === 'identity') return raw;
  if (encoding !== 'gzip' && encoding !== 'deflate') throw new AppError(415, 'unsupported_media_type', `Content-Encoding '${encoding}' is not supported (gzip, deflate)`);
  const inflateWith = encoding === 'gzip' ? gunzip : inflate;
  return new Promise((resolve, reject) => {
    inflateWith(raw, { maxOutputLength: limit }, (err, out) => {
      if (err === null) resolve(out);
      else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') reject(new AppError(413, 'payload_too_large', `the inflated request body is larger than the limit of ${limit} bytes`));
      else reject(badInfer(`the ${encoding} request body cannot be inflated: ${err.message}`));
    });
  });
}

/** The JSON header and, with `Inference-Header-Content-Length`, the binary section after it. */
function splitBody(request: FastifyRequest, bytes: Buffer): InferBody {
  const given = request.headers[INFER_HEADER];
  let headerLength = bytes.length;
  let binary: Buffer | undefined;
  if (given !== undefined) {
    const n = Number(given);
    if (typeof given !== 'string' || !/^\d+$/.test(given.trim()) || n > bytes.length) {
      throw badInfer(`Inference-Header-Content-Length must be a whole number of bytes no larger than the body (${bytes.length}); got '${String(given)}'`);
    }
    headerLength = n;
    binary = bytes.subarray(n);
  }
  if (headerLength === 0) throw badInfer('the request body is empty; send the inference request as JSON');
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('utf8', 0, headerLength));
  } catch (err) {
    throw badInfer(`the inference request header is not valid JSON: ${(err as Error).message}`);
  }
  return { header, binary };
}

/** The serving query of `/v2/models/{name}[/versions/{v}]`: the version, or the model's serving route. */
function queryOf(service: ServingService, name: string, version: string | undefined): ModelQuery {
  if (version === undefined) {
    // Single-file mode: the file's model answers under its own name.
    const def = service.defaultModel;
    if (def !== undefined && def.identity.version.startsWith('file:') && def.identity.name === name) return {};
    return { model: name };
  }
  if (!/^[1-9]\d{0,9}$/.test(version)) throw notFound(`model '${name}' has no version '${version}'`);
  return { model: name, version: Number(version) };
}

/** The model a query picks (loading it the first time). */
async function pickModel(service: ServingService, query: ModelQuery): Promise<LoadedModel> {
  return service.pick(query);
}

/**
 * Every registered version of a model, for metadata; empty when the catalogue has no such model
 * (serving may resolve through another registry reader: tests, single-file mode).
 */
async function registeredVersions(deps: KServeDeps, name: string): Promise<readonly number[]> {
  if (deps.versions === undefined) return [];
  try {
    return await deps.versions(name);
  } catch (err) {
    if (err instanceof AppError && err.status === 404) return [];
    throw err;
  }
}

/** Columns per row of each output of a loaded model, found once by running one zero row. */
const outputWidths = new WeakMap<LoadedModel, Promise<number>>();

function outputWidth(model: LoadedModel): Promise<number> {
  let w = outputWidths.get(model);
  if (w === undefined) {
    const rows = model.signature.input.fixedBatch ?? 1;
    w = model.runtime.run(model.allocRows(rows), rows).then((out) => out.width);
    outputWidths.set(model, w);
  }
  return w;
}

function v2Routes(app: App, deps: KServeDeps): void {
  const { service, predictions, status } = deps;

  app.get(
    '/v2',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Open Inference Protocol: server metadata',
        tags: ['kserve'],
        response: { 200: Type.Object({ name: Type.String(), version: Type.String(), extensions: Type.Array(Type.String()) }), ...ERRORS },
      },
    },
    async () => ({ name: 'modelplane', version: VERSION, extensions: ['binary_tensor_data'] }),
  );

  app.get(
    '/v2/health/live',
    { config: { role: 'public' }, schema: { summary: 'Open Inference Protocol: 200 while the process serves', tags: ['kserve'], response: { 200: Type.Object({ live: Type.Boolean() }) } } },
    async () => ({ live: true }),
  );

  app.get(
    '/v2/health/ready',
    {
      config: { role: 'public' },
      schema: { summary: 'Open Inference Protocol: 200 when ready (the checks of /ready), else 503', tags: ['kserve'], response: { 200: Type.Object({ ready: Type.Boolean() }), 503: KServeError } },
    },
    async (_request, reply) => {
      const result = await status.runChecks();
      if (result.ready) return { ready: true };
      const failed = Object.entries(result.checks)
        .filter(([, c]) => !c.ok)
        .map(([n, c]) => (c.detail === undefined ? n : `${n}: ${c.detail}`));
      return reply.code(503).send({ error: `not ready: ${failed.join('; ')}` });
    },
  );

  const metadata = async (name: string, version: string | undefined) => {
    const model = await pickModel(service, queryOf(service, name, version));
    const f = model.nFeatures;
    const outputs = modelOutputs(model);
    const needsWidth = outputs.some((o) => o.kind === 'values' || (o.kind === 'probabilities' && model.classes === null));
    const width = needsWidth ? await outputWidth(model) : (model.classes?.length ?? 1);
    const registered = model.identity.version.startsWith('file:') ? [] : await registeredVersions(deps, model.identity.name);
    return {
      name,
      versions: registered.length > 0 ? registered.map(String) : [model.identity.version],
      platform: 'onnx_onnxv1',
      inputs: [{ name: model.signature.input.name, datatype: model.double ? 'FP64' : 'FP32', shape: [-1, f] }],
      outputs: outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.kind === 'label' ? [-1] : [-1, width] })),
    };
  };
  const metadataSchema = <P extends TSchema>(summary: string, params: P) => ({
    config: { role: 'predict' as const },
    schema: { summary, tags: ['kserve'], params, response: { 200: ModelMetadata, ...ERRORS } },
  });
  app.get('/v2/models/:name', metadataSchema('Open Inference Protocol: metadata of the version the model serves', NameParams), (request) => metadata(request.params.name, undefined));
  app.get('/v2/models/:name/versions/:version', metadataSchema('Open Inference Protocol: metadata of one version', VersionParams), (request) =>
    metadata(request.params.name, request.params.version),
  );

  const ready = async (name: string, version: string | undefined) => {
    const model = await pickModel(service, queryOf(service, name, version));
    return { name, ready: !model.released };
  };
  const readySchema = <P extends TSchema>(summary: string, params: P) => ({
    config: { role: 'predict' as const },
    schema: { summary, tags: ['kserve'], params, response: { 200: Type.Object({ name: Type.String(), ready: Type.Boolean() }), ...ERRORS } },
  });
  app.get('/v2/models/:name/ready', readySchema('Open Inference Protocol: 200 when the model can serve (404 unknown, 503 not servable)', NameParams), (request) =>
    ready(request.params.name, undefined),
  );
  app.get('/v2/models/:name/versions/:version/ready', readySchema('Open Inference Protocol: 200 when the version can serve', VersionParams), (request) =>
    ready(request.params.name, request.params.version),
  );

  const infer = async (name: string, version: string | undefined, body: unknown, reply: FastifyReply) => {
    if (body === undefined) throw badInfer('the request body is empty; send the inference request as JSON');
    const request = readInferRequest(body as InferBody);
    const query = queryOf(service, name, version);
    const { model, rows, outputs, offset } = await predictions.predictOutputs(query, (m) => readInferRows(request, m, predictions.maxBatchSize), reply.request.id);
    const chosen = chooseOutputs(model, request.outputs, request.binaryOutput);
    const answer = inferAnswer(model, outputs, offset, rows, chosen, request.id);
    if ('json' in answer) return reply.type('application/json').send(answer.json);
    return reply.header('Inference-Header-Content-Length', Buffer.byteLength(answer.header)).type('application/octet-stream').send(answer.body);
  };
  const inferSchema = <P extends TSchema>(summary: string, params: P, endpoint: string) => ({
    config: { role: 'predict' as const, answered: predictions.answered(endpoint) },
    schema: {
      summary,
      tags: ['kserve'],
      params,
      description:
        'Body: the inference request JSON ({id, parameters, inputs: [{name, shape, datatype, data | parameters.binary_data_size}], outputs}); with the binary tensor extension, the JSON is followed by the binary inputs and its length is given in Inference-Header-Content-Length.',
      response: { ...ERRORS },
    },
  });
  app.post('/v2/models/:name/infer', inferSchema('Open Inference Protocol: inference on the version the model serves (stage, alias, traffic split)', NameParams, '/v2/models/:name/infer'), (request, reply) =>
    infer(request.params.name, undefined, request.body, reply),
  );
  app.post(
    '/v2/models/:name/versions/:version/infer',
    inferSchema('Open Inference Protocol: inference on one version', VersionParams, '/v2/models/:name/versions/:version/infer'),
    (request, reply) => infer(request.params.name, request.params.version, request.body, reply),
  );
}
