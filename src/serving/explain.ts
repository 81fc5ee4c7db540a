/**
 * Per-row explanations (`?explain=true`): interventional Shapley values of one model output,
 * computed for any ONNX model by running it on synthetic rows (no knowledge of its internals).
 *
 * The explained quantity is the predicted value (regression) or the probability of the predicted
 * class (classification). Features that are "absent" from a coalition take their values from a
 * small background set built from the version's training reference (`reference.json`), so
 * `v(S) = mean_k f(x_S, b_k)` and the base value `v({})` is the mean output over the background.
 * With at most {@link EXACT_MAX_FEATURES} features every coalition is evaluated (exact values);
 * beyond that, antithetic permutation sampling with a fixed seed gives deterministic estimates.
 * Either way the contributions of a row add up to `prediction - base_value` (efficiency): exactly
 * by construction, up to floating-point rounding.
 *
 * Model runs go to the model's runtime directly, not through the micro-batcher: one explanation is
 * thousands of synthetic rows, which must not hold up the prediction queue as one giant batch.
 */
import { quantileSorted } from '../util/stats.ts';
import { createRng } from '../util/random.ts';
import { AppError } from '../platform/errors.ts';
import { num, predictedColumn, type LoadedModel } from './loaded-model.ts';
import type { FloatRows, RawOutputs } from './runtime.ts';

/** Most rows one `?explain=true` request may carry. */
export const MAX_EXPLAIN_ROWS = 100;
/** Rows of the background set. */
export const BACKGROUND_ROWS = 16;
/** Up to this many features every coalition is evaluated (2^F coalitions); beyond, permutations are sampled. */
export const EXACT_MAX_FEATURES = 8;
/** Sampled permutations, each also walked in reverse (antithetic pairs). */
export const PERMUTATION_PAIRS = 16;
/** Seed of the background shuffles and of the sampled permutations (answers are reproducible). */
const SEED = 0x5eed;
/** Most input values in one runtime call: bounds memory and how long one call holds the event loop. */
const MAX_RUN_VALUES = 1 << 20;
/** Most rows in one runtime call. */
const MAX_RUN_ROWS = 16_384;

/** What explanations read of a loaded model. */
export type ExplainableModel = Pick<LoadedModel, 'identity' | 'runtime' | 'signature' | 'nFeatures' | 'featureNames' | 'categoryCodes' | 'allocRows'>;

/** The explanations of a request's rows, beside the model outputs for those rows. */
export interface Explanations {
  /** The model's outputs for the explained rows (the predictions to answer with). */
  readonly outputs: RawOutputs;
  /** `[rows, nFeatures]` contributions, row-major, in model feature order. */
  readonly contributions: Float64Array;
  /** Per row: the mean explained output over the background rows. */
  readonly baseValues: Float64Array;
}

/** A 400 about `?explain=true`, naming the query parameter. */
function explainError(message: string): AppError {
  return new AppError(400, 'validation_error', `explain: ${message}`, [{ path: '/querystring/explain', message }]);
}

/**
 * Refuses requests over {@link MAX_EXPLAIN_ROWS} rows.
 * @throws AppError 400 naming `explain` and the limit
 */
export function checkExplainRows(rows: number): void {
  if (rows > MAX_EXPLAIN_ROWS) {
    throw explainError(`explanations are computed for at most ${MAX_EXPLAIN_ROWS} rows per request (got ${rows}); send fewer rows or split the batch`);
  }
}

/**
 * Refuses models whose signature has no single score to attribute (classifiers exposing labels only).
 * @throws AppError 400 naming why
 */
export function checkExplainable(model: ExplainableModel): void {
  const s = model.signature;
  if (s.task === 'classification' && s.outputs.probabilities === undefined) throw labelsOnly(model);
}

function labelsOnly(model: ExplainableModel): AppError {
  return explainError(`not supported for model '${model.identity.name}': the classifier exposes class labels only (no probabilities), so there is no score to attribute`);
}

// ---------------------------------------------------------------- training reference

type NumericStats = { readonly type: 'numeric'; readonly sample: readonly number[] };
type CategoricalStats = { readonly type: 'categorical'; readonly frequencies: Readonly<Record<string, number>> };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The reference's statistics of one feature, checked for the fields the background needs. */
function featureStats(reference: unknown, name: string): NumericStats | CategoricalStats {
  const features = isRecord(reference) ? reference['features'] : undefined;
  if (!isRecord(features)) throw explainError('the training reference of this version is malformed (no per-feature statistics)');
  const f = features[name];
  if (!isRecord(f)) throw explainError(`the training reference has no statistics for feature '${name}'`);
  if (f['type'] === 'numeric' && Array.isArray(f['sample']) && f['sample'].every((v) => typeof v === 'number')) {
    return { type: 'numeric', sample: f['sample'] };
  }
  if (f['type'] === 'categorical' && isRecord(f['frequencies']) && Object.values(f['frequencies']).every((v) => typeof v === 'number' && v >= 0)) {
    return { type: 'categorical', frequencies: f['frequencies'] as Record<string, number> };
  }
  throw explainError(`the training reference's statistics of feature '${name}' are malformed`);
}

/** `k` evenly spaced quantiles (midpoints of `k` equal-probability slices) of a sample; NaN when it is empty. */
function quantiles(sample: readonly number[], k: number): Float64Array {
  const sorted = Float64Array.from(sample).sort();
  const out = new Float64Array(k);
  for (let i = 0; i < k; i++) out[i] = quantileSorted(sorted, (i + 0.5) / k);
  return out;
}

/**
 * `k` category codes in proportion to the training frequencies (largest remainders), categories
 * the model does not know left out; NaN (the model's "missing") when none is left.
 */
function categoryColumn(frequencies: Readonly<Record<string, number>>, codes: ReadonlyMap<string, number>, k: number): Float64Array {
  const known = Object.entries(frequencies)
    .filter(([label, n]) => n > 0 && codes.has(label))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const out = new Float64Array(k).fill(Number.NaN);
  const total = known.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return out;
  const quota = known.map(([, n]) => (n * k) / total);
  const slots = quota.map(Math.floor);
  let left = k - slots.reduce((s, n) => s + n, 0);
  const byRemainder = quota.map((q, i) => [q - Math.floor(q), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of byRemainder) {
    if (left === 0) break;
    slots[i]!++;
    left--;
  }
  let at = 0;
  known.forEach(([label], i) => {
    for (let s = 0; s < slots[i]!; s++) out[at++] = codes.get(label)!;
  });
  return out;
}

/**
 * The background set: `rows` rows whose features are drawn independently from the training
 * marginals: evenly spaced quantiles of each numeric feature's sample, categories in proportion to
 * their frequencies (as the codes the model takes), each column shuffled on its own with a fixed
 * seed so that no two features move together.
 * @throws AppError 400 when the reference lacks or garbles a feature, or disagrees with its type
 */
export function buildBackground(model: ExplainableModel, reference: unknown, rows = BACKGROUND_ROWS): FloatRows {
  const f = model.nFeatures;
  const out = model.allocRows(rows);
  const rng = createRng(SEED);
  const order = new Int32Array(rows);
  model.featureNames.forEach((name, j) => {
    const stats = featureStats(reference, name);
    const codes = model.categoryCodes[j] ?? null;
    if ((stats.type === 'categorical') !== (codes !== null)) {
      throw explainError(`the training reference describes feature '${name}' as ${stats.type}, the model does not`);
    }
    const column = stats.type === 'numeric' ? quantiles(stats.sample, rows) : categoryColumn(stats.frequencies, codes!, rows);
    for (let i = 0; i < rows; i++) order[i] = i;
    rng.shuffleInPlace(order);
    for (let i = 0; i < rows; i++) out[i * f + j] = column[order[i]!]!;
  });
  return out;
}

// ---------------------------------------------------------------- explainer

function outputAt(out: RawOutputs, row: number, column: number): number {
  return (out.probabilities ?? out.values)![row * out.width + column]!;
}

/**
 * Shapley weights `s! (F - s - 1)! / F!` of adding a feature to a coalition of size `s`, computed
 * as a running product so no factorial overflows.
 */
function shapleyWeights(f: number): Float64Array {
  const w = new Float64Array(f);
  // w(0) = 1/F; w(s) = w(s-1) * s / (F - s).
  w[0] = 1 / f;
  for (let s = 1; s < f; s++) w[s] = (w[s - 1]! * s) / (f - s);
  return w;
}

/** Explanations for one model version: its background set and what the model says about it. */
export class Explainer {
  private readonly f: number;
  /** Per background row and output column, the model's output (`[K, width]`). */
  private readonly backgroundOut: Float64Array;
  /** Per output column, the mean over the background rows. */
  private readonly base: Float64Array;
  private readonly width: number;
  /** `"name":` per feature, for the JSON answer. */
  private readonly keys: readonly string[];
  private readonly permutations: readonly Int32Array[];

  private constructor(
    private readonly model: ExplainableModel,
    private readonly background: FloatRows,
    private readonly backgroundRows: number,
    out: RawOutputs,
  ) {
    this.f = model.nFeatures;
    this.width = out.width;
    this.backgroundOut = new Float64Array(backgroundRows * out.width);
    this.base = new Float64Array(out.width);
    for (let k = 0; k < backgroundRows; k++) {
      for (let c = 0; c < out.width; c++) {
        const v = outputAt(out, k, c);
        this.backgroundOut[k * out.width + c] = v;
        this.base[c]! += v / backgroundRows;
      }
    }
    this.keys = model.featureNames.map((n) => `${JSON.stringify(n)}:`);
    this.permutations = this.f > EXACT_MAX_FEATURES ? samplePermutations(this.f) : [];
  }

  /**
   * Builds the background from `reference` and runs the model on it once.
   * @throws AppError 400 when the model has no single score to attribute or the reference does not fit it
   */
  static async create(model: ExplainableModel, reference: unknown): Promise<Explainer> {
    checkExplainable(model);
    const background = buildBackground(model, reference);
    const out = await model.runtime.run(background, BACKGROUND_ROWS);
    if (out.labels !== null) throw labelsOnly(model);
    if (out.probabilities === null && out.width > 1) {
      throw explainError(`not supported for model '${model.identity.name}': it predicts ${out.width} values per row (multi-output regression); explanations attribute one output`);
    }
    return new Explainer(model, background, BACKGROUND_ROWS, out);
  }

  /** The background rows (`[K, nFeatures]`, model order), for inspection and tests. */
  get backgroundSet(): FloatRows {
    return this.background;
  }

  /**
   * Runs `rows` rows of `input` and explains each one.
   * @throws AppError 400 over {@link MAX_EXPLAIN_ROWS} rows
   */
  async explain(input: FloatRows, rows: number): Promise<Explanations> {
    checkExplainRows(rows);
    // A copy goes to the runtime: the rows are read again below to build the synthetic rows.
    const outputs = await this.model.runtime.run(input.slice(0, rows * this.f), rows);
    const columns = new Int32Array(rows);
    const predicted = new Float64Array(rows);
    const baseValues = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      columns[i] = predictedColumn(outputs, i);
      predicted[i] = outputAt(outputs, i, columns[i]!);
      baseValues[i] = this.base[columns[i]!]!;
    }
    const rowsView = { input, columns, predicted, baseValues, rows };
    const contributions = this.f > EXACT_MAX_FEATURES ? await this.sampled(rowsView) : await this.exact(rowsView);
    return { outputs, contributions, baseValues };
  }

  /** `"contributions":{...},"base_value":...` of row `row`, a JSON fragment. */
  json(ex: Explanations, row: number): string {
    const f = this.f;
    const c = ex.contributions;
    let s = '"contributions":{';
    for (let j = 0; j < f; j++) s += (j === 0 ? '' : ',') + this.keys[j]! + num(c[row * f + j]!);
    return `${s}},"base_value":${num(ex.baseValues[row]!)}`;
  }

  /**
   * Exact Shapley values: `v(S)` for every coalition `S` (a bit mask over features), then
   * `phi_j = sum over S without j of w(|S|) * (v(S + j) - v(S))`. `v({})` is the base value and
   * `v(all)` the prediction, so neither needs a run.
   */
  private async exact(r: ExplainedRows): Promise<Float64Array> {
    const f = this.f;
    const k = this.backgroundRows;
    const full = (1 << f) - 1;
    const masks = Math.max(0, full - 1);
    const v = new Float64Array(r.rows * (full + 1));
    for (let i = 0; i < r.rows; i++) {
      v[i * (full + 1)] = r.baseValues[i]!;
      v[i * (full + 1) + full] = r.predicted[i]!;
    }
    await this.runUnits(
      r.rows * masks,
      k,
      (u, buf, at) => {
        const i = Math.floor(u / masks);
        const mask = (u % masks) + 1;
        for (let b = 0; b < k; b++) this.writeMixed(buf, at + b, b, r.input, i, (j) => (mask & (1 << j)) !== 0);
      },
      (u, out, at) => {
        const i = Math.floor(u / masks);
        let sum = 0;
        for (let b = 0; b < k; b++) sum += outputAt(out, at + b, r.columns[i]!);
        v[i * (full + 1) + (u % masks) + 1] = sum / k;
      },
    );
    const weights = shapleyWeights(f);
    const sizes = new Uint8Array(full + 1);
    for (let m = 1; m <= full; m++) sizes[m] = sizes[m >> 1]! + (m & 1);
    const phi = new Float64Array(r.rows * f);
    for (let i = 0; i < r.rows; i++) {
      const vi = i * (full + 1);
      for (let m = 0; m < full; m++) {
        const w = weights[sizes[m]!]!;
        for (let j = 0; j < f; j++) {
          const bit = 1 << j;
          if ((m & bit) === 0) phi[i * f + j]! += w * (v[vi + (m | bit)]! - v[vi + m]!);
        }
      }
    }
    return phi;
  }

  /**
   * Permutation sampling: for each sampled order and background row, start from the background row
   * and switch the features to the explained row's values one at a time in that order; each
   * feature is credited with the change its switch made. Per walk the credits telescope to
   * `f(x) - f(b)`, so the averages add up to `prediction - base_value` exactly.
   */
  private async sampled(r: ExplainedRows): Promise<Float64Array> {
    const f = this.f;
    const k = this.backgroundRows;
    const perms = this.permutations;
    const walks = perms.length * k;
    const phi = new Float64Array(r.rows * f);
    // Each walk runs the f - 1 intermediate rows; its first row is the background row and its last the explained row.
    await this.runUnits(
      r.rows * walks,
      f - 1,
      (u, buf, at) => {
        const i = Math.floor(u / walks);
        const perm = perms[Math.floor((u % walks) / k)]!;
        // Row s = row s - 1 with one more feature switched (row -1 = background row u % k).
        buf.set(this.background.subarray((u % k) * f, (u % k + 1) * f), at * f);
        for (let s = 0; s < f - 1; s++) {
          const row = (at + s) * f;
          if (s > 0) buf.copyWithin(row, row - f, row);
          buf[row + perm[s]!] = r.input[i * f + perm[s]!]!;
        }
      },
      (u, out, at) => {
        const i = Math.floor(u / walks);
        const perm = perms[Math.floor((u % walks) / k)]!;
        const column = r.columns[i]!;
        let previous = this.backgroundOut[(u % k) * this.width + column]!;
        for (let s = 0; s < f - 1; s++) {
          const current = outputAt(out, at + s, column);
          phi[i * f + perm[s]!]! += current - previous;
          previous = current;
        }
        phi[i * f + perm[f - 1]!]! += r.predicted[i]! - previous;
      },
    );
    for (let n = 0; n < phi.length; n++) phi[n]! /= walks;
    return phi;
  }

  /** Row `at` of `buf`: background row `b` with the features `fromInput` selects taken from row `i` of `input`. */
  private writeMixed(buf: FloatRows, at: number, b: number, input: FloatRows, i: number, fromInput: (j: number) => boolean): void {
    const f = this.f;
    buf.set(this.background.subarray(b * f, (b + 1) * f), at * f);
    for (let j = 0; j < f; j++) if (fromInput(j)) buf[at * f + j] = input[i * f + j]!;
  }

  /**
   * Evaluates `units` groups of `rowsPerUnit` synthetic rows in as few runtime calls as the size
   * bounds allow: `write` fills a unit's rows, `read` consumes its outputs.
   */
  private async runUnits(
    units: number,
    rowsPerUnit: number,
    write: (unit: number, buf: FloatRows, atRow: number) => void,
    read: (unit: number, out: RawOutputs, atRow: number) => void,
  ): Promise<void> {
    if (units === 0 || rowsPerUnit === 0) return;
    const rowsPerRun = Math.min(MAX_RUN_ROWS, Math.floor(MAX_RUN_VALUES / this.f));
    const unitsPerRun = Math.max(1, Math.floor(rowsPerRun / rowsPerUnit));
    for (let start = 0; start < units; start += unitsPerRun) {
      const n = Math.min(unitsPerRun, units - start);
      // A fresh buffer per call: the runtime may hand the buffer to another thread.
      const buf = this.model.allocRows(n * rowsPerUnit);
      for (let u = 0; u < n; u++) write(start + u, buf, u * rowsPerUnit);
      const out = await this.model.runtime.run(buf, n * rowsPerUnit);
      for (let u = 0; u < n; u++) read(start + u, out, u * rowsPerUnit);
    }
  }
}

interface ExplainedRows {
  readonly input: FloatRows;
  readonly rows: number;
  /** Explained output column per row. */
  readonly columns: Int32Array;
  /** The explained output per row. */
  readonly predicted: Float64Array;
  readonly baseValues: Float64Array;
}

/** {@link PERMUTATION_PAIRS} seeded random feature orders, each followed by its reverse. */
function samplePermutations(f: number): Int32Array[] {
  const rng = createRng(SEED + f);
  const out: Int32Array[] = [];
  for (let p = 0; p < PERMUTATION_PAIRS; p++) {
    const perm = new Int32Array(f);
    for (let j = 0; j < f; j++) perm[j] = j;
    rng.shuffleInPlace(perm);
    out.push(perm, perm.slice().reverse());
  }
  return out;
}

/**
 * One {@link Explainer} per loaded model, built lazily on its first explanation (reference fetch
 * and one background run) and kept for the model's lifetime. Failures are not kept, so a reference
 * added later is picked up.
 */
export class ExplainerCache {
  private readonly explainers = new WeakMap<ExplainableModel, Promise<Explainer>>();

  /**
   * @param loadReference the version's training reference, `undefined` when it has none
   */
  constructor(private readonly loadReference: (model: ExplainableModel) => Promise<unknown>) {}

  /**
   * Explains `rows` rows of `input` with `model`.
   * @throws AppError 400 for too many rows, a model without a single score, or no training reference
   */
  async explain(model: ExplainableModel, input: FloatRows, rows: number): Promise<{ explainer: Explainer; explanations: Explanations }> {
    checkExplainRows(rows);
    checkExplainable(model);
    const explainer = await this.get(model);
    return { explainer, explanations: await explainer.explain(input, rows) };
  }

  private get(model: ExplainableModel): Promise<Explainer> {
    let p = this.explainers.get(model);
    if (p === undefined) {
      p = this.create(model);
      this.explainers.set(model, p);
      void p.catch(() => this.explainers.delete(model));
    }
    return p;
  }

  private async create(model: ExplainableModel): Promise<Explainer> {
    const reference = await this.loadReference(model);
    if (reference === undefined || reference === null) {
      const { name, version } = model.identity;
      throw explainError(
        `explanations need the training reference (reference.json) of the model version; model '${name}' version ${version} has none. ` +
          'Versions trained by modelplane have one; uploaded models and MODEL_PATH files do not',
      );
    }
    return Explainer.create(model, reference);
  }
}
