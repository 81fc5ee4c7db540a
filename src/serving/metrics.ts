/**
 * The serving metrics of API.md, registered on the app's registry. The per-request ones are
 * `fast-metrics.ts` counters and histograms whose label children are cached by the callers.
 */
import { Gauge, type Registry } from 'prom-client';
import { FastCounter, FastHistogram, type FastCounterChild, type FastHistogramChild } from '../platform/fast-metrics.ts';

/** Counters of one prediction endpoint (route template). */
export interface EndpointCounters {
  /** `prediction_requests_total` of one HTTP status (children cached per status). */
  total(status: number): FastCounterChild;
  readonly ok: FastCounterChild;
  readonly failed: FastCounterChild;
  readonly latency: FastHistogramChild;
}

/** One cached child per HTTP status. */
function byStatus(make: (status: number) => FastCounterChild): (status: number) => FastCounterChild {
  const children = new Map<number, FastCounterChild>();
  return (status) => {
    let c = children.get(status);
    if (c === undefined) {
      c = make(status);
      children.set(status, c);
    }
    return c;
  };
}

export class ServingMetrics {
  readonly requests: FastCounter<'endpoint' | 'route' | 'status'>;
  readonly successful: FastCounter<'endpoint'>;
  readonly failed: FastCounter<'endpoint'>;
  readonly latency: FastHistogram<'endpoint'>;
  readonly predictions: FastCounter<'model' | 'version' | 'type'>;
  readonly duration: FastHistogram<'model'>;
  readonly modelStatus: Gauge<'model' | 'version'>;
  readonly cacheHits: FastCounter;
  readonly cacheMisses: FastCounter;
  readonly batchRows: FastHistogram<'model'>;
  private readonly endpoints = new Map<string, EndpointCounters>();

  constructor(registry: Registry) {
    const registers = [registry];
    // Labelled for the seed service's PromQL as well as modelplane's own (README "Metrics"):
    // `endpoint` is the route template without its leading slash (`predict`), `route` the
    // template as the other prediction metrics write it (`/predict`), `status` the HTTP status.
    this.requests = new FastCounter({
      name: 'prediction_requests_total',
      help: 'Prediction requests received, by endpoint (route template without the leading slash), route template and HTTP status',
      labelNames: ['endpoint', 'route', 'status'],
      registers,
    });
    this.successful = new FastCounter({ name: 'prediction_requests_successful', help: 'Prediction requests answered with 2xx', labelNames: ['endpoint'], registers });
    this.failed = new FastCounter({ name: 'prediction_requests_failed', help: 'Prediction requests answered with an error', labelNames: ['endpoint'], registers });
    this.latency = new FastHistogram({
      name: 'prediction_latency_seconds',
      help: 'Prediction request latency in seconds, by route template',
      labelNames: ['endpoint'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.predictions = new FastCounter({
      name: 'predictions_total',
      help: 'Rows predicted, by model, version and type (single, batch, shadow)',
      labelNames: ['model', 'version', 'type'],
      registers,
    });
    this.duration = new FastHistogram({
      name: 'prediction_duration_seconds',
      help: 'Duration of one onnxruntime run (one micro-batch), by model',
      labelNames: ['model'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.batchRows = new FastHistogram({
      name: 'prediction_batch_rows',
      help: 'Rows per onnxruntime run (how much micro-batching packs together), by model',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
      registers,
    });
    this.modelStatus = new Gauge({
      name: 'model_status',
      help: '1 while a loaded version takes traffic, 0 while loaded but idle (kept for in-flight requests or a quick switch back)',
      labelNames: ['model', 'version'],
      registers,
    });
    this.cacheHits = new FastCounter({ name: 'prediction_cache_hits_total', help: 'Predictions answered from the prediction cache', registers });
    this.cacheMisses = new FastCounter({ name: 'prediction_cache_misses_total', help: 'Prediction cache lookups that missed', registers });
  }

  /** Cached counters of one endpoint label. */
  endpoint(endpoint: string): EndpointCounters {
    let c = this.endpoints.get(endpoint);
    if (c === undefined) {
      c = {
        total: byStatus((status) => this.requests.labels(endpoint.replace(/^\//, ''), endpoint, String(status))),
        ok: this.successful.labels(endpoint),
        failed: this.failed.labels(endpoint),
        latency: this.latency.labels(endpoint),
      };
      this.endpoints.set(endpoint, c);
    }
    return c;
  }
}
