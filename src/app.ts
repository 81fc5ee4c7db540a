import { randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { App } from './platform/app-type.ts';
import { installAuth } from './platform/auth.ts';
import type { AppContext } from './context.ts';
import { installDocsUi, installOpenApi } from './platform/docs.ts';
import { installErrorHandling } from './platform/error-handler.ts';
import { installRequestLimits } from './platform/limits.ts';
import { schemaCompilers } from './platform/schema-compilers.ts';
import { AppError } from './platform/errors.ts';
import { healthRoutes } from './platform/health.routes.ts';
import { keysRoutes } from './platform/keys.routes.ts';
import { mlflowRoutes, mlflowRoutingUrl } from './mlflow/index.ts';
import { installRequestMetrics } from './platform/metrics.ts';
import { installResponseHeaders } from './platform/security-headers.ts';
import { registryRoutes } from './registry/registry.routes.ts';
import { trackingRoutes } from './tracking/tracking.routes.ts';
import { trainingRoutes } from './training/training.routes.ts';
import { datasetRoutes } from './datasets/dataset.routes.ts';
import { driftRoutes } from './drift/drift.routes.ts';
import { kserveRoutes } from './kserve/kserve.routes.ts';
import { ErrorBody } from './platform/schemas.ts';
import { uiRoutes } from './platform/ui.routes.ts';
import { whoamiRoutes } from './platform/whoami.routes.ts';
import { algorithmRoutes } from './training/algorithms.routes.ts';

export type { App } from './platform/app-type.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Routes whose third-party plugin cannot declare `config.role`: documentation UIs only. */
const PUBLIC_PREFIXES = ['/docs'];

/**
 * Builds the whole HTTP application over a process's services, without listening and without
 * starting anything: tests call `inject()` on it, `server.ts` listens and starts the services.
 * Each feature's routes receive the services they use as arguments.
 */
export async function buildApp(ctx: AppContext): Promise<App> {
  const { config, services, backends } = ctx;
  // Typed as Fastify's logger interface so the instance type stays `App` (pino's own type is wider).
  const logger: FastifyBaseLogger = ctx.log;
  const compilers = schemaCompilers();
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.bodyLimitBytes,
    // Node checks its header and request timeouts at this interval (30 s by default), so a
    // stalled client is answered within REQUEST_TIMEOUT rather than up to 30 s later (limits.ts).
    http: { connectionsCheckingInterval: 500 },
    // Not `requestIdHeader`: Fastify would then take the header as it is. genReqId reads it and
    // keeps a caller's id only when it is well formed; otherwise it makes one.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Per-request access lines only at debug level: at thousands of predictions a second they
    // would cost more than the predictions.
    logController: new LogController({
      requestIdLogLabel: 'reqId',
      disableRequestLogging: config.logLevel !== 'debug' && config.logLevel !== 'trace',
    }),
    ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: false, useDefaults: true } },
    // One compiled validator and serializer per distinct schema, compiled when a request first
    // needs it (see schema-compilers.ts; `compileSchemas()` compiles them all, for tests).
    schemaController: { compilersFactory: compilers.factory },
    // MLflow allows 255-character aliases and long model names in paths.
    // ignoreTrailingSlash: `/health/` as the seed service's clients call it answers like `/health`.
    routerOptions: { maxParamLength: 1024, ignoreTrailingSlash: true },
    // MLflow's `/ajax-api` prefix is routed by the `/api` routes (mlflow/index.ts).
    rewriteUrl: (req) => mlflowRoutingUrl(req.url ?? '/'),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('compileSchemas', () => compilers.compileAll());

  // The request id we use (the caller's if well formed) is echoed, with the security headers.
  installResponseHeaders(app);

  installErrorHandling(app, { debug: config.debug });
  installRequestLimits(app, { bodyLimitBytes: config.bodyLimitBytes, requestTimeoutSeconds: config.requestTimeoutSeconds });
  installRequestMetrics(app, services.metrics);
  installAuth(app, services.keys, PUBLIC_PREFIXES, config.prometheus.requireAuth ? 'read' : 'public');

  // CORS and the rate limiter are off unless configured: loaded only then (the limiter's address
  // parsing library alone was ~10 ms of every start).
  if (config.corsOrigins.length > 0) {
    const { default: cors } = await import('@fastify/cors');
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
      credentials: !config.corsOrigins.includes('*'),
      exposedHeaders: ['x-request-id', 'retry-after'],
    });
  }
  if (config.rateLimitPerMinute > 0) {
    const [{ default: rateLimit }, { fallbackRateLimitStore }] = await Promise.all([import('@fastify/rate-limit'), import('./platform/rate-limit-store.ts')]);
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimitPerMinute,
      timeWindow: 60_000,
      // After authentication, so the budget is per key rather than per address.
      hook: 'preHandler',
      keyGenerator: (request) => request.principal?.keyId ?? request.ip,
      allowList: (request) => request.routeOptions.config.role === 'public',
      // Shared through Redis, counted in this process while Redis is unavailable (rate-limit-store.ts).
      ...(backends.redis === undefined || backends.redisHealth === undefined
        ? {}
        : { store: fallbackRateLimitStore(backends.redis, backends.redisHealth, 'modelplane:ratelimit:') }),
      errorResponseBuilder: (_request, context) =>
        new AppError(429, 'rate_limited', `rate limit of ${context.max} requests per minute exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`, undefined, {
          'retry-after': String(Math.ceil(context.ttl / 1000)),
        }),
    });
  }

  // Shared schemas referenced by every route's error responses.
  app.addSchema(ErrorBody);
  if (config.docsEnabled) installOpenApi(app, { title: config.apiTitle, ...(config.apiVersion === undefined ? {} : { version: config.apiVersion }) });

  await healthRoutes(app, ctx);
  await keysRoutes(app, services.keys);
  await registryRoutes(app, services.registry, {
    maxModelBytes: config.bodyLimitBytes,
    // An upload's run_id and reference_dataset must name a run and a dataset version that exist.
    lineage: { run: (id) => services.tracking.runs.getRun(id), dataset: (name, version) => services.datasets.resolveVersion(name, version) },
  });
  await trackingRoutes(app, services.tracking);
  await mlflowRoutes(app, { tracking: services.tracking, registry: services.registry, artifacts: backends.artifacts });
  await datasetRoutes(app, services.datasets, { maxBytes: config.datasetMaxBytes });
  await services.serving.routes(app);
  await driftRoutes(app, services.drift);
  await kserveRoutes(app, {
    service: services.serving.service,
    predictions: services.serving.predictions,
    status: services.status,
    versions: async (name) => (await services.registry.models.listVersions(name)).map((v) => v.version),
  });
  if (services.jobs !== undefined) await trainingRoutes(app, services.jobs);
  await algorithmRoutes(app);
  await whoamiRoutes(app);
  await uiRoutes(app);

  if (config.docsEnabled) installDocsUi(app);
  return app;
}
