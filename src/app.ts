import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { App } from './platform/app-type.ts';
import type { Config } from './config.ts';
import { installAuth } from './platform/auth.ts';
import type { AppContext } from './platform/context.ts';
import { installDocsUi, installOpenApi } from './platform/docs.ts';
import { installErrorHandling, type ErrorFormat } from './platform/error-handler.ts';
import { AppError } from './platform/errors.ts';
import { healthRoutes } from './platform/health.routes.ts';
import { keysRoutes } from './platform/keys.routes.ts';
import { installRequestMetrics } from './platform/metrics.ts';
import { installResponseHeaders } from './platform/security-headers.ts';
import { getRegistry, registryRoutes } from './registry/index.ts';
import { servingFeature } from './serving/index.ts';
import { trackingRoutes } from './tracking/tracking.routes.ts';
import { trainingRoutes } from './training/training.routes.ts';
import { datasetRoutes } from './datasets/dataset.routes.ts';
import { ErrorBody } from './platform/schemas.ts';
import { uiRoutes } from './platform/ui.routes.ts';
import { whoamiRoutes } from './platform/whoami.routes.ts';
import { algorithmRoutes } from './training/algorithms.routes.ts';

export type { App } from './platform/app-type.ts';

/** A feature's routes: registered directly on the app (no encapsulation) so global hooks apply. */
export type FeatureRoutes = (app: App, ctx: AppContext) => Promise<void>;

/** Everything `buildApp` needs besides the configuration. */
export type AppDeps = Omit<AppContext, 'config'>;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Routes whose third-party plugin cannot declare `config.role`: documentation UIs only. */
const PUBLIC_PREFIXES = ['/docs'];

/**
 * Builds the whole HTTP application without listening: tests call `inject()` on it, `server.ts`
 * listens. The one place where features are wired together.
 */
export async function buildApp(config: Config, deps: AppDeps): Promise<App> {
  const ctx: AppContext = { config, ...deps };
  // Typed as Fastify's logger interface so the instance type stays `App` (pino's own type is wider).
  const logger: FastifyBaseLogger = deps.log;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutSeconds * 1000,
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
    // MLflow allows 255-character aliases and long model names in paths.
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();

  // The request id we use (the caller's if well formed) is echoed, with the security headers.
  installResponseHeaders(app);

  const errorFormats: ErrorFormat[] = [];
  installErrorHandling(app, errorFormats);
  installRequestMetrics(app, deps.metrics);
  installAuth(app, deps.keys, PUBLIC_PREFIXES, config.prometheus.requireAuth ? 'read' : 'public');

  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
      credentials: !config.corsOrigins.includes('*'),
      exposedHeaders: ['x-request-id', 'retry-after'],
    });
  }
  if (config.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimitPerMinute,
      timeWindow: 60_000,
      // After authentication, so the budget is per key rather than per address.
      hook: 'preHandler',
      keyGenerator: (request) => request.principal?.keyId ?? request.ip,
      allowList: (request) => request.routeOptions.config.role === 'public',
      ...(deps.redis === undefined ? {} : { redis: deps.redis, nameSpace: 'modelplane:ratelimit:' }),
      errorResponseBuilder: (_request, context) =>
        new AppError(429, 'rate_limited', `rate limit of ${context.max} requests per minute exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`, undefined, {
          'retry-after': String(Math.ceil(context.ttl / 1000)),
        }),
    });
  }

  // Shared schemas referenced by every route's error responses.
  app.addSchema(ErrorBody);
  if (config.docsEnabled) await installOpenApi(app);

  const features: FeatureRoutes[] = [
    healthRoutes,
    keysRoutes,
    registryRoutes,
    trackingRoutes,
    datasetRoutes,
    servingFeature(getRegistry),
    trainingRoutes,
    algorithmRoutes,
    whoamiRoutes,
    uiRoutes,
  ];
  for (const routes of features) await routes(app, ctx);

  if (config.docsEnabled) await installDocsUi(app);

  ctx.status.addReadinessCheck('store', async () => {
    await ctx.store.ping();
    return { ok: true };
  });
  return app;
}
