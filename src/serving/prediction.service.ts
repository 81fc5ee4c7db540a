/**
 * One call per prediction request: the model the request addresses (with its shadow versions), the
 * rows read into the model's feature order, the prediction cache, the micro-batcher, explanations,
 * every counter (per endpoint, per model, the `/info` usage summary) and the answer's JSON text.
 * The routes of every surface (native, MLflow's `/invocations`, KServe) only hand it the query and
 * the body. Answers are written as JSON text straight from the output typed arrays: a generic
 * serializer would first need an object per row.
 */
import type { FastCounterChild } from '../platform/fast-metrics.ts';
import type { AnsweredHook } from '../platform/metrics.ts';
import { AppError } from '../platform/errors.ts';
import type { BatchSlice } from './batcher.ts';
import { cacheKey, rowHash, wordsOf, type PredictionCache } from './cache.ts';
import { ExplainerCache } from './explain.ts';
import { readBatch, readSingleRow, type ModelRows } from './input.ts';
import { LoadedModel, labelOnlyJson, num, rowJson, runRows } from './loaded-model.ts';
import type { ServingMetrics } from './metrics.ts';
import type { FloatRows } from './runtime.ts';
import type { ModelQuery, ServingService } from './serving.service.ts';

/** Reads a request's rows for the model that will answer it (one surface's input adapter). */
export type RowReader = (model: LoadedModel) => ModelRows;

/** What a surface gets back from {@link PredictionService.run}: the model and its outputs for the rows. */
export interface RunResult {
  readonly model: LoadedModel;
  readonly rows: number;
  readonly slice: BatchSlice;
}

/** The usage summary of `/info` (this process since start). */
export interface PredictionUsage {
  requests: number;
  failures: number;
  predictions: number;
  latency_ms_total: number;
}

export interface PredictionServiceDeps {
  /** Which loaded model answers a query. */
  readonly router: ServingService;
  readonly cache: PredictionCache | undefined;
  readonly metrics: ServingMetrics;
  /** Most rows of one batch request (`MAX_BATCH_SIZE`). */
  readonly maxBatchSize: number;
}

interface ModelCounters {
  readonly single: FastCounterChild;
  readonly batch: FastCounterChild;
}

const NO_SHADOWS: readonly LoadedModel[] = [];

export class PredictionService {
  readonly usage: PredictionUsage = { requests: 0, failures: 0, predictions: 0, latency_ms_total: 0 };
  readonly cache: PredictionCache | undefined;
  private readonly router: ServingService;
  private readonly metrics: ServingMetrics;
  /** Most rows of one batch request (`MAX_BATCH_SIZE`). */
  readonly maxBatchSize: number;
  private readonly explainers: ExplainerCache;
  /** Per-model `predictions_total` children, so a request does no label lookup. */
  private readonly counters = new WeakMap<LoadedModel, ModelCounters>();

  constructor(deps: PredictionServiceDeps) {
    this.router = deps.router;
    this.cache = deps.cache;
    this.metrics = deps.metrics;
    this.maxBatchSize = deps.maxBatchSize;
    this.explainers = new ExplainerCache((m) => deps.router.trainingReference(m.identity));
  }

  /**
   * The per-endpoint counters of API.md's prediction metrics and the usage summary, as a route's
   * `config.answered` (called by the request metrics' per-route hook with every answer).
   */
  answered(endpoint: string): AnsweredHook {
    const c = this.metrics.endpoint(endpoint);
    const usage = this.usage;
    return (seconds, status) => {
      c.total(status).inc();
      usage.requests++;
      usage.latency_ms_total += seconds * 1000;
      if (status < 400) c.ok.inc();
      else {
        c.failed.inc();
        usage.failures++;
      }
      c.latency.observe(seconds);
    };
  }

  /**
   * One row (API.md single response). Rows seen before may come from the prediction cache; the
   * route's shadow versions get a copy of the row.
   * @param explain `?explain=true`: Shapley contributions, computed without cache or batcher
   */
  async predictSingle(query: ModelQuery, body: unknown, explain: boolean, requestId: string): Promise<string> {
    const t0 = performance.now();
    const picked = this.router.pick(query);
    const model = picked instanceof LoadedModel ? picked : await picked;
    const row = readSingleRow(body, model);
    if (explain) {
      const fragment = (await this.explainRows(model, row, 1, 'single'))(0);
      return singleJson(requestId, model, fragment, false, t0);
    }
    const cache = this.cache;
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
          this.metrics.cacheHits.inc();
        } else this.metrics.cacheMisses.inc();
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
    this.counted(model, 1).single.inc();
    this.shadowOrRelease(query, model, row, 1);
    return singleJson(requestId, model, fragment, cached, t0);
  }

  /** Many rows in input order (API.md batch response), through the cache row by row. */
  async predictBatch(query: ModelQuery, body: unknown, explain: boolean): Promise<string> {
    const t0 = performance.now();
    const picked = this.router.pick(query);
    const model = picked instanceof LoadedModel ? picked : await picked;
    const { input, rows } = readBatch(body, model, this.maxBatchSize);
    if (explain) return batchJson(model, rows, await this.explainRows(model, input, rows, 'batch'), t0);
    let slice: BatchSlice | undefined;
    let fragments: string[] | undefined;
    model.inFlight++;
    try {
      if (this.cache === undefined) slice = await runRows(model, input, rows);
      else fragments = await this.throughCache(this.cache, model, input, rows);
    } catch (err) {
      model.failures++;
      throw err;
    } finally {
      model.inFlight--;
    }
    this.counted(model, rows).batch.inc(rows);
    this.shadowOrRelease(query, model, input, rows);
    const computed = slice;
    return batchJson(model, rows, computed === undefined ? (i) => fragments![i]! : (i) => rowJson(model, computed.outputs, computed.offset + i), t0);
  }

  /**
   * Rows read by another surface's input adapter (`/invocations`, KServe), run through the
   * micro-batcher without the cache (those surfaces answer in their own shapes).
   */
  async run(query: ModelQuery, read: RowReader): Promise<RunResult> {
    const picked = this.router.pick(query);
    const model = picked instanceof LoadedModel ? picked : await picked;
    const { input, rows } = read(model);
    model.inFlight++;
    let slice: BatchSlice;
    try {
      slice = await runRows(model, input, rows);
    } catch (err) {
      model.failures++;
      throw err;
    } finally {
      model.inFlight--;
    }
    this.counted(model, rows).batch.inc(rows);
    return { model, rows, slice };
  }

  /** MLflow's scoring answer `{"predictions": [...]}`: one label (or value) per row. */
  async predictLabels(query: ModelQuery, read: RowReader): Promise<string> {
    const { model, rows, slice } = await this.run(query, read);
    let text = '{"predictions":[';
    for (let i = 0; i < rows; i++) text += (i === 0 ? '' : ',') + labelOnlyJson(model, slice.outputs, slice.offset + i);
    return `${text}]}`;
  }

  /** Empties the prediction cache; resolves with how many entries there were. */
  async clearCache(): Promise<number> {
    return this.cache === undefined ? 0 : this.cache.clear();
  }

  /** Counts `rows` predictions of `model`; returns its counters. */
  private counted(model: LoadedModel, rows: number): ModelCounters {
    model.predictions += rows;
    this.usage.predictions += rows;
    let c = this.counters.get(model);
    if (c === undefined) {
      c = {
        single: this.metrics.predictions.labels(model.identity.name, model.identity.version, 'single'),
        batch: this.metrics.predictions.labels(model.identity.name, model.identity.version, 'batch'),
      };
      this.counters.set(model, c);
    }
    return c;
  }

  /**
   * Shadow traffic: the same rows go to the route's shadow versions, whose answers are counted
   * and dropped (they read the rows later). Otherwise nothing reads the rows any more and their
   * buffer goes back to the model.
   */
  private shadowOrRelease(query: ModelQuery, model: LoadedModel, input: FloatRows, rows: number): void {
    const shadows = query.version !== undefined || query.stage !== undefined || query.alias !== undefined ? NO_SHADOWS : this.router.shadowsOf(query);
    if (shadows.length === 0) {
      model.releaseRows(input);
      return;
    }
    for (const s of shadows) {
      if (s.released) continue;
      s.batcher.submit(input, rows).then(
        () => this.metrics.predictions.labels(s.identity.name, s.identity.version, 'shadow').inc(rows),
        () => {
          s.failures++;
        },
      );
    }
  }

  /**
   * `?explain=true`: predictions with Shapley contributions, straight from the model's runtime (no
   * prediction cache, no micro-batcher, no shadow copies); see explain.ts. Resolves with each
   * row's JSON fragment.
   */
  private async explainRows(model: LoadedModel, input: FloatRows, rows: number, kind: 'single' | 'batch'): Promise<(row: number) => string> {
    model.inFlight++;
    let result;
    try {
      result = await this.explainers.explain(model, input, rows);
    } catch (err) {
      if (!(err instanceof AppError)) model.failures++;
      throw err;
    } finally {
      model.inFlight--;
    }
    this.counted(model, rows)[kind].inc(rows);
    const { explainer, explanations } = result;
    return (row: number): string => `${rowJson(model, explanations.outputs, row)},${explainer.json(explanations, row)}`;
  }

  /**
   * Batch rows through the prediction cache: one look-up for every admitted row (Redis: one MGET),
   * only the rows that missed go to the model (all of `input` when every row missed, so nothing is
   * copied), and the answers of admitted rows are stored in one write. Resolves with each row's
   * JSON fragment in input order.
   */
  private async throughCache(cache: PredictionCache, model: LoadedModel, input: FloatRows, rows: number): Promise<string[]> {
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
      this.metrics.cacheHits.inc(hits);
    }
    if (misses === 0) return fragments as string[];
    this.metrics.cacheMisses.inc(misses);
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

/** Milliseconds since `t0`, to the microsecond. */
function elapsedMs(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

/** A single-row answer (API.md): the row's fragment, the model's fixed fields, timing and ids. */
function singleJson(requestId: string, model: LoadedModel, fragment: string, cached: boolean, t0: number): string {
  return `{${fragment},${model.fixed},"processing_time_ms":${num(elapsedMs(t0))},"cached":${cached},"timestamp":"${isoNow()}","request_id":${JSON.stringify(requestId)}}`;
}

/** A batch answer (API.md): every row's fragment in input order, then count, model and timing. */
function batchJson(model: LoadedModel, rows: number, fragment: (row: number) => string, t0: number): string {
  let body = '{"predictions":[';
  for (let i = 0; i < rows; i++) body += (i === 0 ? '{' : ',{') + fragment(i) + '}';
  return `${body}],"count":${rows},"model_name":${JSON.stringify(model.identity.name)},"model_version":${JSON.stringify(model.identity.version)},"processing_time_ms":${num(elapsedMs(t0))}}`;
}
