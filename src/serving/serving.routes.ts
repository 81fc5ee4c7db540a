/**
 * Prediction, model-info and cache routes (API.md "Predictions"). Thin: each hands the query and
 * the body to the prediction service and sends the JSON text it answers with. The schemas
 * document the answers (the tests check replies against them).
 */
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../platform/app-type.ts';
import { unavailable } from '../platform/errors.ts';
import { AUTH_ERRORS, errorResponses } from '../platform/schemas.ts';
import { invocationRoutes } from './invocations.routes.ts';
import type { LoadedModel } from './loaded-model.ts';
import { NumericJsonReader } from './numeric-json.ts';
import type { PredictionService } from './prediction.service.ts';
import { useJsonParser } from './request-body.ts';
import { BatchBody, BatchPredictionSchema, ExplainFlag, Label, ModelQuerySchema, PREDICT_ROUTE, PredictQuerySchema, SingleBody, SinglePredictionSchema } from './serving.schemas.ts';
import type { ModelQuery, ServingService } from './serving.service.ts';

/** What the routes need besides the app. */
export interface ServingRouteDeps {
  readonly service: ServingService;
  readonly predictions: PredictionService;
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

/** Whether the request asked for `?explain=true` (the query schemas coerce it to a boolean). */
function wantsExplanation(request: FastifyRequest): boolean {
  return (request.query as { explain?: boolean }).explain === true;
}

/** Registers every prediction, model-info and cache route. */
export async function servingRoutes(app: App, deps: ServingRouteDeps): Promise<void> {
  await app.register(async (plain) => {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    useJsonParser(scope, undefined);
    await predictionRoutes(scope, deps);
  });
}

async function predictionRoutes(app: App, deps: ServingRouteDeps): Promise<void> {
  const { service, predictions } = deps;

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
      { config: { ...PREDICT_ROUTE, answered: predictions.answered('/predict') }, schema: singleSchema('Predict one row (default model, or ?model= with version|stage|alias)', true) },
      (request, reply) => sendJson(reply, predictions.predictSingle(request.query as ModelQuery, request.body, wantsExplanation(request), request.id)),
    );

    fast.post(
      '/predict/staging',
      {
        config: { ...PREDICT_ROUTE, answered: predictions.answered('/predict/staging') },
        schema: {
          ...singleSchema('Predict one row with the Staging version (of the default model, or ?model=)', false),
          querystring: Type.Object({ model: PredictQuerySchema.properties.model, explain: ExplainFlag }),
        },
      },
      (request, reply) =>
        sendJson(reply, predictions.predictSingle({ model: request.query.model ?? service.stagingModelName(), stage: 'Staging' }, request.body, wantsExplanation(request), request.id)),
    );

    fast.post(
      '/models/:name/predict',
      {
        config: { ...PREDICT_ROUTE, answered: predictions.answered('/models/:name/predict') },
        schema: {
          ...singleSchema('Predict one row with a registered model named in the path', false),
          params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 256 }) }),
          querystring: Type.Omit(PredictQuerySchema, ['model']),
        },
      },
      (request, reply) => sendJson(reply, predictions.predictSingle({ ...(request.query as ModelQuery), model: request.params.name }, request.body, wantsExplanation(request), request.id)),
    );

    for (const url of ['/predict/batch', '/batch-predict']) {
      fast.post(
        url,
        {
          config: { ...PREDICT_ROUTE, answered: predictions.answered(url) },
          schema: {
            summary: 'Predict many rows (1..MAX_BATCH_SIZE), answers in input order',
            tags: ['predictions'],
            querystring: PredictQuerySchema,
            body: BatchBody,
            response: { 200: BatchPredictionSchema, ...errorResponses(400, 404, 413, 415, ...AUTH_ERRORS, 503) },
          },
        },
        (request, reply) => sendJson(reply, predictions.predictBatch(request.query as ModelQuery, request.body, wantsExplanation(request), request.id)),
      );
    }
  });

  await invocationRoutes(app, predictions);

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
    async () => ({ cleared: await predictions.clearCache() }),
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
        summary: 'The default model (or ?model= with version|stage|alias): name, version, stage, task, features, classes, metrics, run id, created_at',
        tags: ['predictions'],
        querystring: ModelQuerySchema,
        response: {
          200: Type.Object({
            name: Type.String(),
            version: Type.String(),
            accuracy: Type.Union([Type.Number(), Type.Null()], { description: "metrics.accuracy, top level as the seed service's /model/metadata had it" }),
            f1_score: Type.Union([Type.Number(), Type.Null()], { description: 'metrics.f1_score, else f1_macro or f1 (seed name)' }),
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
    async (request) => {
      // ?model= (with version|stage|alias) describes that model as /predict would serve it.
      const q = request.query;
      const m = q.model === undefined && q.version === undefined && q.stage === undefined && q.alias === undefined ? requireDefault() : await service.pick(q);
      const s = m.summary();
      const metric = (...keys: string[]): number | null => keys.map((k) => (s.metrics as Record<string, unknown>)[k]).find((v) => typeof v === 'number') ?? null;
      return { ...s, accuracy: metric('accuracy'), f1_score: metric('f1_score', 'f1_macro', 'f1'), feature_types: [...m.signature.featureTypes] } as never;
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
      cache: predictions.cache === undefined ? { enabled: false } : { enabled: true, backend: predictions.cache.kind, entries: predictions.cache.size() },
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
