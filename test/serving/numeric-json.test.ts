/**
 * The numeric body reader against `JSON.parse`: it never takes text `JSON.parse` rejects, every
 * body it takes means exactly what `JSON.parse` reads from it, and the input adapters answer (or
 * fail) the same whichever form they are given.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRng } from '../../src/util/random.ts';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import { readBatch, readSingleRow } from '../../src/serving/input.ts';
import { LoadedModel } from '../../src/serving/loaded-model.ts';
import { NumericBody, NumericJsonReader } from '../../src/serving/numeric-json.ts';
import { createRuntime } from '../../src/serving/runtime.ts';
import { onnxRuntime } from '../../src/onnx/runtime.ts';
import { categoricalRegressor, linearClassifier } from './harness.ts';

/** What `JSON.parse` would give for the body, rebuilt from the reader's numbers and keys. */
function rebuild(body: NumericBody): unknown {
  const rows: unknown[] = [];
  let start = 0;
  for (let r = 0; r < body.rows; r++) {
    const end = body.rowEnds[r]!;
    if (body.positional) rows.push(Array.from(body.values.subarray(start, end)));
    else {
      const row: Record<string, number> = {};
      for (let v = start; v < end; v++) row[body.keys[body.keyIds === undefined ? v - start : body.keyIds[v]!]!] = body.values[v]!;
      rows.push(row);
    }
    start = end;
  }
  if (body.field === undefined) return rows[0];
  return { [body.field]: body.nested ? rows : rows[0] };
}

function parsed(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** Asserts the reader agrees with JSON.parse on `text`; returns whether it took the body. */
function agrees(reader: NumericJsonReader, text: string): boolean {
  const body = reader.read(Buffer.from(text, 'utf8'));
  if (body === undefined) return false;
  const expected = parsed(text);
  assert.ok(expected.ok, `the reader took text JSON.parse rejects: ${JSON.stringify(text)}`);
  assert.deepStrictEqual(rebuild(body), expected.value, `different meaning for ${JSON.stringify(text)}`);
  return true;
}

const NUMBERS = [
  '0', '-0', '1', '-1', '0.5', '-0.0', '12.34', '1e3', '1E3', '1e+3', '1e-3', '1.5e22', '1.5e-22', '123456789012345', '1234567890123456',
  '12345678901234567890', '0.1', '0.30000000000000004', '9007199254740993', '1.7976931348623157e308', '1e309', '-1e400', '5e-324', '2e-324',
  '1e-400', '0.000001234567', '123.456e-5', '4.35', '3.4028235677973366e38', '3.4028236e38', '0e0', '0.0e-0', '1e00000000000000000001',
  '100000000000000000000000', '0.1e23', '1.000000000000000000000000000001',
];

const INVALID = [
  '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":+1}', '{"a":1e}', '{"a":1e+}', '{"a":-}', '{"a":-01}', '{"a":0x1}', '{"a":Infinity}', '{"a":NaN}',
  '{"a":1,}', '{"a":1}x', '{"a":1}}', '{"a" 1}', '{"a":1 "b":2}', '{"a\u0001":1}', '{"features":[1,2,]}', '{"features":[1,2}',
  '{"records":[[1],]}', '{"records":[[1]],}', '{"records":[{"a":1},]}', '{"records":[{"a":1}', '{"a":1', '{"a":', '{"a"', '{"', '{', '',
  '{"a":1,"b"}', '{"a":1,"b":}', '{"records":[[1] [2]]}', '{"a":- 1}', '{"a":1e5.5}', '\u00a0{"a":1}', '{"a":1}\u00a0', "{'a':1}", '{a:1}',
];

describe('numeric JSON reader', () => {
  test('numbers are the doubles JSON.parse gives, in every notation', () => {
    const reader = new NumericJsonReader();
    for (const n of NUMBERS) {
      const body = reader.read(Buffer.from(`{"x": ${n}, "y":${n}}`));
      assert.ok(body !== undefined, n);
      const expected = JSON.parse(`[${n}]`)[0] as number;
      assert.ok(Object.is(body.values[0], expected), `${n}: ${body.values[0]} vs ${expected}`);
      assert.ok(Object.is(body.values[1], expected), `${n}: ${body.values[1]} vs ${expected}`);
    }
    const rng = createRng(1);
    const random = (): number => rng.next();
    for (let k = 0; k < 20000; k++) {
      const x = (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20);
      for (const text of [String(x), x.toFixed(Math.floor(random() * 12)), x.toExponential(Math.floor(random() * 18)), x.toPrecision(1 + Math.floor(random() * 20))]) {
        const body = reader.read(Buffer.from(`{"v":${text}}`));
        assert.ok(body !== undefined && Object.is(body.values[0], JSON.parse(text)), text);
      }
    }
  });

  test('text JSON.parse rejects is never taken', () => {
    const reader = new NumericJsonReader();
    for (const text of INVALID) {
      assert.equal(parsed(text).ok, false, `fixture should be invalid JSON: ${text}`);
      assert.equal(reader.read(Buffer.from(text, 'utf8')), undefined, text);
    }
  });

  test('shapes it takes, and shapes it leaves to JSON.parse', () => {
    const reader = new NumericJsonReader();
    const taken = [
      '{"a": 1, "b": 2}',
      ' \t\r\n{ "a" : 1 , "b" : -2.5e3 } \n',
      '{"features": [1, 2, 3]}',
      '{"features": {"a": 1, "b": 2}}',
      '{"records": [{"a": 1, "b": 2}, {"b": 3, "a": 4}, {"a": 5, "c": 6, "b": 7}]}',
      '{"features_list": [[1, 2], [3, 4, 5], [6]]}',
      '{"instances": [{"a": 1}, {"a": 2, "a": 3}]}',
      '{"mean radius": 1, "é": 2, "名前": 3, "a/b~c": 4}',
      '{"records": [{"x": 1}]}',
      '{"records": [1, 2]}',
    ];
    for (const text of taken) assert.ok(agrees(reader, text), `should be taken: ${text}`);
    const left = [
      '{}', '[]', '[1, 2]', '1', '"a"', 'null', '{"a": "1"}', '{"a": null}', '{"a": true}', '{"a": 1, "b": [1]}', '{"features": []}',
      '{"records": []}', '{"records": [[1], {"a": 1}]}', '{"records": [{"a": 1}, [1]]}', '{"records": [[[1]]]}', '{"records": [{}]}',
      '{"features": [1], "model": 2}', '{"a\\u0062": 1}', '{"a": {"b": 1}, "c": 2}', '{"features": [[1], 2]}',
      '{"features": [1, [2]]}', '\ufeff{"a": 1}',
    ];
    for (const text of left) assert.equal(reader.read(Buffer.from(text, 'utf8')), undefined, `should be left: ${text}`);
  });

  test('large bodies reuse a released number array, and never one still in use', () => {
    const reader = new NumericJsonReader();
    const body = (k: number): string => JSON.stringify({ features_list: Array.from({ length: 200 }, (_, i) => Array.from({ length: 30 }, (_, j) => k * 1e4 + i * 30 + j)) });
    const first = reader.read(Buffer.from(body(1)))!;
    const second = reader.read(Buffer.from(body(2)))!;
    assert.notEqual(first.values.buffer, second.values.buffer, 'unreleased arrays are not shared');
    assert.deepStrictEqual(rebuild(first), JSON.parse(body(1)));
    first.release();
    first.release();
    const third = reader.read(Buffer.from(body(3)))!;
    assert.equal(third.values.buffer, first.values.buffer, 'the released array is reused');
    assert.deepStrictEqual(rebuild(second), JSON.parse(body(2)));
    assert.deepStrictEqual(rebuild(third), JSON.parse(body(3)));
    const fourth = reader.read(Buffer.from(body(4)))!;
    assert.notEqual(fourth.values.buffer, third.values.buffer, 'a released array is handed out once');
  });

  test('random bodies and random damage: whatever is taken means what JSON.parse reads', () => {
    const reader = new NumericJsonReader();
    const rng = createRng(7);
    const random = (): number => rng.next();
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const names = ['a', 'b', 'c', 'mean radius', 'é', 'features', 'x1', 'x10'];
    const num = (): string => pick(NUMBERS.filter((n) => !n.includes('e4') && Math.abs(Number(n)) !== Infinity));
    const objectRow = (): string => {
      const keys = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(names));
      return `{${keys.map((k) => `${JSON.stringify(k)}:${num()}`).join(',')}}`;
    };
    const arrayRow = (): string => `[${Array.from({ length: 1 + Math.floor(random() * 4) }, num).join(', ')}]`;
    const generators = [
      objectRow,
      () => `{"features": ${random() < 0.5 ? arrayRow() : objectRow()}}`,
      () => `{"${pick(['records', 'features_list', 'instances'])}": [${Array.from({ length: 1 + Math.floor(random() * 5) }, random() < 0.5 ? arrayRow : objectRow).join(',')}]}`,
      () => `{"records": [${Array.from({ length: 1 + Math.floor(random() * 5) }, () => (random() < 0.5 ? arrayRow() : objectRow())).join(',')}]}`,
    ];
    let taken = 0;
    let damagedTaken = 0;
    for (let k = 0; k < 20000; k++) {
      const text = pick(generators)();
      if (agrees(reader, text)) taken++;
      // Damage: delete, insert or replace one character.
      const at = Math.floor(random() * text.length);
      const ch = pick(['', ',', '"', ':', '[', ']', '{', '}', '-', '.', 'e', '0', '1', ' ', '\\', 'x']);
      const damaged = random() < 0.33 ? text.slice(0, at) + text.slice(at + 1) : random() < 0.5 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + ch + text.slice(at + 1);
      if (agrees(reader, damaged)) damagedTaken++;
    }
    assert.ok(taken > 10000, `most generated bodies are taken (${taken})`);
    assert.ok(damagedTaken > 100, `some damaged bodies are still valid and taken (${damagedTaken})`);
  });
});

async function load(bytes: Uint8Array): Promise<LoadedModel> {
  const prepared = prepareForServing(bytes);
  const runtime = await createRuntime(onnxRuntime, prepared.bytes, prepared.signature, { intraOpThreads: 1 });
  const identity = { name: 'm', version: '1', stage: null, aliases: [], metrics: {}, runId: null, createdAt: null, source: 'm', cacheTag: 'm' };
  return new LoadedModel(identity, prepared.signature, runtime, { maxBatchRows: 100, maxQueueRows: 1000, maxQueueDelayUs: 0 });
}

type Outcome = { rows: number[] } | { error: { status: number; message: string; details: unknown } };

function outcome(fn: () => Float32Array | Float64Array): Outcome {
  try {
    return { rows: Array.from(fn()) };
  } catch (err) {
    const e = err as { status: number; message: string; details: unknown };
    return { error: { status: e.status, message: e.message, details: e.details } };
  }
}

describe('input adapters: numeric bodies answer exactly as parsed JSON', () => {
  test('single rows and batches, valid and invalid, numeric and categorical models', async (t) => {
    const numeric = await load(linearClassifier(['a', 'b', 'c'], [0, 1], [[1, 2, 3]]));
    const categorical = await load(categoricalRegressor());
    const featuresNamed = await load(linearClassifier(['features', 'b'], [0, 1], [[1, 2]]));
    t.after(async () => {
      for (const m of [numeric, categorical, featuresNamed]) await m.runtime.release();
    });
    const reader = new NumericJsonReader();
    const bodies = [
      '{"a": 1, "b": 2, "c": 3}', '{"c": 3, "b": 2, "a": 1}', '{"a": 1, "b": 2}', '{"a": 1, "b": 2, "c": 3, "d": 4}', '{"a": 1, "b": 2, "b": 3}',
      '{"a": 1, "b": 2, "c": 1e39}', '{"a": 1, "b": 2, "c": 1e400}', '{"features": [1, 2, 3]}', '{"features": [1, 2]}', '{"features": {"a": 1, "b": 2, "c": 3}}',
      '{"features": {"a": 1}}', '{"features": 1, "b": 2}', '{"features": 1, "b": 2, "c": 3}', '{"colour": 1, "size": 2}', '{"colour": 0, "size": 2}',
      '{"size": 2, "colour": 2}', '{"records": [{"a": 1, "b": 2, "c": 3}, {"c": 1, "a": 2, "b": 3}]}', '{"records": [{"a": 1, "b": 2, "c": 3}, {"a": 1}]}',
      '{"records": [[1, 2, 3], [4, 5, 6]]}', '{"features_list": [[1, 2, 3], [4, 5]]}', '{"instances": [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "c": 3, "e": 1}]}',
      '{"records": [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "b": 3}]}', '{"records": [[1, 2, 1e39]]}', '{"features_list": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}',
      '{"records": [[1, 2], [3, 4]]}', '{"features_list": [{"colour": 2, "size": 1}]}', '{"features": [1, 2], "b": 1}', '{"features": [1, 2]}',
    ];
    for (const model of [numeric, categorical, featuresNamed]) {
      for (const text of bodies) {
        const plain = JSON.parse(text) as unknown;
        // A body is read once (the adapters release it), so each call gets its own.
        const body = (): unknown => reader.read(Buffer.from(text)) ?? plain;
        assert.deepStrictEqual(outcome(() => readSingleRow(body(), model)), outcome(() => readSingleRow(plain, model)), `single ${text}`);
        for (const maxRows of [2, 100]) {
          const batch = (b: () => unknown) => () => readBatch(b(), model, maxRows).input;
          assert.deepStrictEqual(outcome(batch(body)), outcome(batch(() => plain)), `batch ${text} (max ${maxRows})`);
        }
      }
    }
    // Well-formed bodies are read without JSON.parse (the fallback is what parse() is for); a spy counts the fallbacks.
    const parse = t.mock.method(NumericBody.prototype, 'parse');
    readSingleRow(reader.read(Buffer.from('{"c": 3, "a": 1, "b": 2}')), numeric);
    readSingleRow(reader.read(Buffer.from('{"features": [1, 2, 3]}')), numeric);
    readBatch(reader.read(Buffer.from('{"records": [{"a": 1, "b": 2, "c": 3}, {"c": 1, "b": 2, "a": 3}]}')), numeric, 10);
    readBatch(reader.read(Buffer.from('{"features_list": [[1, 2, 3], [4, 5, 6]]}')), numeric, 10);
    readSingleRow(reader.read(Buffer.from('{"colour": 1, "size": 2}')), categorical);
    assert.equal(parse.mock.callCount(), 0);
    assert.throws(() => readSingleRow(reader.read(Buffer.from('{"a": 1, "b": 2}')), numeric), /missing features: c/);
    assert.equal(parse.mock.callCount(), 1);
    parse.mock.restore();

    // The same shape again and again (the reader's key template) and a change of shape in between.
    for (const text of ['{"a": 1, "b": 2, "c": 3}', '{"a": 4, "b": 5, "c": 6}', '{"b": 1, "a": 2, "c": 3}', '{"a": 7, "b": 8, "c": 9}', '{"a": 7, "b": 8}', '{"a": 7, "b": 8, "c": 0}']) {
      const body = reader.read(Buffer.from(text));
      assert.ok(body instanceof NumericBody);
      assert.deepStrictEqual(outcome(() => readSingleRow(body, numeric)), outcome(() => readSingleRow(JSON.parse(text), numeric)), text);
    }
  });
});
