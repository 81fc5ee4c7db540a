import { Type } from '@sinclair/typebox';
import type { App } from './app-type.ts';
import { VERSION } from '../version.ts';
import type { AppContext } from '../context.ts';
import { renderMetrics } from './metrics.ts';
import { AUTH_ERRORS, errorResponses } from './schemas.ts';
import { systemReport, type GpuReport } from './system.ts';

const CheckResultSchema = Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) });
const Readiness = Type.Object({ ready: Type.Boolean(), checks: Type.Record(Type.String(), CheckResultSchema) });
const AnyObject = Type.Object({}, { additionalProperties: true });

const GpuReportSchema = Type.Object({
  available: Type.Boolean(),
  driver_version: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  gpus: Type.Array(
    Type.Object({
      index: Type.Integer(),
      name: Type.String(),
      utilization_percent: Type.Union([Type.Number(), Type.Null()]),
      memory_used_bytes: Type.Union([Type.Number(), Type.Null()]),
      memory_total_bytes: Type.Union([Type.Number(), Type.Null()]),
      temperature_celsius: Type.Union([Type.Number(), Type.Null()]),
      power_watts: Type.Union([Type.Number(), Type.Null()]),
    }),
  ),
});

/** The probe's report with the API's snake_case names. */
function gpuView(report: GpuReport) {
  return {
    available: report.available,
    ...(report.driverVersion === undefined ? {} : { driver_version: report.driverVersion }),
    ...(report.reason === undefined ? {} : { reason: report.reason }),
    gpus: report.gpus.map((g) => ({
      index: g.index,
      name: g.name,
      utilization_percent: g.utilizationPercent,
      memory_used_bytes: g.memoryUsedBytes,
      memory_total_bytes: g.memoryTotalBytes,
      temperature_celsius: g.temperatureCelsius,
      power_watts: g.powerWatts,
    })),
  };
}

/** Health, readiness, version, info and Prometheus endpoints (API.md "Health, info, monitoring"). */
export async function healthRoutes(app: App, ctx: AppContext): Promise<void> {
  const { config, backends } = ctx;
  const { status, metrics, loop, gpu } = ctx.services;

  app.get(
    '/',
    {
      config: { role: 'public' },
      schema: { summary: 'Service name, version, links and the tracking URI for MLflow clients', tags: ['health'], response: { 200: AnyObject } },
    },
    async (request) => ({
      name: 'modelplane',
      version: VERSION,
      description: 'MLOps control plane and model server',
      links: {
        docs: '/docs',
        redoc: '/redoc',
        openapi: '/openapi.json',
        health: '/health',
        ready: '/ready',
        metrics: '/metrics',
        info: '/info',
        predict: '/predict',
        models: '/models',
        ui: '/ui',
      },
      // The tracking URI MLflow clients should use: MLFLOW_TRACKING_URI when set (the address the
      // clients reach this server at, e.g. behind a proxy), else this request's own origin.
      mlflow_tracking_uri: config.mlflowTrackingUri ?? `${request.protocol}://${request.host}`,
    }),
  );

  app.get(
    '/health',
    {
      config: { role: 'public' },
      schema: {
        summary: 'Liveness: 200 while the process serves',
        tags: ['health'],
        response: {
          200: Type.Object({
            status: Type.Literal('healthy'),
            version: Type.String(),
            uptime_seconds: Type.Number(),
            model_loaded: Type.Boolean(),
            timestamp: Type.String({ format: 'date-time' }),
          }),
        },
      },
    },
    async () => ({
      status: 'healthy' as const,
      version: VERSION,
      uptime_seconds: Math.round(metrics.uptimeSeconds() * 1000) / 1000,
      model_loaded: status.modelLoaded(),
      timestamp: new Date().toISOString(),
    }),
  );

  app.get(
    '/ready',
    {
      config: { role: 'public' },
      schema: { summary: 'Readiness: store reachable and default model loaded', tags: ['health'], response: { 200: Readiness, 503: Readiness } },
    },
    async (_request, reply) => {
      const result = await status.runChecks();
      return reply.code(result.ready ? 200 : 503).send(result);
    },
  );

  app.get(
    '/ping',
    {
      config: { role: 'public' },
      schema: {
        summary: 'MLflow scoring convention: 200 when the default model is loaded, 404 otherwise',
        tags: ['health'],
        response: { 200: Type.String(), 404: Type.String() },
      },
    },
    async (_request, reply) => reply.code(status.modelLoaded() ? 200 : 404).type('application/json').send('\n'),
  );

  app.get(
    '/version',
    {
      config: { role: 'public' },
      schema: { summary: 'Version', tags: ['health'], response: { 200: Type.Object({ name: Type.String(), version: Type.String() }) } },
    },
    async () => ({ name: 'modelplane', version: VERSION }),
  );

  app.get(
    '/info',
    {
      config: { role: 'read' },
      schema: {
        summary: 'Version, backends, limits and usage summary (no secrets)',
        tags: ['health'],
        response: { 200: AnyObject, ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async () => ({
      name: 'modelplane',
      version: VERSION,
      node: process.version,
      uptime_seconds: Math.round(metrics.uptimeSeconds()),
      backends: {
        store: backends.store.description,
        artifacts: backends.artifacts.description,
        cache: backends.redis === undefined ? 'memory' : 'redis',
        rate_limit: backends.redis === undefined ? 'memory' : 'redis',
      },
      ...(config.mlflowTrackingUri === undefined ? {} : { mlflow_tracking_uri: config.mlflowTrackingUri }),
      limits: {
        max_batch_size: config.maxBatchSize,
        body_limit_bytes: config.bodyLimitBytes,
        dataset_max_bytes: config.datasetMaxBytes,
        request_timeout_seconds: config.requestTimeoutSeconds,
        rate_limit_per_minute: config.rateLimitPerMinute,
      },
      ...status.renderSections(),
    }),
  );

  app.get(
    '/health/detailed',
    {
      config: { role: 'read' },
      schema: { summary: 'Readiness checks, system figures and feature sections', tags: ['health'], response: { 200: AnyObject, ...errorResponses(...AUTH_ERRORS) } },
    },
    async () => {
      const [checks, system, gpuReport] = await Promise.all([status.runChecks(), systemReport(config.dataDir, loop), gpu.read()]);
      return {
        status: checks.ready ? 'healthy' : 'degraded',
        version: VERSION,
        timestamp: new Date().toISOString(),
        ...checks,
        system,
        gpu: gpuView(gpuReport),
        ...status.renderSections(),
      };
    },
  );

  app.get(
    '/health/system',
    {
      config: { role: 'read' },
      schema: { summary: 'CPU, memory, disk and event-loop lag', tags: ['health'], response: { 200: AnyObject, ...errorResponses(...AUTH_ERRORS) } },
    },
    async () => systemReport(config.dataDir, loop),
  );

  app.get(
    '/health/gpu',
    {
      config: { role: 'read' },
      schema: {
        summary: 'GPU utilisation, memory, temperature and power, or {available:false}',
        tags: ['health'],
        response: { 200: GpuReportSchema, ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async () => gpuView(await gpu.read()),
  );

  if (config.prometheus.enabled) {
    const metricsRole = config.prometheus.requireAuth ? 'read' : 'public';
    for (const url of ['/metrics', '/prometheus-metrics']) {
      app.get(
        url,
        {
          config: { role: metricsRole },
          schema: { summary: 'Prometheus metrics (text exposition format)', tags: ['health'], response: { 200: Type.String(), ...errorResponses(...AUTH_ERRORS) } },
        },
        async (_request, reply) => reply.type(metrics.registry.contentType).send(await renderMetrics(metrics)),
      );
    }
  }
}
