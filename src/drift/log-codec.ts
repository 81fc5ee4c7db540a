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

/**
 * Many stored rows at once, as one row-major matrix (`texts.length` rows of the schema's width):
 * every row decoded into one buffer, with no buffer or array per row (a drift window is ten
 * thousand rows and more). A row that is not a row of this schema's width is all `NaN`, as
 * {@link decodeRow} makes it.
 */
export function decodeRows(schema: LogSchema, texts: readonly string[]): Float32Array | Float64Array {
  const f = schema.features.length;
  const n = texts.length;
  const out = schema.elementType === 'float64' ? new Float64Array(n * f) : new Float32Array(n * f);
  const rowBytes = out.BYTES_PER_ELEMENT * f;
  const bytes = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < n; i++) {
    const text = texts[i]!;
    // The length check first: `write` stops at the row's end, so a longer row would fit silently.
    if (Buffer.byteLength(text, 'base64') !== rowBytes || bytes.write(text, i * rowBytes, rowBytes, 'base64') !== rowBytes) out.fill(Number.NaN, i * f, (i + 1) * f);
  }
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
