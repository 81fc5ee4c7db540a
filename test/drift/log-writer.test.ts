/**
 * The prediction log's way to the store: rows buffered as typed arrays (`LogRows`) become exactly
 * the store rows they stand for, and the writer thread of an SQLite file stores each batch whole,
 * on its own connection, next to the API's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { LOG_COLUMNS } from '../../src/drift/drift.repository.ts';
import { batchValues, LogRows } from '../../src/drift/log-batch.ts';
import { encodeRow } from '../../src/drift/log-codec.ts';
import { openLogWriter, StoreLogWriter, ThreadLogWriter } from '../../src/drift/log-writer.ts';
import type { ServedKind } from '../../src/serving/prediction.service.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';

interface Row {
  label: number;
  kind: ServedKind;
  at: number;
  latency: number;
  requestId: string | null;
  output: string;
  input: Float32Array | Float64Array;
}

const LABELS = ['iris', '3', 'prices model', 'file'];

/** Rows of every shape: both element types, no request id, non-ASCII answers, long and short. */
function sampleRows(n: number): Row[] {
  const kinds: ServedKind[] = ['single', 'batch', 'invocations', 'explain', 'kserve'];
  return Array.from({ length: n }, (_, i) => {
    const f = 1 + (i % 7);
    const input = i % 3 === 0 ? new Float64Array(f) : new Float32Array(f);
    for (let k = 0; k < f; k++) input[k] = k === 2 ? Number.NaN : (i - k) / 7;
    return {
      label: i % 2,
      kind: kinds[i % kinds.length]!,
      at: 1_700_000_000_000 + i,
      latency: i / 1000,
      requestId: i % 4 === 1 ? null : `req-${i}`,
      output: `"prediction":${i % 5 === 0 ? '"crème brûlée 日本 🎉"' : i},"probability":[${'0.5,'.repeat(i % 40)}0.5]`,
      input,
    };
  });
}

/** The store values of rows as `batchValues` must give them (LOG_COLUMNS order). */
function expectedValues(rows: readonly Row[]): unknown[] {
  return rows.flatMap((r) => [r.at, LABELS[2 * r.label], LABELS[2 * r.label + 1], r.requestId, r.kind, r.latency, encodeRow(r.input, 0, r.input.length), `{${r.output}}`]);
}

function appendAll(buffer: LogRows, rows: readonly Row[]): void {
  for (const r of rows) {
    // The input sits inside a larger array, as a model's reused input buffer does.
    const padded = r.input instanceof Float64Array ? new Float64Array(r.input.length + 3) : new Float32Array(r.input.length + 3);
    padded.set(r.input, 2);
    buffer.append(r.label, r.kind, r.at, r.latency, r.requestId, r.output, padded, 2, r.input.length);
  }
}

describe('buffered log rows', { timeout: 60_000 }, () => {
  test('become exactly their store rows, through growth, a copy to another thread, dropping and reuse', () => {
    assert.equal(LOG_COLUMNS.length, 8);
    const rows = sampleRows(300);
    // Room for 16 rows: every array grows several times.
    const buffer = new LogRows(16);
    appendAll(buffer, rows);
    assert.equal(buffer.rows, 300);
    assert.deepEqual(batchValues(buffer.batch(LABELS)), expectedValues(rows));
    // What the writer thread receives is a structured clone of the batch.
    assert.deepEqual(batchValues(structuredClone(buffer.batch(LABELS))), expectedValues(rows));

    assert.equal(buffer.dropOldest(120), 120);
    assert.equal(buffer.rows, 180);
    assert.deepEqual(batchValues(buffer.batch(LABELS)), expectedValues(rows.slice(120)));
    assert.equal(buffer.dropOldest(500), 180);
    assert.equal(buffer.rows, 0);
    assert.deepEqual(batchValues(buffer.batch(LABELS)), []);

    buffer.clear();
    const again = sampleRows(40).reverse();
    appendAll(buffer, again);
    assert.deepEqual(batchValues(buffer.batch(LABELS)), expectedValues(again));
  });
});

describe('the writer thread of an SQLite file', { timeout: 120_000 }, () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'log-writer-'));
    store = await openStore({ dataDir: dir });
    await migrateToLatest(store);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const stored = async (): Promise<unknown[]> => {
    const rows = await store.db.selectFrom('prediction_log').select(LOG_COLUMNS).orderBy('id').execute();
    return rows.flatMap((r) => LOG_COLUMNS.map((c) => r[c]));
  };

  test('is what a file store gets; memory stores write through their own connection', async () => {
    const memory = await openStore({ dataDir: dir, sqlitePath: ':memory:' });
    try {
      assert.ok(openLogWriter(store) instanceof ThreadLogWriter);
      assert.ok(openLogWriter(memory) instanceof StoreLogWriter);
    } finally {
      await memory.close();
    }
  });

  test('stores each batch whole, readable from the API connection, while that connection writes too', async () => {
    const writer = new ThreadLogWriter(store.file!);
    try {
      const rows = sampleRows(2500);
      const first = new LogRows(64);
      appendAll(first, rows.slice(0, 1300));
      const second = new LogRows(64);
      appendAll(second, rows.slice(1300));
      const writes = [writer.write(first.batch(LABELS)), writer.write(second.batch(LABELS))];
      // The API's own connection writes meanwhile (a schema row), waiting its turn for the lock.
      await store.db.insertInto('prediction_log_schemas').values({ model: 'm', version: '1', element_type: 'float32', features: '[]', categories: '[]' }).execute();
      await Promise.all(writes);
      assert.deepEqual(await stored(), expectedValues(rows));
    } finally {
      await writer.close();
    }
    await store.db.deleteFrom('prediction_log').execute();
  });

  test('a batch the store refuses is stored not at all, and the writer goes on with the next', async () => {
    const writer = new ThreadLogWriter(store.file!);
    try {
      const rows = sampleRows(1500);
      const bad = new LogRows(16);
      appendAll(bad, rows);
      // The last row is refused (by a trigger), after the statements of the rows before it ran.
      await sql`create trigger refuse_row before insert on prediction_log when new.request_id = 'refuse' begin select raise(abort, 'refused by the test'); end`.execute(store.db);
      bad.append(0, 'single', 1, 1, 'refuse', '"prediction":1', Float32Array.of(1), 0, 1);
      await assert.rejects(writer.write(bad.batch(LABELS)), /refused by the test/);
      assert.deepEqual(await stored(), []);
      const good = new LogRows(16);
      appendAll(good, rows.slice(0, 10));
      await writer.write(good.batch(LABELS));
      assert.deepEqual(await stored(), expectedValues(rows.slice(0, 10)));
    } finally {
      await writer.close();
      await sql`drop trigger if exists refuse_row`.execute(store.db);
    }
    await store.db.deleteFrom('prediction_log').execute();
  });

  test('a file without the table: the write is refused with the reason', async () => {
    const other = path.join(dir, 'empty.db');
    const empty = await openStore({ dataDir: dir, sqlitePath: other });
    await empty.close();
    const writer = new ThreadLogWriter(other);
    try {
      const rows = new LogRows(16);
      appendAll(rows, sampleRows(3));
      await assert.rejects(writer.write(rows.batch(LABELS)), /no such table/);
    } finally {
      await writer.close();
    }
  });
});
