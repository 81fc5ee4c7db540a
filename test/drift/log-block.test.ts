/**
 * The prediction log's blocks: rows buffered as typed arrays (`LogRows`) become blocks that decode
 * to exactly the rows appended (both element types, categorical codes, no request id, non-ASCII
 * answers), one block per model version, through growth, dropping and reuse; a block cut to its
 * newer rows; blocks that are not blocks of a known format are refused with the reason; a flush
 * the store refuses stores none of its blocks.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { insertBlocks } from '../../src/drift/drift.repository.ts';
import { LogRows } from '../../src/drift/log-batch.ts';
import { BLOCK_FORMAT, encodeRows, LogBlock, type EncodedBlock } from '../../src/drift/log-block.ts';
import type { ServedKind } from '../../src/serving/prediction.service.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { TEST_DATABASE_URL, dropSchema, storeBackends, uniqueSchema } from '../helper.ts';
import { storedRows } from './stored-rows.ts';

interface Row {
  label: number;
  kind: ServedKind;
  at: number;
  latency: number;
  requestId: string | null;
  output: string;
  input: Float32Array | Float64Array;
}

/** Labels 0 and 2 name the same model version (a reloaded model): their rows share a block. */
const LABELS = ['iris', '3', 'prices model', 'file', 'iris', '3'];

/** Rows of every shape: both element types, no request id, non-ASCII answers, long and short. */
function sampleRows(n: number, labels = 3): Row[] {
  const kinds: ServedKind[] = ['single', 'batch', 'invocations', 'explain', 'kserve'];
  return Array.from({ length: n }, (_, i) => {
    const f = 1 + (i % 7);
    const input = i % 3 === 0 ? new Float64Array(f) : new Float32Array(f);
    for (let k = 0; k < f; k++) input[k] = k === 2 ? Number.NaN : (i - k) / 7;
    return {
      label: i % labels,
      kind: kinds[i % kinds.length]!,
      at: 1_700_000_000_000 + i,
      latency: i / 1000,
      requestId: i % 4 === 1 ? null : `req-${i}-ü`,
      output: `"prediction":${i % 5 === 0 ? '"crème brûlée 日本 🎉"' : i},"probability":[${'0.5,'.repeat(i % 40)}0.5]`,
      input,
    };
  });
}

function appendAll(buffer: LogRows, rows: readonly Row[]): void {
  for (const r of rows) {
    // The input sits inside a larger array, as a model's reused input buffer does.
    const padded = r.input instanceof Float64Array ? new Float64Array(r.input.length + 3) : new Float32Array(r.input.length + 3);
    padded.set(r.input, 2);
    buffer.append(r.label, r.kind, r.at, r.latency, r.requestId, r.output, padded, 2, r.input.length);
  }
}

const bytesOf = (input: Float32Array | Float64Array): number[] => Array.from(new Uint8Array(input.buffer, input.byteOffset, input.byteLength));

/** What the blocks hold, row by row: model, version and every field, in block order. */
function decoded(blocks: readonly EncodedBlock[]): unknown[] {
  return blocks.flatMap((b) => {
    // Blocks as the store hands them back: a copy at an odd offset of a larger buffer.
    const copy = new Uint8Array(b.data.byteLength + 3);
    copy.set(b.data, 3);
    const block = new LogBlock(copy.subarray(3));
    assert.equal(block.rows, b.rows);
    assert.equal(b.firstAt, Math.min(...block.at));
    assert.equal(b.lastAt, Math.max(...block.at));
    return Array.from({ length: block.rows }, (_, i) => [b.model, b.version, block.at[i], block.latency[i], block.kindOf(i), block.requestId(i), block.output(i), Array.from(block.input(i))]);
  });
}

/**
 * What the blocks of `rows` must hold: a block per model version, ordered by the version's newest
 * row (ties: first appearance).
 */
function expected(rows: readonly Row[]): unknown[] {
  const keyOf = (r: Row): string => `${LABELS[2 * r.label]}@${LABELS[2 * r.label + 1]}`;
  const newest = new Map<string, number>();
  for (const r of rows) newest.set(keyOf(r), Math.max(newest.get(keyOf(r)) ?? -Infinity, r.at));
  const order = [...new Set(rows.map(keyOf))].sort((a, b) => newest.get(a)! - newest.get(b)!);
  return order.flatMap((key) =>
    rows.filter((r) => keyOf(r) === key).map((r) => [LABELS[2 * r.label], LABELS[2 * r.label + 1], r.at, r.latency, r.kind, r.requestId, `{${r.output}}`, bytesOf(r.input)]),
  );
}

describe('prediction log blocks', { timeout: 60_000 }, () => {
  test('buffered rows become blocks holding exactly those rows, through growth, dropping and reuse', () => {
    const rows = sampleRows(300);
    // Room for 16 rows: every array grows several times.
    const buffer = new LogRows(16);
    appendAll(buffer, rows);
    const blocks = buffer.blocks(LABELS);
    assert.deepEqual(
      blocks.map((b) => [b.model, b.version, b.rows]),
      [
        // The newest row (299) is iris's, so its block comes last.
        ['prices model', 'file', 100],
        ['iris', '3', 200],
      ],
    );
    assert.deepEqual(decoded(blocks), expected(rows));

    assert.equal(buffer.dropOldest(120), 120);
    assert.deepEqual(decoded(buffer.blocks(LABELS)), expected(rows.slice(120)));
    assert.equal(buffer.dropOldest(500), 180);
    assert.deepEqual(buffer.blocks(LABELS), []);

    buffer.clear();
    const again = sampleRows(40).reverse();
    appendAll(buffer, again);
    assert.deepEqual(decoded(buffer.blocks(LABELS)), expected(again));
  });

  test('from any starting room, every row keeps its model version and fields as the buffer grows', () => {
    // The room a flush leaves for the next is the previous flush's row count: any number.
    const rows = sampleRows(150, 2);
    for (let room = 1; room <= 40; room++) {
      const buffer = new LogRows(room);
      appendAll(buffer, rows);
      const blocks = buffer.blocks(LABELS);
      assert.deepEqual(
        blocks.map((b) => [b.model, b.version, b.rows]),
        [
          ['iris', '3', 75],
          ['prices model', 'file', 75],
        ],
        `room for ${room} rows`,
      );
      assert.deepEqual(decoded(blocks), expected(rows), `room for ${room} rows`);
    }
  });

  test('one model version: one block, its inputs copied whole or row by row', () => {
    for (const f of [2, 3]) {
      // float32 rows of 3 values leave padding between rows in the buffer; of 2 values none.
      const rows = sampleRows(50, 1).map((r, i) => ({ ...r, input: Float32Array.from({ length: f }, (_, k) => i * 10 + k) }));
      const buffer = new LogRows(8);
      appendAll(buffer, rows);
      buffer.dropOldest(5);
      const blocks = buffer.blocks(LABELS);
      assert.equal(blocks.length, 1);
      assert.equal(new LogBlock(blocks[0]!.data).uniformInputLength(), 4 * f);
      assert.deepEqual(decoded(blocks), expected(rows.slice(5)));
    }
  });

  test('rows given as values: categorical codes, float64, no request id, unicode; a block cut to its newer rows', () => {
    const color = Float32Array.of(2.5, 1, 0.5, 0, 7, 2);
    const wide = Float64Array.of(1e300, -0, Number.NaN);
    const values = [
      { at: 10, latencyMs: 0.5, kind: 'single', requestId: null, output: '{"prediction":"ß"}', inputs: new Uint8Array(color.buffer, 0, 8) },
      { at: 11, latencyMs: 1.5, kind: 'kserve', requestId: 'id-日本', output: '{"prediction":1}', inputs: new Uint8Array(color.buffer, 8, 8) },
      { at: 12, latencyMs: 2.5, kind: 'explain', requestId: '', output: '{"prediction":"🎉"}', inputs: new Uint8Array(wide.buffer) },
      { at: 13, latencyMs: 3.5, kind: 'batch', requestId: 'x', output: '{}', inputs: new Uint8Array(0) },
    ];
    const block = encodeRows('m', '1', values);
    assert.deepEqual([block.rows, block.firstAt, block.lastAt, block.data[0]], [4, 10, 13, BLOCK_FORMAT]);
    const read = new LogBlock(block.data);
    const rowsOf = (b: LogBlock): unknown[] => Array.from({ length: b.rows }, (_, i) => ({ at: b.at[i], latencyMs: b.latency[i], kind: b.kindOf(i), requestId: b.requestId(i), output: b.output(i), inputs: b.input(i) }));
    assert.deepEqual(rowsOf(read), values);
    assert.equal(read.uniformInputLength(), -1);
    assert.deepEqual(Array.from(new Float64Array(read.input(2).slice().buffer)), [1e300, -0, Number.NaN]);
    assert.deepEqual(rowsOf(new LogBlock(read.slice(1))), values.slice(1));
    assert.deepEqual(rowsOf(new LogBlock(read.slice(4))), []);
    assert.throws(() => encodeRows('m', '1', [{ ...values[0]!, kind: 'guess' }]), /row 0 of m 1: kind 'guess'/);
  });

  test('bytes that are not a block of a known format are refused with the reason', () => {
    const data = encodeRows('m', '1', [{ at: 1, latencyMs: 1, kind: 'single', requestId: null, output: '{}', inputs: new Uint8Array(4) }]).data;
    assert.throws(() => new LogBlock(data.subarray(0, 10)), /shorter than its header/);
    assert.throws(() => new LogBlock(data.subarray(0, data.length - 1)), /bytes where its header describes/);
    const future = data.slice();
    future[0] = 9;
    assert.throws(() => new LogBlock(future), /format 9 is not one this version reads/);
  });
});

for (const backend of await storeBackends()) {
  describe(`prediction log blocks in the store (${backend})`, { timeout: 60_000 }, () => {
    let store: Store;
    let schema: string | undefined;
    before(async () => {
      schema = backend === 'postgres' ? uniqueSchema('pblk') : undefined;
      store = await openStore({ dataDir: os.tmpdir(), ...(backend === 'postgres' ? { databaseUrl: TEST_DATABASE_URL, schema } : { sqlitePath: ':memory:' }) });
      await migrateToLatest(store);
    });
    after(async () => {
      await store.close();
      if (schema !== undefined) await dropSchema(schema);
    });

    test('a flush is stored whole, numbered on from the last row, or not at all', async () => {
      const rows = sampleRows(30);
      const buffer = new LogRows(16);
      appendAll(buffer, rows);
      assert.deepEqual(await insertBlocks(store.db, buffer.blocks(LABELS)), [1, 11]);
      // The second block of the next flush is refused: neither is stored.
      const trigger =
        backend === 'sqlite'
          ? sql`create trigger refuse_block before insert on prediction_log_blocks when new.model = 'prices model' begin select raise(abort, 'refused by the test'); end`
          : sql`create function refuse_block() returns trigger language plpgsql as $$ begin if new.model = 'prices model' then raise exception 'refused by the test'; end if; return new; end $$`;
      await trigger.execute(store.db);
      if (backend === 'postgres') await sql`create trigger refuse_block before insert on prediction_log_blocks for each row execute function refuse_block()`.execute(store.db);
      await assert.rejects(insertBlocks(store.db, buffer.blocks(LABELS)), /refused by the test/);
      assert.equal((await storedRows(store.db)).length, 30);
      await sql`drop trigger refuse_block${backend === 'postgres' ? sql` on prediction_log_blocks` : sql``}`.execute(store.db);
      assert.deepEqual(await insertBlocks(store.db, buffer.blocks(LABELS)), [31, 41]);
      const stored = await storedRows(store.db);
      assert.deepEqual(
        stored.map((r) => r.id),
        Array.from({ length: 60 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        stored.slice(30).map((r) => [r.model, r.version, r.request_id, r.output, Array.from(r.inputs)]),
        (expected(rows) as unknown[][]).map((e) => [e[0], e[1], e[5], e[6], e[7]]),
      );
    });
  });
}
