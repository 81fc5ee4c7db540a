/**
 * The export check of a training job: the ONNX file must answer like the in-memory model before
 * it may be registered. Both see the same inputs: the raw rows rounded to float32, which is what
 * the served model receives (the exporter rounds tree thresholds down to float32 so that
 * comparisons agree exactly on such inputs).
 */
import { INPUT_NAME, PROBABILITY_OUTPUT, VALUE_OUTPUT } from '../onnx/index.ts';
import { transform } from '../ml/preprocess.ts';
import { predictScores } from '../ml/predict.ts';
import type { FittedModel, Matrix, Preprocessing } from '../ml/types.ts';
import type { OnnxRuntime } from '../onnx/runtime.ts';

/** Largest allowed absolute difference of a class probability. */
export const PROBABILITY_TOLERANCE = 1e-5;
/** Largest allowed relative difference of a regression value (see {@link checkExport}). */
export const VALUE_TOLERANCE = 1e-5;
/** Rows per onnxruntime call, to bound the size of one input tensor. */
const CHUNK_ROWS = 8192;

/** Outcome of {@link checkExport}. */
export interface ExportCheck {
  readonly ok: boolean;
  readonly rows: number;
  /** Largest absolute difference seen (probabilities or values). */
  readonly maxAbsDiff: number;
  /** Largest difference relative to the tolerance's scale (1 means exactly at the tolerance). */
  readonly worstRatio: number;
  /** First disagreeing row and output, for the error message. */
  readonly firstMismatch?: { readonly row: number; readonly output: number; readonly onnx: number; readonly expected: number };
}

/**
 * What the exported model must answer on the check's rows: the in-memory model's scores on the raw
 * rows rounded to float32, and those rows as float32 (onnxruntime's input). Computed while the
 * model is alive; {@link compareInRuntime} then needs neither the model nor the training data, so
 * a pipeline can let them go before onnxruntime loads the file.
 */
export interface ExpectedScores {
  readonly classification: boolean;
  readonly rows: number;
  readonly cols: number;
  /** The check's input rows, float32, row-major. */
  readonly input: Float32Array;
  /** Probabilities (classification) or values, `rows x width`, row-major. */
  readonly scores: Float64Array;
}

/** The in-memory model's answers on `raw` (rows of raw model input) rounded to float32. */
export function expectedScores(model: FittedModel, pre: Preprocessing, raw: Matrix): ExpectedScores {
  const f32 = Float32Array.from(raw.values);
  const rounded: Matrix = { rows: raw.rows, cols: raw.cols, values: Float64Array.from(f32) };
  const expected = predictScores(model, transform(pre, rounded));
  const classification = model.task === 'classification';
  const want = classification ? expected.probabilities : expected.values;
  if (want === undefined) throw new Error('the in-memory model returned no scores');
  return { classification, rows: raw.rows, cols: raw.cols, input: f32, scores: want };
}

/**
 * Runs the exported model on `raw` (rows of raw model input, float32-rounded here) and compares
 * with `predictScores` of the in-memory model on the same rounded rows: {@link expectedScores},
 * then {@link compareInRuntime}.
 */
export async function checkExport(onnx: OnnxRuntime, bytes: Uint8Array, model: FittedModel, pre: Preprocessing, raw: Matrix): Promise<ExportCheck> {
  return compareInRuntime(onnx, bytes, expectedScores(model, pre, raw));
}

/**
 * Loads `bytes` in onnxruntime, runs it on the expected scores' rows and compares. Classification
 * compares every probability (absolute difference <= 1e-5); regression compares values relative to
 * `max(|expected|, scale)`, where `scale` is the root mean square of the expected values, so that
 * predictions near zero are not held to an impossible relative bound by float32 arithmetic.
 * Two NaNs agree. The session is released before this returns.
 */
export async function compareInRuntime(onnx: OnnxRuntime, bytes: Uint8Array, expected: ExpectedScores): Promise<ExportCheck> {
  const { classification, rows, cols, input: f32, scores: want } = expected;
  const width = rows === 0 ? 0 : want.length / rows;

  const { session } = await onnx.load(bytes, { intraOpThreads: 1 });
  const got = new Float64Array(want.length);
  try {
    const output = classification ? PROBABILITY_OUTPUT : VALUE_OUTPUT;
    for (let start = 0; start < rows; start += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, rows - start);
      const result = await session.run(INPUT_NAME, f32.subarray(start * cols, (start + n) * cols), [n, cols], [output]);
      const data = result[output]?.data;
      if (!(data instanceof Float32Array) || data.length !== n * width) {
        throw new Error(`output '${output}' has ${data?.length ?? 0} values for ${n} rows x ${width}`);
      }
      got.set(data, start * width);
    }
  } finally {
    await session.release().catch(() => undefined);
  }

  let scale = 0;
  if (!classification) {
    let ss = 0;
    let count = 0;
    for (const v of want) {
      if (Number.isFinite(v)) {
        ss += v * v;
        count++;
      }
    }
    scale = count === 0 ? 1 : Math.sqrt(ss / count);
  }
  let maxAbsDiff = 0;
  let worstRatio = 0;
  let firstMismatch: ExportCheck['firstMismatch'];
  for (let i = 0; i < want.length; i++) {
    const e = want[i]!;
    const g = got[i]!;
    let ratio: number;
    let diff: number;
    if (Number.isNaN(e) || Number.isNaN(g)) {
      diff = Number.isNaN(e) && Number.isNaN(g) ? 0 : Number.POSITIVE_INFINITY;
      ratio = diff;
    } else {
      diff = Math.abs(g - e);
      const bound = classification ? PROBABILITY_TOLERANCE : VALUE_TOLERANCE * Math.max(Math.abs(e), scale, Number.MIN_VALUE);
      ratio = diff / bound;
    }
    if (diff > maxAbsDiff) maxAbsDiff = diff;
    if (ratio > worstRatio) worstRatio = ratio;
    if (ratio > 1 && firstMismatch === undefined) {
      firstMismatch = { row: Math.floor(i / width), output: i % width, onnx: g, expected: e };
    }
  }
  return { ok: firstMismatch === undefined, rows, maxAbsDiff, worstRatio, ...(firstMismatch === undefined ? {} : { firstMismatch }) };
}
