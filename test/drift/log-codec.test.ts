/**
 * Logged rows read back: a whole window decoded at once (`decodeRows`, `liveFromLog`) gives what
 * decoding row by row gives, malformed rows included, for both element types.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { liveFromLog } from '../../src/drift/drift.service.ts';
import { decodeRow, decodeRows, encodeRow, type LogSchema } from '../../src/drift/log-codec.ts';
import type { DriftReference } from '../../src/drift/report.ts';
import { categoricalReference, numericReference } from '../../src/training/pipeline-reference.ts';

/** Stored rows of `f` values each, with rows of the wrong width and a row that is not base64. */
function storedRows(input: Float32Array | Float64Array, rows: number, f: number): string[] {
  const texts = Array.from({ length: rows }, (_, r) => encodeRow(input, r, f));
  const wider = input instanceof Float32Array ? new Float32Array(f + 1).fill(3) : new Float64Array(f + 1).fill(3);
  texts.push(encodeRow(wider, 0, f + 1), encodeRow(input, 0, f - 1), 'not a row', '', texts[0]!);
  return texts;
}

describe('logged rows decoded as a window', { timeout: 60_000 }, () => {
  for (const [elementType, f] of [['float32', 1], ['float32', 2], ['float32', 3], ['float64', 2], ['float64', 5]] as const) {
    test(`${elementType} rows of ${f} values: the window matrix equals the rows decoded one by one`, () => {
      const rows = 7;
      const input = elementType === 'float32' ? new Float32Array(rows * f) : new Float64Array(rows * f);
      for (let k = 0; k < input.length; k++) input[k] = k % 4 === 3 ? Number.NaN : (k - 5) / 3;
      const schema: LogSchema = { elementType, features: Array.from({ length: f }, (_, j) => `x${j}`), categories: new Array<null>(f).fill(null) };
      const texts = storedRows(input, rows, f);
      const matrix = decodeRows(schema, texts);
      assert.equal(matrix.length, texts.length * f);
      assert.equal(matrix.BYTES_PER_ELEMENT, elementType === 'float32' ? 4 : 8);
      texts.forEach((text, i) => assert.deepEqual(Array.from(matrix.subarray(i * f, (i + 1) * f)), Array.from(decodeRow(schema, text)), `row ${i}`));
      // The malformed rows are missing values, the well-formed copy of row 0 is row 0.
      for (let i = rows; i < rows + 4; i++) assert.ok(Array.from(matrix.subarray(i * f, (i + 1) * f)).every(Number.isNaN), `row ${i}`);
      assert.deepEqual(Array.from(matrix.subarray((rows + 4) * f)), Array.from(input.subarray(0, f)));
    });
  }

  test('live columns: numbers, labels by code, a feature the schema lacks, rows in stored order', () => {
    const schema: LogSchema = { elementType: 'float32', features: ['size', 'color'], categories: [null, ['red', 'blue']] };
    const input = Float32Array.of(1.5, 1, 2.5, 0, Number.NaN, 7, 4, Number.NaN);
    const texts = [...Array.from({ length: 4 }, (_, r) => encodeRow(input, r, 2)), 'broken'];
    const reference: DriftReference = {
      rows: 3,
      feature_names: ['color', 'size', 'weight'],
      features: { size: numericReference(Float64Array.of(1, 2, 3)), color: categoricalReference(Float64Array.of(0, 1, 0), ['red', 'blue']), weight: numericReference(Float64Array.of(1, 2, 3)) },
    };
    const live = liveFromLog(reference, schema, texts);
    assert.deepEqual([...live.keys()], ['color', 'size', 'weight']);
    assert.deepEqual(live.get('color'), { type: 'categorical', values: ['blue', 'red', null, null, null] });
    const size = live.get('size')!;
    assert.equal(size.type, 'numeric');
    assert.deepEqual(Array.from(size.values), [1.5, 2.5, Number.NaN, 4, Number.NaN]);
    assert.deepEqual(Array.from(live.get('weight')!.values as Float64Array), new Array<number>(5).fill(Number.NaN));
  });
});
