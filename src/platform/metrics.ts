import cluster from 'node:cluster';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { App } from './app-type.ts';
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { presentedKey, type Principal } from './auth.ts';
import type { GpuProbe } from './system.ts';
import { FastCounter, FastHistogram, type FastCounterChild, type FastHistogramChild } from './fast-metrics.ts';

// node:http through require, not an ES import: importing a built-in as an ES module reads every
// export, and on Node 22+ that loads the WebSocket client (undici, zlib) as a side effect: some
// 50 ms of a server's start.
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

/** Count and duration children of one (method, endpoint, status). */
export interface RequestChild {
  readonly count: FastCounterChild;
  readonly duration: FastHistogramChild;
}

/**
 * One Prometheus registry per app (never prom-client's global one, so tests can build many apps).
 * Features register their own metrics on `registry`; the names that dashboards already query are
 * listed in API.md. Label values for `endpoint` are route templates, never raw URLs.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly apiRequests: FastCounter<'method' | 'endpoint' | 'status'>;
  readonly apiDuration: FastHistogram<'method' | 'endpoint'>;
  readonly errors: Counter<'type' | 'endpoint'>;
  readonly modelLoaded: Gauge;
  /** Prediction-log rows dropped (oldest first) because the store could not keep up. */
  readonly predictionLogDropped: Counter;
  /** Prediction-log rows written to the store. */
  readonly predictionLogWritten: Counter;
  /** Per feature: the drift test's statistic (p-value for KS / chi-square / Z, distance otherwise). */
  readonly driftScore: Gauge<'model' | 'feature' | 'method'>;
  /** Per feature: 1 when the last drift check found the feature drifted. */
  readonly driftDetected: Gauge<'model' | 'feature'>;
  /** Share of drifted features at the last drift check. */
  readonly datasetDriftShare: Gauge<'model'>;
  /** 1 when the last drift check found dataset drift (share at or above DRIFT_SHARE_THRESHOLD). */
  readonly datasetDriftDetected: Gauge<'model'>;
  private readonly startedAt = Date.now();
  private readonly requestChildren = new Map<string, RequestChild>();

  constructor(gpu?: GpuProbe) {
    collectDefaultMetrics({ register: this.registry });
    const startedAt = this.startedAt;
    this.apiRequests = new FastCounter({
      name: 'api_requests_total',
      help: 'HTTP requests answered, by method, route template and status',
      labelNames: ['method', 'endpoint', 'status'],
      registers: [this.registry],
    });
    this.apiDuration = new FastHistogram({
      name: 'api_request_duration_seconds',
      help: 'HTTP request duration in seconds, by method and route template',
      labelNames: ['method', 'endpoint'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.errors = new Counter({
      name: 'errors_total',
      help: 'Errors answered, by type (error code) and route template',
      labelNames: ['type', 'endpoint'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'api_uptime_seconds',
      help: 'Seconds since this API process started',
      registers: [this.registry],
      aggregator: 'max',
      collect() {
        this.set((Date.now() - startedAt) / 1000);
      },
    });
    this.modelLoaded = new Gauge({
      name: 'model_loaded',
      help: '1 when the default model is loaded and servable, else 0',
      registers: [this.registry],
      aggregator: 'min',
    });
    this.predictionLogDropped = new Counter({
      name: 'prediction_log_dropped_total',
      help: 'Prediction-log rows dropped (oldest first) because the store was slow or down',
      registers: [this.registry],
    });
    this.predictionLogWritten = new Counter({
      name: 'prediction_log_written_total',
      help: 'Prediction-log rows written to the store',
      registers: [this.registry],
    });
    this.driftScore = new Gauge({
      name: 'drift_score',
      help: 'Drift test statistic per feature at the last check: p-value (ks, chisquare, z) or distance (wasserstein, jensenshannon, psi)',
      labelNames: ['model', 'feature', 'method'],
      registers: [this.registry],
      aggregator: 'max',
    });
    this.driftDetected = new Gauge({
      name: 'drift_detected',
      help: '1 when the last drift check found the feature drifted, else 0',
      labelNames: ['model', 'feature'],
      registers: [this.registry],
      aggregator: 'max',
    });
    this.datasetDriftShare = new Gauge({
      name: 'dataset_drift_share',
      help: 'Share of drifted features at the last drift check',
      labelNames: ['model'],
      registers: [this.registry],
      aggregator: 'max',
    });
    this.datasetDriftDetected = new Gauge({
      name: 'dataset_drift_detected',
      help: '1 when the last drift check found dataset drift (share of drifted features at or above DRIFT_SHARE_THRESHOLD)',
      labelNames: ['model'],
      registers: [this.registry],
      aggregator: 'max',
    });
    if (gpu !== undefined) {
      new Gauge({
        name: 'gpu_utilization_percent',
        help: 'GPU utilisation in percent, per GPU index',
        labelNames: ['gpu'],
        registers: [this.registry],
        aggregator: 'max',
        async collect() {
          const g = await gpu.read();
          this.reset();
          for (const d of g.gpus) if (d.utilizationPercent !== null) this.set({ gpu: String(d.index) }, d.utilizationPercent);
        },
      });
      new Gauge({
        name: 'gpu_memory_used_bytes',
        help: 'GPU memory in use, per GPU index',
        labelNames: ['gpu'],
        registers: [this.registry],
        aggregator: 'max',
        async collect() {
          const g = await gpu.read();
          this.reset();
          for (const d of g.gpus) if (d.memoryUsedBytes !== null) this.set({ gpu: String(d.index) }, d.memoryUsedBytes);
        },
      });
    }
  }

  /** The request count and duration children of one method, route template and status. */
  requestChild(method: string, endpoint: string, status: number): RequestChild {
    const key = `${method} ${endpoint} ${status}`;
    let child = this.requestChildren.get(key);
    if (child === undefined) {
      child = {
        count: this.apiRequests.labels(method, endpoint, String(status)),
        duration: this.apiDuration.labels(method, endpoint),
      };
      this.requestChildren.set(key, child);
    }
    return child;
  }

  /** Counts one answered request. */
  observeRequest(method: string, endpoint: string, status: number, seconds: number): void {
    const child = this.requestChild(method, endpoint, status);
    child.count.inc();
    child.duration.observe(seconds);
  }

  uptimeSeconds(): number {
    return (Date.now() - this.startedAt) / 1000;
  }
}

/** The route template of a request, or `unmatched` for 404s (raw URLs would explode cardinality). */
export function endpointOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/** A route's own observer of answered requests (seconds, status), called after the API metrics. */
export type AnsweredHook = (seconds: number, status: number) => void;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Called for every answered request of this route (feature metrics beside the API ones). */
    answered?: AnsweredHook;
  }
}

/**
 * Records request count and duration for every answered request. Each route gets its own
 * `onResponse` hook with its template and `config.answered` bound at registration (a global hook
 * would have to read `request.routeOptions`, which Fastify rebuilds as a new object on every
 * access); the not-found handler counts unmatched requests through `metricsHooks.onUnmatched`.
 */
export function installRequestMetrics(app: App, metrics: Metrics): void {
  app.addHook('onRoute', (route) => {
    const endpoint = route.url ?? route.path;
    const answered = route.config?.answered;
    // Almost every answer of a route has the method and status of the one before: keep its children.
    let last: { method: string; status: number; child: RequestChild } | undefined;
    const hook = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
      const seconds = reply.elapsedTime / 1000;
      const status = reply.statusCode;
      const method = request.method;
      if (last === undefined || last.status !== status || last.method !== method) last = { method, status, child: metrics.requestChild(method, endpoint, status) };
      last.child.count.inc();
      last.child.duration.observe(seconds);
      if (answered !== undefined) answered(seconds, status);
      done();
    };
    const own = route.onResponse === undefined ? [] : Array.isArray(route.onResponse) ? route.onResponse : [route.onResponse];
    route.onResponse = [...own, hook];
  });
  app.decorate('metricsHooks', {
    onError(request: FastifyRequest, code: string) {
      metrics.errors.labels(code, endpointOf(request)).inc();
    },
    onUnmatched(request: FastifyRequest, reply: FastifyReply) {
      metrics.observeRequest(request.method, 'unmatched', 404, reply.elapsedTime / 1000);
    },
  });
}

const METRICS_REQUEST = 'modelplane:metrics:request';
const METRICS_REPLY = 'modelplane:metrics:reply';

/**
 * Prometheus text for this process, or for all cluster workers together when running under
 * `serve --workers N`: the worker asks the primary, which gathers every worker's registry.
 */
export async function renderMetrics(metrics: Metrics): Promise<string> {
  if (!cluster.isWorker || process.send === undefined) return metrics.registry.metrics();
  const id = `${process.pid}-${Date.now()}-${Math.random()}`;
  return new Promise<string>((resolve) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      // The primary did not answer in time: this worker's own view is better than nothing.
      metrics.registry.metrics().then(resolve, () => resolve(''));
    }, 3000);
    const onMessage = (msg: unknown): void => {
      const m = msg as { type?: string; id?: string; text?: string };
      if (m.type !== METRICS_REPLY || m.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve(m.text ?? '');
    };
    process.on('message', onMessage);
    process.send!({ type: METRICS_REQUEST, id });
  });
}

const METRICS_COLLECT = 'modelplane:metrics:collect';
const METRICS_COLLECTED = 'modelplane:metrics:collected';

/**
 * In the cluster primary: answers a worker's metrics request with the aggregate of every worker's
 * registry. The primary asks each worker for its metrics as JSON over IPC and merges them with
 * prom-client's aggregator (counters and histograms summed; gauges by their `aggregator`).
 * The exchange is our own rather than prom-client's built-in cluster listener, which did not
 * answer under Node 24 here.
 */
export function serveClusterMetrics(timeoutMs = 2000): void {
  let sequence = 0;
  const pending = new Map<string, (metrics: unknown) => void>();
  cluster.on('message', (worker, msg: unknown) => {
    const m = msg as { type?: string; id?: string; metrics?: unknown };
    if (m.type === METRICS_COLLECTED && m.id !== undefined) {
      pending.get(m.id)?.(m.metrics);
      return;
    }
    if (m.type !== METRICS_REQUEST) return;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is NonNullable<typeof w> => w !== undefined && w.isConnected());
    const collected = workers.map(
      (w) =>
        new Promise<unknown>((resolve) => {
          const id = `${++sequence}`;
          const timer = setTimeout(() => {
            pending.delete(id);
            resolve(undefined);
          }, timeoutMs);
          pending.set(id, (metrics) => {
            clearTimeout(timer);
            pending.delete(id);
            resolve(metrics);
          });
          w.send({ type: METRICS_COLLECT, id });
        }),
    );
    Promise.all(collected)
      .then((all) => AggregatorRegistry.aggregate(all.filter((x) => Array.isArray(x)) as never).metrics())
      .then(
        (text) => worker.send({ type: METRICS_REPLY, id: m.id, text }),
        (err: unknown) => worker.send({ type: METRICS_REPLY, id: m.id, text: `# aggregation failed: ${String(err)}\n` }),
      );
  });
}

/** In a cluster worker: hands this worker's registry to the primary when it collects. */
export function shareWorkerRegistry(metrics: Metrics): void {
  if (!cluster.isWorker) return;
  process.on('message', (msg: unknown) => {
    const m = msg as { type?: string; id?: string };
    if (m.type !== METRICS_COLLECT) return;
    metrics.registry.getMetricsAsJSON().then(
      (json) => process.send?.({ type: METRICS_COLLECTED, id: m.id, metrics: json }),
      () => process.send?.({ type: METRICS_COLLECTED, id: m.id, metrics: [] }),
    );
  });
}

/** What {@link listenMetrics} serves, and where. */
export interface MetricsListenerOptions {
  /** Listen address (`API_HOST`). */
  readonly host: string;
  /** Listen port (`PROMETHEUS_PORT`); 0 lets the system pick a free one (see `MetricsListener.port`). */
  readonly port: number;
  /**
   * The Prometheus text of the process (or of its node:cluster) and its content type (the
   * registry's); absent when metrics are off (`ENABLE_PROMETHEUS=false`): `/metrics` answers 404
   * and the listener serves `/health` alone.
   */
  readonly metrics: { readonly render: () => Promise<string>; readonly contentType: string } | undefined;
  /**
   * With `METRICS_REQUIRE_AUTH`: checks the key a scrape presents (`X-API-Key` or `Authorization`);
   * any active key may read. Absent: `/metrics` is public, as on the API port.
   */
  readonly authenticate?: (key: string) => Promise<Principal | undefined>;
  readonly log: Logger;
}

/** A running metrics listener. */
export interface MetricsListener {
  /** The port it listens on (the system's choice when 0 was asked for). */
  readonly port: number;
  /** Its metrics URL, for logs (`http://host:port/metrics`). */
  readonly url: string;
  /** Stops accepting, closes idle connections and resolves once scrapes in flight are answered. */
  close(): Promise<void>;
}

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}

function refuse(res: ServerResponse, status: number, code: string, details: string, headers: Record<string, string> = {}): void {
  answer(res, status, { error: code, details, timestamp: new Date().toISOString() }, headers);
}

/**
 * The listener of `PROMETHEUS_PORT`: `GET /metrics` (Prometheus text) and `GET /health` (200 while
 * the process runs, for a liveness probe), nothing else (HEAD too). The API server runs it beside its own
 * port; a `modelplane worker`, which has no other listener, runs it for its training metrics. Plain
 * `node:http`, so it answers while the process does no other HTTP at all. Rejects with an error
 * naming PROMETHEUS_PORT when the port cannot be bound.
 */
export async function listenMetrics(options: MetricsListenerOptions): Promise<MetricsListener> {
  const { metrics, authenticate, log } = options;
  const serveMetrics = (res: ServerResponse, { render, contentType }: NonNullable<typeof metrics>): void => {
    render().then(
      (text) => res.writeHead(200, { 'content-type': contentType }).end(text),
      (err: unknown) => {
        log.error({ err }, 'rendering metrics failed');
        refuse(res, 500, 'internal_error', 'rendering the metrics failed');
      },
    );
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== '/metrics' && url !== '/health') {
      refuse(res, 404, 'not_found', `no route ${req.method ?? ''} ${url ?? ''}; this listener serves GET /metrics and GET /health`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(res, 405, 'method_not_allowed', `${url} answers GET and HEAD`, { allow: 'GET, HEAD' });
      return;
    }
    if (url === '/health') {
      answer(res, 200, { status: 'ok' });
      return;
    }
    if (metrics === undefined) {
      refuse(res, 404, 'not_found', 'metrics are off (ENABLE_PROMETHEUS=false); this listener serves GET /health');
      return;
    }
    if (authenticate === undefined) {
      serveMetrics(res, metrics);
      return;
    }
    const key = presentedKey(req);
    if (key === undefined) {
      refuse(res, 401, 'unauthorized', 'an API key is required (METRICS_REQUIRE_AUTH): send X-API-Key or Authorization: Bearer', { 'www-authenticate': 'Bearer' });
      return;
    }
    authenticate(key).then(
      (principal) => {
        if (principal === undefined) refuse(res, 401, 'unauthorized', 'unknown or revoked API key', { 'www-authenticate': 'Bearer' });
        else serveMetrics(res, metrics);
      },
      (err: unknown) => {
        log.warn({ err }, 'metrics listener could not check a key');
        refuse(res, 503, 'service_unavailable', 'the key could not be checked (the metadata store is unavailable); try again later', { 'retry-after': '5' });
      },
    );
  };
  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => reject(new Error(`PROMETHEUS_PORT: the metrics listener cannot listen on ${options.host}:${options.port}: ${err.message}`, { cause: err }));
    server.once('error', failed);
    server.listen(options.port, options.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'metrics listener error'));
  const port = (server.address() as AddressInfo).port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}/metrics`;
  let closing: Promise<void> | undefined;
  return {
    port,
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Prometheus keeps its connection alive between scrapes: do not wait for it to time out.
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
