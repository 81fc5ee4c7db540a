/**
 * Prediction routes (API.md "Predictions"). Thin: pick the model, read the rows, run them through
 * the micro-batcher, write the answer. Replies are written as JSON text straight from the output
 * typed arrays (the schemas below document them and the tests check replies against them): a
 * generic serializer would first need an object per row.
 */
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastCounterChild } from '../platform/fast-metrics.ts';
import type { AnsweredHook } from '../platform/metrics.ts';
import { errorCodes, type FastifyReply, type FastifyRequest } from 'fastify';
import type { App } from '../platform/app-type.ts';
import { AppError, unavailable } from '../platform/errors.ts';
import { AUTH_ERRORS, errorResponses } from '../platform/schemas.ts';
import type { BatchSlice } from './batcher.ts';
import { cacheKey, rowHash, wordsOf, type PredictionCache } from './cache.ts';
import { ExplainerCache } from './explain.ts';
import { readBatch, readSingleRow } from './input.ts';
import { NumericJsonReader } from './numeric-json.ts';
import { invocationRoutes } from './invocations.routes.ts';
import { LoadedModel, num, rowJson, runRows } from './loaded-model.ts';
import { BatchBody, BatchPredictionSchema, ExplainFlag, Label, PREDICT_ROUTE, PredictQuerySchema, SingleBody, SinglePredictionSchema } from './serving.schemas.ts';
import type { ServingMetrics } from './metrics.ts';
import type { ModelQuery, ServingService } from './serving.service.ts';
import type { FloatRows } from './runtime.ts';

/** What the routes need besides the app. */
export interface ServingRouteDeps {
  readonly service: ServingService;
  readonly cache: PredictionCache | undefined;
  readonly metrics: ServingMetrics;
  readonly maxBatchSize: number;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Sends the JSON text a prediction resolves with (or its error), callback style: the handler needs
 * no async frame of its own, one promise less per request on the hot path.
 */
function sendJson(reply: FastifyReply, body: Promise<string>): void {
  body.then(
    (text) => reply.type(JSON_TYPE).send(text),
    (err: unknown) => reply.send(err instanceof Error ? err : new Error(String(err))),
  );
}

let lastMs = 0;
let lastIso = '';
/** The current time as ISO-8601, formatted at most once per millisecond (formatting costs more than a prediction's bookkeeping). */
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}


/** Registers every prediction, model-info and cache route. */
export async function servingRoutes(app: App, deps: ServingRouteDeps): Promise<void> {
  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    useJsonParser(scope, undefined);
    await predictionRoutes(scope, deps);
  });
}

/**
 * JSON bodies of the prediction routes are parsed by `JSON.parse` alone. Fastify's default parser
 * (secure-json-parse) also scans every body twice with regular expressions for `__proto__` and
 * `constructor` keys, which protects code that merges parsed objects into others; the input
 * adapters here only read own feature values by name (`Object.hasOwn`) into typed arrays, so
 * there is nothing to poison, and the scans measured at about 2% of a single prediction's CPU.
 *
 * With `numeric`, bodies in the common row shapes are read straight into numbers first (see
 * numeric-json.ts; the input adapters take both forms); every other body is parsed as before.
 */
function useJsonParser(scope: App, numeric: NumericJsonReader | undefined): void {
  scope.removeContentTypeParser('application/json');
  if (numeric === undefined) {
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => parseJson(body as string, done));
    return;
  }
  const limit = scope.initialConfig.bodyLimit ?? 1024 * 1024;
  scope.addContentTypeParser('application/json', (request, payload, done) => {
    collectBody(request, payload, limit, (err, chunks, length) => {
      if (err !== null) {
        done(err, undefined);
        return;
      }
      const rows = length === 0 ? undefined : numeric.readChunks(chunks, length);
      if (rows !== undefined) done(null, rows);
      else parseJson((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)).toString('utf8'), done);
    });
  });
}

/**
 * Collects a request body as the chunks it arrives in, with Fastify's own checks and errors (body
 * limit, declared length): Fastify's `parseAs: 'buffer'` would join every body into a new buffer,
 * which for a 1000-row batch is half a megabyte of garbage per request; the numeric reader joins
 * them in a buffer it keeps.
 */
function collectBody(request: FastifyRequest, payload: NodeJS.ReadableStream, limit: number, then: (err: Error | null, chunks: Buffer[], length: number) => void): void {
  const declared = Number(request.headers['content-length']);
  if (declared > limit) {
    then(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), [], 0);
    return;
  }
  const chunks: Buffer[] = [];
  let length = 0;
  const stop = (): void => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onEnd);
  };
  const onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    length += bytes.length;
    if (length > limit) {
      stop();
      then(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), [], 0);
      return;
    }
    chunks.push(bytes);
  };
  const onEnd = (err?: Error & { statusCode?: number }): void => {
    stop();
    if (err != null) {
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
      then(err, [], 0);
    } else if (!Number.isNaN(declared) && length !== declared) then(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH(), [], 0);
    else then(null, chunks, length);
  };
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onEnd);
  payload.resume();
}

function parseJson(text: string, done: (err: Error | null, body: unknown) => void): void {
  if (text.length === 0) {
    done(new AppError(400, 'bad_request', 'the request body is empty; send a JSON object'), undefined);
    return;
  }
  try {
    done(null, JSON.parse(text));
  } catch (err) {
    done(new AppError(400, 'bad_request', `the request body is not valid JSON: ${(err as Error).message}`), undefined);
  }
}

async function predictionRoutes(app: App, deps: ServingRouteDeps): Promise<void> {
  const { service, cache, metrics, maxBatchSize } = deps;
  const usage = service.usage;
  const counters = new WeakMap<LoadedModel, { single: FastCounterChild; batch: FastCounterChild }>();
  const predictionCounters = (m: LoadedModel): { single: FastCounterChild; batch: FastCounterChild } => {
    let c = counters.get(m);
    if (c === undefined) {
      c = {
        single: metrics.predictions.labels(m.identity.name, m.identity.version, 'single'),
        batch: metrics.predictions.labels(m.identity.name, m.identity.version, 'batch'),
      };
      counters.set(m, c);
    }
    return c;
  };

  /**
   * Per-route counters of API.md's prediction metrics and the usage summary of /info, as the
   * route's `config.answered` (called by the request metrics' per-route hook).
   */
  const counted = (endpoint: string): AnsweredHook => {
    const c = metrics.endpoint(endpoint);
    return (seconds, status) => {
      c.total.inc();
      usage.requests++;
      usage.latency_ms_total += seconds * 1000;
      if (status < 400) c.ok.inc();
      else {
        c.failed.inc();
        usage.failures++;
      }
      c.latency.observe(seconds);
    };
  };

  const explainers = new ExplainerCache((m) => service.trainingReference(m.identity));

  /**
   * `?explain=true`: predictions with Shapley contributions, straight from the model's runtime
   * (no prediction cache, no micro-batcher, no shadow copies); see explain.ts.
   */
  const explainRows = async (model: LoadedModel, input: FloatRows, rows: number, kind: 'single' | 'batch'): Promise<(row: number) => string> => {
    model.inFlight++;
    let result;
    try {
      result = await explainers.explain(model, input, rows);
    } catch (err) {
      if (!(err instanceof AppError)) model.failures++;
      throw err;
    } finally {
      model.inFlight--;
    }
    model.predictions += rows;
    usage.predictions += rows;
    predictionCounters(model)[kind].inc(rows);
    const { explainer, explanations } = result;
    return (row: number): string => `${rowJson(model, explanations.outputs, row)},${explainer.json(explanations, row)}`;
  };

  const explainSingle = async (request: FastifyRequest, model: LoadedModel, row: FloatRows, t0: number): Promise<string> =>
    singleJson(request, model, (await explainRows(model, row, 1, 'single'))(0), false, t0);

  const explainBatch = async (model: LoadedModel, input: FloatRows, rows: number, t0: number): Promise<string> =>
    batchJson(model, rows, await explainRows(model, input, rows, 'batch'), t0);

  const predictSingle = async (request: FastifyRequest, reply: FastifyReply, query: ModelQuery): Promise<string> => {
    const t0 = performance.now();
    const picked = service.pick(query);
    const model = picked instanceof LoadedModel ? picked : await picked;
    const row = readSingleRow(request.body, model);
    if (wantsExplanation(request)) return explainSingle(request, model, row, t0);
    let fragment: string | undefined;
    let cached = false;
    model.inFlight++;
    try {
      let key: string | undefined;
      if (cache !== undefined) {
        if (cache.admits(rowHash(model.cacheSeed, row, 0, model.nFeatures))) {
          key = cacheKey(model.identity.cacheTag, row);
          const hit = cache.get(key);
          fragment = typeof hit === 'object' ? await hit : hit;
        }
        if (fragment !== undefined) {
          cached = true;
          model.cacheHits++;
          metrics.cacheHits.inc();
        } else metrics.cacheMisses.inc();
      }
      if (fragment === undefined) {
        const slice = await runRows(model, row, 1);
        fragment = rowJson(model, slice.outputs, slice.offset);
        if (key !== undefined) cache!.set(key, fragment);
      }
    } catch (err) {
      model.failures++;
      throw err;
    } finally {
      model.inFlight--;
    }
    model.predictions++;
    usage.predictions++;
    predictionCounters(model).single.inc();
    const shadows = service.shadowsOf(query);
    // Shadow runs read the row later; otherwise nothing does any more.
    if (shadows.length > 0) runShadows(shadows, row, metrics);
    else model.releaseRows(row);
    return singleJson(request, model, fragment, cached, t0);
  };

  const predictBatch = async (request: FastifyRequest, reply: FastifyReply, query: ModelQuery): Promise<string> => {
    const t0 = performance.now();
    const picked = service.pick(query);
    const model = picked instanceof LoadedModel ? picked : await picked;
    const { input, rows } = readBatch(request.body, model, maxBatchSize);
    if (wantsExplanation(request)) return explainBatch(model, input, rows, t0);
    let slice: BatchSlice | undefined;
    let fragments: string[] | undefined;
    model.inFlight++;
    try {
      if (cache === undefined) slice = await runRows(model, input, rows);
      else fragments = await predictRowsThroughCache(cache, model, input, rows, metrics);
    } catch (err) {
      model.failures++;
      throw err;
    } finally {
      model.inFlight--;
    }
    model.predictions += rows;
    usage.predictions += rows;
    predictionCounters(model).batch.inc(rows);
    const shadows = service.shadowsOf(query);
    // Shadow runs read the rows later; otherwise nothing does any more.
    if (shadows.length > 0) runShadows(shadows, input, metrics, rows);
    else model.releaseRows(input);
    const computed = slice;
    return batchJson(model, rows, computed === undefined ? (i) => fragments![i]! : (i) => rowJson(model, computed.outputs, computed.offset + i), t0);
  };

  const singleSchema = (summary: string, withQuery: boolean) => ({
    summary,
    tags: ['predictions'],
    ...(withQuery ? { querystring: PredictQuerySchema } : {}),
    body: SingleBody,
    response: { 200: SinglePredictionSchema, ...errorResponses(400, 404, 413, 415, ...AUTH_ERRORS, 503) },
  });

  // The five row routes read their bodies with the numeric reader; /invocations keeps plain JSON.
  await app.register(async (child) => {
    const fast = child.withTypeProvider<TypeBoxTypeProvider>();
    useJsonParser(fast, new NumericJsonReader());
    fast.post(
      '/predict',
      { config: { ...PREDICT_ROUTE, answered: counted('/predict') }, schema: singleSchema('Predict one row (default model, or ?model= with version|stage|alias)', true) },
      (request, reply) => sendJson(reply, predictSingle(request, reply, request.query as ModelQuery)),
    );

    fast.post(
      '/predict/staging',
      {
        config: { ...PREDICT_ROUTE, answered: counted('/predict/staging') },
        schema: {
          ...singleSchema('Predict one row with the Staging version (of the default model, or ?model=)', false),
          querystring: Type.Object({ model: PredictQuerySchema.properties.model, explain: ExplainFlag }),
        },
      },
      (request, reply) => sendJson(reply, predictSingle(request, reply, { model: request.query.model ?? service.stagingModelName(), stage: 'Staging' })),
    );

    fast.post(
      '/models/:name/predict',
      {
        config: { ...PREDICT_ROUTE, answered: counted('/models/:name/predict') },
        schema: {
          ...singleSchema('Predict one row with a registered model named in the path', false),
          params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 256 }) }),
          querystring: Type.Omit(PredictQuerySchema, ['model']),
        },
      },
      (request, reply) => sendJson(reply, predictSingle(request, reply, { ...(request.query as ModelQuery), model: request.params.name })),
    );

    for (const url of ['/predict/batch', '/batch-predict']) {
      fast.post(
        url,
        {
          config: { ...PREDICT_ROUTE, answered: counted(url) },
          schema: {
            summary: 'Predict many rows (1..MAX_BATCH_SIZE), answers in input order',
            tags: ['predictions'],
            querystring: PredictQuerySchema,
            body: BatchBody,
            response: { 200: BatchPredictionSchema, ...errorResponses(400, 404, 413, 415, ...AUTH_ERRORS, 503) },
          },
        },
        (request, reply) => sendJson(reply, predictBatch(request, reply, request.query as ModelQuery)),
      );
    }
  });

  await invocationRoutes(app, { service, metrics, maxBatchSize, answered: counted('/invocations') });

  app.delete(
    '/predict/cache',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Clear the prediction cache',
        tags: ['predictions'],
        response: { 200: Type.Object({ cleared: Type.Integer() }), ...errorResponses(...AUTH_ERRORS, 503) },
      },
    },
    async () => ({ cleared: cache === undefined ? 0 : await cache.clear() }),
  );

  const requireDefault = (): LoadedModel => {
    const m = service.defaultModel;
    if (m === undefined) {
      throw unavailable(service.hasDefault ? 'the default model is not loaded yet' : 'no default model is configured (MODEL_NAME or MODEL_PATH)', 5);
    }
    return m;
  };

  app.get(
    '/model/metadata',
    {
      config: { role: 'read' },
      schema: {
        summary: 'The default model: name, version, stage, task, features, classes, metrics, run id, created_at',
        tags: ['predictions'],
        response: {
          200: Type.Object({
            name: Type.String(),
            version: Type.String(),
            stage: Type.Union([Type.String(), Type.Null()]),
            aliases: Type.Array(Type.String()),
            task: Type.String(),
            features: Type.Array(Type.String()),
            feature_types: Type.Array(Type.String()),
            n_features: Type.Integer(),
            classes: Type.Union([Type.Array(Label), Type.Null()]),
            metrics: Type.Record(Type.String(), Type.Number()),
            run_id: Type.Union([Type.String(), Type.Null()]),
            created_at: Type.Union([Type.String(), Type.Null()]),
            loaded_at: Type.String(),
            source: Type.String(),
            device: Type.String(),
          }),
          ...errorResponses(...AUTH_ERRORS, 503),
        },
      },
    },
    async () => {
      const m = requireDefault();
      const s = m.summary();
      return { ...s, feature_types: [...m.signature.featureTypes] } as never;
    },
  );

  app.get(
    '/model/features',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Feature names, count and types of the default model',
        tags: ['predictions'],
        response: {
          200: Type.Object({
            feature_names: Type.Array(Type.String()),
            n_features: Type.Integer(),
            types: Type.Array(Type.String()),
            categories: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
          }),
          ...errorResponses(...AUTH_ERRORS, 503),
        },
      },
    },
    async () => {
      const m = requireDefault();
      return {
        feature_names: [...m.featureNames],
        n_features: m.nFeatures,
        types: [...m.signature.featureTypes],
        ...(m.signature.categories === undefined ? {} : { categories: m.signature.categories }),
      };
    },
  );

  app.get(
    '/health/model',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Default model status and every loaded model with its stats',
        tags: ['health'],
        response: { 200: Type.Object({}, { additionalProperties: true }), ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async () => ({
      status: service.defaultModel !== undefined ? 'healthy' : service.hasDefault ? 'loading' : 'no_default_model',
      model_loaded: service.defaultModel !== undefined,
      default: service.defaultModel?.summary() ?? null,
      loaded: service.loadedModels().map((m) => m.summary()),
      cache: cache === undefined ? { enabled: false } : { enabled: true, backend: cache.kind, entries: cache.size() },
      timestamp: new Date().toISOString(),
    }),
  );

  for (const url of ['/model/reload', '/health/model/reload']) {
    app.post(
      url,
      {
        config: { role: 'admin' },
        schema: {
          summary: 'Reload the default model from the registry or MODEL_PATH without dropping requests',
          tags: ['health'],
          response: {
            200: Type.Object({ status: Type.Literal('reloaded'), model: Type.Object({}, { additionalProperties: true }), timestamp: Type.String() }),
            ...errorResponses(...AUTH_ERRORS, 404, 503),
          },
        },
      },
      async () => {
        const m = await service.reloadDefault();
        return { status: 'reloaded' as const, model: m.summary(), timestamp: new Date().toISOString() };
      },
    );
  }

}

/**
 * Batch rows through the prediction cache: one look-up for every admitted row (Redis: one MGET),
 * only the rows that missed go to the model (all of `input` when every row missed, so nothing is
 * copied), and the answers of admitted rows are stored in one write. Resolves with each row's JSON
 * fragment in input order.
 */
async function predictRowsThroughCache(cache: PredictionCache, model: LoadedModel, input: FloatRows, rows: number, metrics: ServingMetrics): Promise<string[]> {
  const f = model.nFeatures;
  const tag = model.identity.cacheTag;
  // Keys only for admitted rows; `undefined` marks a row the cache neither looks up nor stores.
  const keys = new Array<string | undefined>(rows);
  const lookup: string[] = [];
  const words = wordsOf(input);
  for (let i = 0; i < rows; i++) {
    if (!cache.admits(rowHash(model.cacheSeed, input, i, f, words))) continue;
    const key = cacheKey(tag, input.subarray(i * f, i * f + f));
    keys[i] = key;
    lookup.push(key);
  }
  const fragments = new Array<string | undefined>(rows);
  if (lookup.length > 0) {
    const got = cache.getMany(lookup);
    const found = Array.isArray(got) ? got : await got;
    for (let i = 0, j = 0; i < rows; i++) if (keys[i] !== undefined) fragments[i] = found[j++];
  }
  let misses = 0;
  for (let i = 0; i < rows; i++) if (fragments[i] === undefined) misses++;
  const hits = rows - misses;
  if (hits > 0) {
    model.cacheHits += hits;
    metrics.cacheHits.inc(hits);
  }
  if (misses === 0) return fragments as string[];
  metrics.cacheMisses.inc(misses);
  const packed = misses === rows ? input : gatherMissedRows(model, input, fragments, misses);
  const slice = await runRows(model, packed, misses);
  if (packed !== input) model.releaseRows(packed);
  const storeKeys: string[] = [];
  const storeFragments: string[] = [];
  for (let i = 0, j = 0; j < misses; i++) {
    if (fragments[i] !== undefined) continue;
    const fragment = rowJson(model, slice.outputs, slice.offset + j);
    fragments[i] = fragment;
    const key = keys[i];
    if (key !== undefined) {
      storeKeys.push(key);
      storeFragments.push(fragment);
    }
    j++;
  }
  if (storeKeys.length > 0) cache.setMany(storeKeys, storeFragments);
  return fragments as string[];
}

/** The rows of `input` whose fragment is still missing, packed in input order into a buffer from the model's spares. */
function gatherMissedRows(model: LoadedModel, input: FloatRows, fragments: readonly (string | undefined)[], misses: number): FloatRows {
  const f = model.nFeatures;
  // Every value is written below.
  const packed = model.takeRows(misses);
  for (let i = 0, j = 0; j < misses; i++) {
    if (fragments[i] !== undefined) continue;
    packed.set(input.subarray(i * f, i * f + f), j * f);
    j++;
  }
  return packed;
}

/** Milliseconds since `t0`, to the microsecond. */
function elapsedMs(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

/** A single-row answer (API.md): the row's fragment, the model's fixed fields, timing and ids. */
function singleJson(request: FastifyRequest, model: LoadedModel, fragment: string, cached: boolean, t0: number): string {
  return `{${fragment},${model.fixed},"processing_time_ms":${num(elapsedMs(t0))},"cached":${cached},"timestamp":"${isoNow()}","request_id":${JSON.stringify(request.id)}}`;
}

/** A batch answer (API.md): every row's fragment in input order, then count, model and timing. */
function batchJson(model: LoadedModel, rows: number, fragment: (row: number) => string, t0: number): string {
  let body = '{"predictions":[';
  for (let i = 0; i < rows; i++) body += (i === 0 ? '{' : ',{') + fragment(i) + '}';
  return `${body}],"count":${rows},"model_name":${JSON.stringify(model.identity.name)},"model_version":${JSON.stringify(model.identity.version)},"processing_time_ms":${num(elapsedMs(t0))}}`;
}

/** Whether the request asked for `?explain=true` (the query schemas coerce it to a boolean). */
function wantsExplanation(request: FastifyRequest): boolean {
  return (request.query as { explain?: boolean }).explain === true;
}

/** Shadow traffic: the same rows go to shadow versions; answers are counted and dropped. */
function runShadows(shadows: readonly LoadedModel[], input: FloatRows, metrics: ServingMetrics, rows = 1): void {
  for (const s of shadows) {
    if (s.released) continue;
    s.batcher.submit(input, rows).then(
      () => metrics.predictions.labels(s.identity.name, s.identity.version, 'shadow').inc(rows),
      () => {
        s.failures++;
      },
    );
  }
}
