/**
 * Logged rows read back: a whole window copied out of blocks at once (`windowMatrix`,
 * `liveFromLog`) gives what decoding row by row gives, rows of another width included, for both
 * element types, whether a block's rows are all of the schema's width or not.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { liveFromLog } from '../../src/drift/drift.service.ts';
import { encodeRows, LogBlock } from '../../src/drift/log-block.ts';
import { decodeRow, windowMatrix, type LogSchema, type WindowRange } from '../../src/drift/log-codec.ts';
import type { DriftReference } from '../../src/drift/report.ts';
import { categoricalReference, numericReference } from '../../src/training/pipeline-reference.ts';

/** Row `r` of `input` (`f` values a row) as a block stores it. */
function rowBytes(input: Float32Array | Float64Array, r: number, f: number): Uint8Array {
  const n = input.BYTES_PER_ELEMENT * f;
  return new Uint8Array(input.buffer, input.byteOffset + r * n, n);
}

/** Blocks of these input rows, `perBlock` rows each. */
function blocksOf(inputs: readonly Uint8Array[], perBlock: number): LogBlock[] {
  const out: LogBlock[] = [];
  for (let k = 0; k < inputs.length; k += perBlock) {
    const rows = inputs.slice(k, k + perBlock).map((bytes, i) => ({ at: k + i, latencyMs: 1, kind: 'single', requestId: null, output: '{}', inputs: bytes }));
    out.push(new LogBlock(encodeRows('m', '1', rows).data));
  }
  return out;
}

/** Every row of the blocks as one range each block. */
const whole = (blocks: readonly LogBlock[]): WindowRange[] => blocks.map((block) => ({ block, from: 0, to: block.rows }));

/** Stored rows of `f` values each, then rows of the wrong width, an empty row and row 0 again. */
function storedRows(input: Float32Array | Float64Array, rows: number, f: number): Uint8Array[] {
  const texts = Array.from({ length: rows }, (_, r) => rowBytes(input, r, f));
  const wider = input instanceof Float32Array ? new Float32Array(f + 1).fill(3) : new Float64Array(f + 1).fill(3);
  texts.push(rowBytes(wider, 0, f + 1), rowBytes(input, 0, f - 1), new Uint8Array(3), new Uint8Array(0), texts[0]!);
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
      // Blocks of three rows: the first two all of the schema's width, the others not.
      const { matrix, rows: n } = windowMatrix(schema, whole(blocksOf(texts, 3)));
      assert.equal(n, texts.length);
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
    const texts = [...Array.from({ length: 4 }, (_, r) => rowBytes(input, r, 2)), new Uint8Array(5)];
    const reference: DriftReference = {
      rows: 3,
      feature_names: ['color', 'size', 'weight'],
      features: { size: numericReference(Float64Array.of(1, 2, 3)), color: categoricalReference(Float64Array.of(0, 1, 0), ['red', 'blue']), weight: numericReference(Float64Array.of(1, 2, 3)) },
    };
    const live = liveFromLog(reference, schema, whole(blocksOf(texts, 2)));
    assert.deepEqual([...live.keys()], ['color', 'size', 'weight']);
    assert.deepEqual(live.get('color'), { type: 'categorical', values: ['blue', 'red', null, null, null] });
    const size = live.get('size')!;
    assert.equal(size.type, 'numeric');
    assert.deepEqual(Array.from(size.values), [1.5, 2.5, Number.NaN, 4, Number.NaN]);
    assert.deepEqual(Array.from(live.get('weight')!.values as Float64Array), new Array<number>(5).fill(Number.NaN));
  });
});

describe('a window of parts of blocks', { timeout: 60_000 }, () => {
  test('ranges of rows are copied in order, whole blocks or not', () => {
    const schema: LogSchema = { elementType: 'float32', features: ['x', 'y'], categories: [null, null] };
    const input = Float32Array.from({ length: 20 }, (_, k) => k);
    const blocks = blocksOf(
      Array.from({ length: 10 }, (_, r) => rowBytes(input, r, 2)),
      4,
    );
    const { matrix, rows } = windowMatrix(schema, [
      { block: blocks[0]!, from: 3, to: 4 },
      { block: blocks[1]!, from: 0, to: 2 },
      { block: blocks[2]!, from: 1, to: 2 },
    ]);
    assert.equal(rows, 4);
    assert.deepEqual(Array.from(matrix), [6, 7, 8, 9, 10, 11, 18, 19]);
  });
});
