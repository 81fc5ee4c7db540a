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
import type { FloatRows, RawOutputs } from './runtime.ts';
import type { ModelQuery, ServingService } from './serving.service.ts';

/** Reads a request's rows for the model that will answer it (one surface's input adapter). */
export type RowReader = (model: LoadedModel) => ModelRows;

/** What a surface gets back from {@link PredictionService.run}: the model and its outputs for the rows. */
export interface RunResult {
  readonly model: LoadedModel;
  readonly rows: number;
  readonly slice: BatchSlice;
}

/** What answered a request, for the prediction log: one row's JSON fragment, every row's, or the model's outputs. */
export type ServedAnswer = string | readonly string[] | BatchSlice;

/** Which surface answered. */
export type ServedKind = 'single' | 'batch' | 'invocations' | 'explain' | 'kserve';

/**
 * Where answered predictions go (the prediction log, src/drift/). Called on the request path with
 * every answered request, so it must return at once: no I/O, no await, and it copies `input`
 * (the buffer goes back to the model afterwards) only for the requests it keeps.
 */
export interface PredictionSink {
  record(model: LoadedModel, input: FloatRows, rows: number, answer: ServedAnswer, kind: ServedKind, requestId: string | undefined, t0: number): void;
}

/** What {@link PredictionService.predictOutputs} answers: rows `offset .. offset + rows` of `outputs`. */
export interface PredictedOutputs {
  readonly model: LoadedModel;
  readonly rows: number;
  readonly outputs: RawOutputs;
  readonly offset: number;
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
  /** The prediction log; `undefined` logs nothing. */
  readonly sink?: PredictionSink;
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
  private readonly sink: PredictionSink | undefined;

  constructor(deps: PredictionServiceDeps) {
    this.router = deps.router;
    this.cache = deps.cache;
    this.metrics = deps.metrics;
    this.maxBatchSize = deps.maxBatchSize;
    this.sink = deps.sink;
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
      const fragment = (await this.explainRows(model, row, 1, 'single', requestId, t0))(0);
      return singleJson(requestId, model, fragment, false, t0);
    }
    let fragment: string;
    let cached = false;
    model.inFlight++;
    try {
      if (this.cache === undefined) {
        const slice = await runRows(model, row, 1);
        fragment = rowJson(model, slice.outputs, slice.offset);
      } else {
        const answer = await this.cachedRow(this.cache, model, row);
        cached = answer.slice === undefined;
        fragment = answer.fragment ?? rowJson(model, answer.slice!.outputs, answer.slice!.offset);
      }
    } catch (err) {
      model.failures++;
      throw err;
    } finally {
      model.inFlight--;
    }
    this.counted(model, row, 1, fragment, 'single', requestId, t0).single.inc();
    this.shadowOrRelease(query, model, row, 1);
    return singleJson(requestId, model, fragment, cached, t0);
  }

  /** Many rows in input order (API.md batch response), through the cache row by row. */
  async predictBatch(query: ModelQuery, body: unknown, explain: boolean, requestId?: string): Promise<string> {
    const t0 = performance.now();
    const picked = this.router.pick(query);
    const model = picked instanceof LoadedModel ? picked : await picked;
    const { input, rows } = readBatch(body, model, this.maxBatchSize);
    if (explain) return batchJson(model, rows, await this.explainRows(model, input, rows, 'batch', requestId, t0), t0);
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
    this.counted(model, input, rows, slice ?? fragments!, 'batch', requestId, t0).batch.inc(rows);
    this.shadowOrRelease(query, model, input, rows);
    const computed = slice;
    return batchJson(model, rows, computed === undefined ? (i) => fragments![i]! : (i) => rowJson(model, computed.outputs, computed.offset + i), t0);
  }

  /**
   * Rows read by another surface's input adapter (`/invocations`, KServe), run through the
   * micro-batcher without the cache (those surfaces answer in their own shapes).
   */
  async run(query: ModelQuery, read: RowReader, requestId?: string, kind: ServedKind = 'invocations'): Promise<RunResult> {
    const t0 = performance.now();
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
    this.counted(model, input, rows, slice, kind, requestId, t0).batch.inc(rows);
    return { model, rows, slice };
  }

  /**
   * Rows read by another surface's input adapter (KServe) that answers with the model's outputs
   * rather than fragments: the same route (shadow copies included), prediction cache,
   * micro-batcher and counters as `/predict`. Rows answered by the cache are decoded from their
   * fragments into the outputs; rows computed now are read from the run's outputs as they are.
   * The rows' buffer goes back to the model (`releaseRows`) once nothing reads it.
   */
  async predictOutputs(query: ModelQuery, read: RowReader, requestId?: string): Promise<PredictedOutputs> {
    const t0 = performance.now();
    const picked = this.router.pick(query);
    const model = picked instanceof LoadedModel ? picked : await picked;
    const { input, rows } = read(model);
    let outputs: RawOutputs;
    let offset = 0;
    model.inFlight++;
    try {
      if (this.cache === undefined) {
        const slice = await runRows(model, input, rows);
        outputs = slice.outputs;
        offset = slice.offset;
      } else if (rows === 1) {
        const answer = await this.cachedRow(this.cache, model, input);
        if (answer.slice === undefined) outputs = mergeCachedOutputs(model, 1, { fragments: [answer.fragment], computed: new Int32Array(1).fill(-1), slice: undefined });
        else {
          outputs = answer.slice.outputs;
          offset = answer.slice.offset;
        }
      } else {
        const cached = await this.cachedRows(this.cache, model, input, rows);
        if (cached.slice !== undefined && cached.computed === undefined) {
          outputs = cached.slice.outputs;
          offset = cached.slice.offset;
        } else outputs = mergeCachedOutputs(model, rows, cached);
      }
    } catch (err) {
      model.failures++;
      throw err;
    } finally {
      model.inFlight--;
    }
    const counters = this.counted(model, input, rows, { outputs, offset }, 'kserve', requestId, t0);
    (rows === 1 ? counters.single : counters.batch).inc(rows);
    this.shadowOrRelease(query, model, input, rows);
    return { model, rows, outputs, offset };
  }

  /** MLflow's scoring answer `{"predictions": [...]}`: one label (or value) per row. */
  async predictLabels(query: ModelQuery, read: RowReader, requestId?: string): Promise<string> {
    const { model, rows, slice } = await this.run(query, read, requestId);
    let text = '{"predictions":[';
    for (let i = 0; i < rows; i++) text += (i === 0 ? '' : ',') + labelOnlyJson(model, slice.outputs, slice.offset + i);
    return `${text}]}`;
  }

  /** Empties the prediction cache; resolves with how many entries there were. */
  async clearCache(): Promise<number> {
    return this.cache === undefined ? 0 : this.cache.clear();
  }

  /**
   * Counts `rows` answered predictions of `model` and hands them to the prediction log: the one
   * place every answered request of every surface passes through. Returns the model's counters.
   */
  private counted(model: LoadedModel, input: FloatRows, rows: number, answer: ServedAnswer, kind: ServedKind, requestId: string | undefined, t0: number): ModelCounters {
    this.sink?.record(model, input, rows, answer, kind, requestId, t0);
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
  private async explainRows(model: LoadedModel, input: FloatRows, rows: number, kind: 'single' | 'batch', requestId: string | undefined, t0: number): Promise<(row: number) => string> {
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
    const { explainer, explanations } = result;
    this.counted(model, input, rows, { outputs: explanations.outputs, offset: 0 }, 'explain', requestId, t0)[kind].inc(rows);
    return (row: number): string => `${rowJson(model, explanations.outputs, row)},${explainer.json(explanations, row)}`;
  }

  /**
   * Batch rows through the prediction cache: one look-up for every admitted row (Redis: one MGET),
   * only the rows that missed go to the model (all of `input` when every row missed, so nothing is
   * copied), and the answers of admitted rows are stored in one write. Resolves with each row's
   * JSON fragment in input order.
   */
  private async throughCache(cache: PredictionCache, model: LoadedModel, input: FloatRows, rows: number): Promise<string[]> {
    const { fragments, computed, slice } = await this.cachedRows(cache, model, input, rows);
    if (slice === undefined) return fragments as string[];
    for (let i = 0; i < rows; i++) {
      if (fragments[i] === undefined) fragments[i] = rowJson(model, slice.outputs, slice.offset + (computed === undefined ? i : computed[i]!));
    }
    return fragments as string[];
  }

  /**
   * One row through the cache (one key, no arrays), for `predictSingle` and KServe: a hit is its
   * cached fragment with no slice; a miss is the slice of the run that computed it, with the
   * fragment made for the cache when the cache admits the row (so nobody writes it twice).
   */
  private async cachedRow(cache: PredictionCache, model: LoadedModel, row: FloatRows): Promise<{ fragment: string; slice: undefined } | { fragment: string | undefined; slice: BatchSlice }> {
    let key: string | undefined;
    if (cache.admits(rowHash(model.cacheSeed, row, 0, model.nFeatures))) {
      key = cacheKey(model.identity.cacheTag, row);
      const got = cache.get(key);
      const hit = typeof got === 'object' ? await got : got;
      if (hit !== undefined) {
        model.cacheHits++;
        this.metrics.cacheHits.inc();
        return { fragment: hit, slice: undefined };
      }
    }
    this.metrics.cacheMisses.inc();
    const slice = await runRows(model, row, 1);
    if (key === undefined) return { fragment: undefined, slice };
    const fragment = rowJson(model, slice.outputs, slice.offset);
    cache.set(key, fragment);
    return { fragment, slice };
  }

  /**
   * The cache step of every surface: looks up the admitted rows, runs the rows that missed through
   * the micro-batcher, stores the new answers of admitted rows. A row's answer is then either its
   * fragment (a hit, or a miss whose fragment was made for the cache) or a row of `slice`.
   */
  private async cachedRows(cache: PredictionCache, model: LoadedModel, input: FloatRows, rows: number): Promise<CachedRows> {
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
    if (misses === 0) return { fragments, computed: undefined, slice: undefined };
    this.metrics.cacheMisses.inc(misses);
    const packed = misses === rows ? input : gatherMissedRows(model, input, fragments, misses);
    const slice = await runRows(model, packed, misses);
    if (packed !== input) model.releaseRows(packed);
    // Row -> its row in `slice` (-1: from the cache); not needed when every row missed.
    const computed = misses === rows ? undefined : new Int32Array(rows).fill(-1);
    const storeKeys: string[] = [];
    const storeFragments: string[] = [];
    for (let i = 0, j = 0; j < misses; i++) {
      if (fragments[i] !== undefined) continue;
      if (computed !== undefined) computed[i] = j;
      const key = keys[i];
      if (key !== undefined) {
        const fragment = rowJson(model, slice.outputs, slice.offset + j);
        fragments[i] = fragment;
        storeKeys.push(key);
        storeFragments.push(fragment);
      }
      j++;
    }
    if (storeKeys.length > 0) cache.setMany(storeKeys, storeFragments);
    return { fragments, computed, slice };
  }
}

/** Rows after the cache step: per row a JSON fragment, a row of `slice`, or both. */
interface CachedRows {
  /** The cached fragment of a hit, the new fragment of a stored miss, `undefined` otherwise. */
  readonly fragments: (string | undefined)[];
  /** Row -> its row in `slice` (-1 for hits); `undefined` when every row missed (row i is row i). */
  readonly computed: Int32Array | undefined;
  /** The model's outputs for the rows that missed, in input order; `undefined` when every row hit. */
  readonly slice: BatchSlice | undefined;
}

/**
 * One set of outputs for rows of which some came from the cache (as fragments written by
 * `rowJson`) and some from a run: the run's rows are copied, the cached ones parsed back.
 */
function mergeCachedOutputs(model: LoadedModel, rows: number, cached: CachedRows): RawOutputs {
  const { fragments, computed, slice } = cached;
  const kind = slice === undefined ? undefined : slice.outputs.probabilities !== null ? 'probabilities' : slice.outputs.labels !== null ? 'labels' : 'values';
  let width = slice?.outputs.width ?? 0;
  const parsed = new Array<CachedAnswer | undefined>(rows);
  for (let i = 0; i < rows; i++) {
    if (computed !== undefined && computed[i]! >= 0) continue;
    const answer = JSON.parse(`{${fragments[i]!}}`) as CachedAnswer;
    parsed[i] = answer;
    if (width === 0) width = answer.probability?.length ?? (Array.isArray(answer.prediction) ? answer.prediction.length : 1);
  }
  const form = kind ?? (parsed[0]!.probability !== undefined ? 'probabilities' : model.isClassifier && !Array.isArray(parsed[0]!.prediction) ? 'labels' : 'values');
  if (form === 'labels') {
    const labels = new Array<number | bigint | string>(rows);
    for (let i = 0; i < rows; i++) {
      const j = computed?.[i] ?? -1;
      labels[i] = j >= 0 ? slice!.outputs.labels![slice!.offset + j]! : (parsed[i]!.prediction as number | string);
    }
    return { rows, probabilities: null, labels, values: null, width: 1 };
  }
  const values = new Float64Array(rows * width);
  for (let i = 0; i < rows; i++) {
    const j = computed?.[i] ?? -1;
    if (j >= 0) {
      const src = form === 'probabilities' ? slice!.outputs.probabilities! : slice!.outputs.values!;
      const from = (slice!.offset + j) * width;
      for (let k = 0; k < width; k++) values[i * width + k] = src[from + k]!;
      continue;
    }
    const answer = parsed[i]!;
    const row = form === 'probabilities' ? answer.probability! : Array.isArray(answer.prediction) ? answer.prediction : [answer.prediction as number];
    // JSON has no NaN: `num` wrote it as null.
    for (let k = 0; k < width; k++) values[i * width + k] = row[k] ?? Number.NaN;
  }
  return form === 'probabilities' ? { rows, probabilities: values, labels: null, values: null, width } : { rows, probabilities: null, labels: null, values, width };
}

/** A cached row's fragment, parsed. */
interface CachedAnswer {
  readonly prediction: number | string | (number | null)[];
  readonly probability?: (number | null)[];
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
