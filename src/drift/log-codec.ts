/**
 * How logged input rows are read: a block stores each row as the model took it, its little-endian
 * float32 or float64 values (a copy on the write side, a copy on the read side, instead of a
 * number-to-text conversion per value and a JSON parse per row). The model version's schema
 * (feature names, category labels, element type) turns a row back into named values.
 */
import type { LoadedModel } from '../serving/loaded-model.ts';
import type { PredictionLogSchemaTable } from './drift.repository.ts';
import type { LogBlock } from './log-block.ts';

/** A model version's logged-row schema, parsed. */
export interface LogSchema {
  readonly elementType: 'float32' | 'float64';
  readonly features: readonly string[];
  /** Per feature: `null` (numeric) or labels by code. */
  readonly categories: readonly (readonly string[] | null)[];
}

/** The schema row of a loaded model. */
export function schemaOf(model: LoadedModel): Omit<PredictionLogSchemaTable, 'model' | 'version'> {
  const categories = model.categoryCodes.map((codes) => {
    if (codes === null) return null;
    const labels: string[] = [];
    for (const [label, code] of codes) labels[code] = label;
    return labels;
  });
  return { element_type: model.double ? 'float64' : 'float32', features: JSON.stringify(model.featureNames), categories: JSON.stringify(categories) };
}

export function parseSchema(row: PredictionLogSchemaTable): LogSchema {
  return { elementType: row.element_type, features: JSON.parse(row.features) as string[], categories: JSON.parse(row.categories) as (string[] | null)[] };
}

/** The values of a stored input row (`NaN` where the bytes are not a row of this schema's width). */
export function decodeRow(schema: LogSchema, bytes: Uint8Array): Float32Array | Float64Array {
  const f = schema.features.length;
  const out = schema.elementType === 'float64' ? new Float64Array(f) : new Float32Array(f);
  if (bytes.byteLength !== out.byteLength) return out.fill(Number.NaN);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Rows `from` to `to` (exclusive) of a block: part of a drift window. */
export interface WindowRange {
  readonly block: LogBlock;
  readonly from: number;
  readonly to: number;
}

/**
 * The input rows of a window as one row-major matrix of the schema's width: each range's rows
 * copied in one piece when the block's rows all have the schema's width (as a model version's rows
 * do), row by row otherwise, where a row of another width is all `NaN` (as {@link decodeRow} makes
 * it). Resolves with the matrix and its row count.
 */
export function windowMatrix(schema: LogSchema, ranges: readonly WindowRange[]): { matrix: Float32Array | Float64Array; rows: number } {
  const f = schema.features.length;
  let n = 0;
  for (const r of ranges) n += r.to - r.from;
  const matrix = schema.elementType === 'float64' ? new Float64Array(n * f) : new Float32Array(n * f);
  const rowBytes = matrix.BYTES_PER_ELEMENT * f;
  const bytes = new Uint8Array(matrix.buffer, matrix.byteOffset, matrix.byteLength);
  let row = 0;
  for (const { block, from, to } of ranges) {
    if (block.uniformInputLength() === rowBytes) {
      bytes.set(block.inputs.subarray(from * rowBytes, to * rowBytes), row * rowBytes);
      row += to - from;
      continue;
    }
    for (let i = from; i < to; i++, row++) {
      const input = block.input(i);
      if (input.byteLength === rowBytes) bytes.set(input, row * rowBytes);
      else matrix.fill(Number.NaN, row * f, (row + 1) * f);
    }
  }
  return { matrix, rows: n };
}

/** A stored input row as named values: numbers (missing as `null`) and category labels. */
export function namedValues(schema: LogSchema, bytes: Uint8Array): Record<string, number | string | null> {
  const values = decodeRow(schema, bytes);
  const out: Record<string, number | string | null> = {};
  schema.features.forEach((name, j) => {
    const v = values[j]!;
    const labels = schema.categories[j];
    out[name] = Number.isNaN(v) ? null : labels === null || labels === undefined ? v : (labels[v] ?? null);
  });
  return out;
}
