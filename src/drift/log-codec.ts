/**
 * How logged input rows are stored: the model's input row itself, base64 of its little-endian
 * float32 or float64 values (a copy on the write side, a decode on the read side, instead of a
 * number-to-text conversion per value and a JSON parse per row). The model version's schema
 * (feature names, category labels, element type) turns a row back into named values.
 */
import type { LoadedModel } from '../serving/loaded-model.ts';
import type { FloatRows } from '../serving/runtime.ts';
import type { PredictionLogSchemaTable } from './drift.repository.ts';

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

/** Row `r` of `input` (`f` values a row), as stored. */
export function encodeRow(input: FloatRows, r: number, f: number): string {
  const bytes = input.BYTES_PER_ELEMENT * f;
  return Buffer.from(input.buffer, input.byteOffset + r * bytes, bytes).toString('base64');
}

/** The values of a stored row (`NaN` where the text is not a row of this schema's width). */
export function decodeRow(schema: LogSchema, text: string): Float32Array | Float64Array {
  const f = schema.features.length;
  const out = schema.elementType === 'float64' ? new Float64Array(f) : new Float32Array(f);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== out.byteLength) return out.fill(Number.NaN);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** A stored row as named values: numbers (missing as `null`) and category labels. */
export function namedValues(schema: LogSchema, text: string): Record<string, number | string | null> {
  const values = decodeRow(schema, text);
  const out: Record<string, number | string | null> = {};
  schema.features.forEach((name, j) => {
    const v = values[j]!;
    const labels = schema.categories[j];
    out[name] = Number.isNaN(v) ? null : labels === null || labels === undefined ? v : (labels[v] ?? null);
  });
  return out;
}
