/**
 * One servable model version in memory: its signature turned into the lookup tables the input and
 * output adapters use, its onnxruntime session behind a micro-batcher, and the bookkeeping that
 * decides when it may be released (in-flight count, last use).
 */
import type { ClassLabel, ModelSignature } from '../onnx/signature.ts';
import { MicroBatcher, QueueFullError, type BatchSlice } from './batcher.ts';
import { cacheSeed } from './cache.ts';
import { SpareArrays } from './spare-arrays.ts';
import { unavailable } from '../platform/errors.ts';
import type { FloatRows, ModelRuntime, RawOutputs } from './runtime.ts';

/** Who a loaded model is: registry version or single file. */
export interface ModelIdentity {
  readonly name: string;
  /** Registry version number as a string, or `file:<n>` for the n-th load of `MODEL_PATH`. */
  readonly version: string;
  stage: string | null;
  aliases: readonly string[];
  readonly metrics: Readonly<Record<string, number>>;
  readonly runId: string | null;
  readonly createdAt: string | null;
  /** Where the bytes came from (artifact key or file path / s3 URL). */
  readonly source: string;
  /** Changes whenever the bytes change: part of every prediction-cache key. */
  readonly cacheTag: string;
}

export interface LoadedModelOptions {
  readonly maxBatchRows: number;
  readonly maxQueueRows: number;
  readonly maxQueueDelayUs: number;
  readonly onRun?: (seconds: number, rows: number) => void;
}

/**
 * Spare row buffers of one model are reused by exact length (a single row's, or a client's usual
 * batch size): at most 32 of them and 4 MB of float64 values.
 */
const spareRowBuffers = (): SpareArrays<FloatRows> => new SpareArrays<FloatRows>(32, 1 << 19, (length, wanted) => length === wanted);

/** Largest finite float32; larger magnitudes become Infinity in the input tensor. */
export const FLOAT32_MAX = 3.4028234663852886e38;

export class LoadedModel {
  readonly signature: ModelSignature;
  readonly nFeatures: number;
  readonly featureNames: readonly string[];
  /** Feature name -> column. */
  readonly featureIndex: ReadonlyMap<string, number>;
  /** Per column: category label -> code for categorical features, `null` for numeric ones. */
  readonly categoryCodes: readonly (ReadonlyMap<string, number> | null)[];
  readonly hasCategorical: boolean;
  readonly double: boolean;
  readonly isClassifier: boolean;
  readonly classes: readonly ClassLabel[] | null;
  /** Class labels as JSON fragments, index = probability column. */
  readonly classJson: readonly string[] | null;
  readonly batcher: MicroBatcher;
  /** Seed of the prediction cache's row hashes (`rowHash`), from the cache tag. */
  readonly cacheSeed: number;
  readonly loadedAt = new Date();
  /** Requests holding this model now; it is released only at 0. */
  inFlight = 0;
  /** Coarse clock tick of the last use (see `ServingService`). */
  lastUsedTick = 0;
  predictions = 0;
  failures = 0;
  cacheHits = 0;
  released = false;
  /** JSON fragment of the fields every single response repeats (`"classes":...,"model_name":...`). */
  private fixedJson: string;
  /** Request row buffers given back by {@link releaseRows}, for {@link takeRows}. */
  private readonly spareRows = spareRowBuffers();

  constructor(
    readonly identity: ModelIdentity,
    signature: ModelSignature,
    readonly runtime: ModelRuntime,
    options: LoadedModelOptions,
  ) {
    this.signature = signature;
    this.nFeatures = signature.input.nFeatures;
    this.featureNames = signature.featureNames;
    this.featureIndex = new Map(signature.featureNames.map((n, i) => [n, i]));
    this.categoryCodes = signature.featureTypes.map((t, i) => {
      if (t !== 'categorical') return null;
      const labels = signature.categories?.[signature.featureNames[i]!] ?? [];
      return new Map(labels.map((l, code) => [l, code]));
    });
    this.hasCategorical = this.categoryCodes.some((c) => c !== null);
    this.double = signature.input.elementType === 'double';
    this.isClassifier = signature.task === 'classification';
    this.classes = signature.classLabels;
    this.classJson = this.classes === null ? null : this.classes.map((c) => JSON.stringify(c));
    this.batcher = new MicroBatcher((input, rows) => runtime.run(input, rows), {
      nFeatures: this.nFeatures,
      double: this.double,
      maxBatchRows: options.maxBatchRows,
      maxQueueRows: options.maxQueueRows,
      maxQueueDelayUs: options.maxQueueDelayUs,
      ...(options.onRun === undefined ? {} : { onRun: options.onRun }),
    });
    this.fixedJson = this.buildFixedJson();
    this.cacheSeed = cacheSeed(identity.cacheTag);
  }

  /** A zeroed row buffer of the model's element type. */
  allocRows(rows: number): FloatRows {
    return this.double ? new Float64Array(rows * this.nFeatures) : new Float32Array(rows * this.nFeatures);
  }

  /**
   * A row buffer for a request's rows, perhaps one an earlier request gave back, so NOT zeroed:
   * the caller writes every value. Hand it to {@link releaseRows} once nothing reads it any more.
   */
  takeRows(rows: number): FloatRows {
    return this.spareRows.take(rows * this.nFeatures) ?? this.allocRows(rows);
  }

  /**
   * Gives back a row buffer from {@link takeRows} or {@link allocRows} that nothing reads any more
   * (its run is over, and no shadow model or explainer holds it); the next request of the same size
   * reuses it. Reused, a 1000-row buffer is not one more 120 KB of garbage outside the JS heap that
   * only a collection frees.
   */
  releaseRows(rows: FloatRows): void {
    this.spareRows.give(rows);
  }

  /** Runs the model once on zero rows so the first real request pays no lazy initialisation. */
  async warmUp(): Promise<void> {
    const rows = this.signature.input.fixedBatch ?? 2;
    await this.runtime.run(this.allocRows(rows), rows);
  }

  /** The fixed part of single responses; rebuilt when stage or aliases change. */
  get fixed(): string {
    return this.fixedJson;
  }

  private buildFixedJson(): string {
    const id = this.identity;
    const classes = this.classJson === null || !this.isClassifier ? '' : `"classes":[${this.classJson.join(',')}],`;
    return `${classes}"model_name":${JSON.stringify(id.name)},"model_version":${JSON.stringify(id.version)},"stage":${JSON.stringify(id.stage)},"features_processed":${this.nFeatures}`;
  }

  /** Updates stage and aliases (they move while the version stays). */
  describe(stage: string | null, aliases: readonly string[]): void {
    if (stage === this.identity.stage && aliases.join('\u0000') === this.identity.aliases.join('\u0000')) return;
    this.identity.stage = stage;
    this.identity.aliases = aliases;
    this.fixedJson = this.buildFixedJson();
  }

  /** Public description for `/model/metadata`, `/health/model` and `/info`. */
  summary(): Record<string, unknown> {
    const id = this.identity;
    return {
      name: id.name,
      version: id.version,
      stage: id.stage,
      aliases: [...id.aliases],
      task: this.signature.task,
      features: [...this.featureNames],
      n_features: this.nFeatures,
      classes: this.classes === null ? null : [...this.classes],
      metrics: { ...id.metrics },
      run_id: id.runId,
      created_at: id.createdAt,
      loaded_at: this.loadedAt.toISOString(),
      source: id.source,
      device: this.runtime.device,
      in_flight: this.inFlight,
      predictions: this.predictions,
      failures: this.failures,
      cache_hits: this.cacheHits,
      batching: this.batcher.stats(),
    };
  }
}

/**
 * One row's answer as a JSON fragment: `"prediction":...,"probability":[...],"confidence":...`
 * (classifier) or `"prediction":...` (regressor). Built straight from the typed output arrays.
 * When a classifier exposes probabilities the label is the class of the highest probability (first
 * on ties): onnxruntime's own label output of TreeEnsembleClassifier is wrong for some binary layouts.
 */
export function rowJson(model: LoadedModel, out: RawOutputs, row: number): string {
  const p = out.probabilities;
  if (p !== null) {
    const w = out.width;
    const base = row * w;
    let best = 0;
    let bestP = p[base]!;
    let probs = num(bestP);
    for (let k = 1; k < w; k++) {
      const v = p[base + k]!;
      probs += ',' + num(v);
      if (v > bestP) {
        bestP = v;
        best = k;
      }
    }
    const label = model.classJson?.[best] ?? String(best);
    return `"prediction":${label},"probability":[${probs}],"confidence":${num(bestP)}`;
  }
  if (out.labels !== null) return `"prediction":${labelJson(out.labels[row]!)}`;
  const v = out.values!;
  const w = out.width;
  if (w === 1) return `"prediction":${num(v[row]!)}`;
  let s = num(v[row * w]!);
  for (let k = 1; k < w; k++) s += ',' + num(v[row * w + k]!);
  return `"prediction":[${s}]`;
}

/** The probability column of row `row`'s predicted class (the most probable, first on ties); 0 without probabilities. */
export function predictedColumn(out: RawOutputs, row: number): number {
  const p = out.probabilities;
  if (p === null) return 0;
  const w = out.width;
  const base = row * w;
  let best = 0;
  for (let k = 1; k < w; k++) if (p[base + k]! > p[base + best]!) best = k;
  return best;
}

/** One row's label (or value) as a JSON fragment, for MLflow's `{"predictions": [...]}`. */
export function labelOnlyJson(model: LoadedModel, out: RawOutputs, row: number): string {
  if (out.probabilities !== null) {
    const best = predictedColumn(out, row);
    return model.classJson?.[best] ?? String(best);
  }
  if (out.labels !== null) return labelJson(out.labels[row]!);
  const v = out.values!;
  const w = out.width;
  if (w === 1) return num(v[row]!);
  let s = num(v[row * w]!);
  for (let k = 1; k < w; k++) s += ',' + num(v[row * w + k]!);
  return `[${s}]`;
}

/**
 * JSON number text; JSON has no NaN or Infinity, so those become `null`. The text is the same as
 * `String(v)` (both are the spec's Number::toString), but `String` goes through V8's number-to-string
 * cache, which allocates every new string straight in the old generation: under load the
 * probabilities of every answer became old-generation garbage (megabytes per second, collected only
 * by full collections), and the process's memory grew with it between those.
 */
export function num(v: number): string {
  return JSON.stringify(v);
}

/** int64 labels arrive as BigInt (JSON.stringify throws on those): serialised as JSON numbers. */
function labelJson(v: number | bigint | string): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return v.toString();
  return num(v);
}

/**
 * Submits rows to a model's batcher; a full queue is a 503, thrown before anything is queued (no
 * promise wrapper on the hot path).
 * @throws AppError 503 when the model's queue is full
 */
export function runRows(model: LoadedModel, input: FloatRows, rows: number): Promise<BatchSlice> {
  const batcher = model.batcher;
  if (batcher.wouldOverflow(rows)) {
    throw unavailable(`${model.identity.name} is overloaded: ${new QueueFullError(batcher.waitingRows).message}; retry shortly`, 1);
  }
  return batcher.submit(input, rows);
}

