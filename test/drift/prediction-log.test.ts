/**
 * The prediction log's buffer on its own: rows reach the store in batches with category labels
 * decoded (one block per model version per flush), sampling, the bound (oldest dropped and counted while the store refuses writes, never
 * an error to the caller), rows that cannot be packed dropped with an error instead of holding back
 * later rows, and retention by age and row count. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, test } from 'node:test';
import { findSchema, latestLoggedVersion, recentlyLoggedModels } from '../../src/drift/drift.repository.ts';
import { LogBlock } from '../../src/drift/log-block.ts';
import type { LogWriter } from '../../src/drift/log-writer.ts';
import { namedValues, parseSchema } from '../../src/drift/log-codec.ts';
import { PredictionLog } from '../../src/drift/prediction-log.ts';
import { Metrics } from '../../src/platform/metrics.ts';
import type { LoadedModel } from '../../src/serving/loaded-model.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { TEST_DATABASE_URL, dropSchema, storeBackends, uniqueSchema } from '../helper.ts';
import { insertRows, storedRows } from './stored-rows.ts';

/** Just what the log reads of a loaded model: identity, feature names, category codes. */
const MODEL = {
  identity: { name: 'm', version: '3' },
  nFeatures: 2,
  featureNames: ['size', 'color'],
  categoryCodes: [null, new Map([['red', 0], ['blue', 1]])],
  double: false,
} as unknown as LoadedModel;

const quiet = pino({ level: 'silent' });

async function counter(metrics: Metrics, name: string): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return Number(m?.values[0]?.value ?? 0);
}

const rowsOf = (store: Store) => storedRows(store.db);

for (const backend of await storeBackends()) {
  describe(`prediction log (${backend})`, { timeout: 60_000 }, () => {
    let store: Store;
    let schema: string | undefined;
    before(async () => {
      schema = backend === 'postgres' ? uniqueSchema('plog') : undefined;
      store = await openStore({ dataDir: os.tmpdir(), ...(backend === 'postgres' ? { databaseUrl: TEST_DATABASE_URL, schema } : { sqlitePath: ':memory:' }) });
      await migrateToLatest(store);
    });
    after(async () => {
      await store.close();
      if (schema !== undefined) await dropSchema(schema);
    });

    test('writes one row per predicted row, with labels decoded and the answer kept', async () => {
      const metrics = new Metrics();
      const log = new PredictionLog({ store, metrics, log: quiet }, { sampleRate: 1, bufferRows: 100, retentionDays: 0, maxRows: 0 });
      log.record(MODEL, Float32Array.of(1.5, 1, 2.5, 0, 9, 9), 2, ['"prediction":1', '"prediction":0'], 'batch', 'req-1', performance.now());
      log.record(MODEL, Float32Array.of(7, 0), 1, '"prediction":1,"probability":[0.25,0.75],"confidence":0.75', 'single', 'req-2', performance.now());
      assert.equal(log.bufferedRows, 3);
      await log.flush();
      assert.equal(log.bufferedRows, 0);
      const rows = await rowsOf(store);
      assert.equal(rows.length, 3);
      const schema = parseSchema((await findSchema(store.db, 'm', '3'))!);
      assert.deepEqual(schema, { elementType: 'float32', features: ['size', 'color'], categories: [null, ['red', 'blue']] });
      assert.deepEqual(namedValues(schema, rows[0]!.inputs), { size: 1.5, color: 'blue' });
      assert.deepEqual(namedValues(schema, rows[1]!.inputs), { size: 2.5, color: 'red' });
      assert.deepEqual(namedValues(schema, rows[2]!.inputs), { size: 7, color: 'red' });
      assert.deepEqual(JSON.parse(rows[2]!.output), { prediction: 1, probability: [0.25, 0.75], confidence: 0.75 });
      assert.deepEqual([rows[0]!.kind, rows[0]!.request_id, rows[0]!.model, rows[0]!.version], ['batch', 'req-1', 'm', '3']);
      assert.equal(await counter(metrics, 'prediction_log_written_total'), 3);
      await store.db.deleteFrom('prediction_log_blocks').execute();
    });

    test('a flush holding two versions of a model: the version that answered last is the one a drift check picks', async () => {
      const older = { ...MODEL, identity: { name: 'm', version: '4' } } as unknown as LoadedModel;
      const log = new PredictionLog({ store, metrics: new Metrics(), log: quiet }, { sampleRate: 1, bufferRows: 100, retentionDays: 0, maxRows: 0 });
      const record = (model: LoadedModel, rows: number): void => {
        for (let i = 0; i < rows; i++) log.record(model, Float32Array.of(i, 0), 1, '"prediction":1', 'single', undefined, performance.now());
      };
      const waitATick = () => new Promise((r) => setTimeout(r, 2));
      // Version 3 first appears before version 4 in the buffer, but answers last.
      record(MODEL, 1);
      await waitATick();
      record(older, 3);
      await waitATick();
      record(MODEL, 2);
      await log.flush();
      assert.deepEqual(await recentlyLoggedModels(store.db, 0), [{ model: 'm', version: '3' }]);
      assert.equal(await latestLoggedVersion(store.db, 'm'), '3');
      record(MODEL, 1);
      await waitATick();
      record(older, 1);
      await log.flush();
      assert.deepEqual(await recentlyLoggedModels(store.db, 0), [{ model: 'm', version: '4' }]);
      assert.equal(await latestLoggedVersion(store.db, 'm'), '4');
      await store.db.deleteFrom('prediction_log_blocks').execute();
    });

    test('sampling at 0 logs nothing', async () => {
      const log = new PredictionLog({ store, metrics: new Metrics(), log: quiet }, { sampleRate: 0, bufferRows: 100, retentionDays: 0, maxRows: 0 });
      for (let i = 0; i < 50; i++) log.record(MODEL, Float32Array.of(1, 0), 1, '"prediction":1', 'single', undefined, performance.now());
      assert.equal(log.bufferedRows, 0);
    });

    test('a store that refuses writes: the buffer keeps the newest rows and counts the dropped ones', async () => {
      const metrics = new Metrics();
      const broken = { ...store, db: { insertInto: () => ({ values: () => ({ execute: () => Promise.reject(new Error('store down')) }) }) } } as unknown as Store;
      const log = new PredictionLog({ store: broken, metrics, log: quiet }, { sampleRate: 1, bufferRows: 10, retentionDays: 0, maxRows: 0 });
      for (let i = 0; i < 8; i++) log.record(MODEL, Float32Array.of(i, 0), 1, '"prediction":1', 'single', `r${i}`, performance.now());
      await log.flush();
      assert.equal(log.bufferedRows, 8);
      for (let i = 8; i < 15; i++) log.record(MODEL, Float32Array.of(i, 0), 1, '"prediction":1', 'single', `r${i}`, performance.now());
      assert.equal(log.bufferedRows, 10);
      assert.equal(await counter(metrics, 'prediction_log_dropped_total'), 5);
      await log.flush();
      assert.equal(log.bufferedRows, 10);
    });

    test('a full buffer warns once until a write succeeds, saying whether a write was failing', async () => {
      const lines: { msg: string; dropped?: number; failing?: boolean; writingForMs?: number | null }[] = [];
      const captured = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      let refuse = true;
      const writer = { write: () => (refuse ? Promise.reject(new Error('store down')) : Promise.resolve()), close: () => Promise.resolve() };
      const log = new PredictionLog({ store, metrics: new Metrics(), log: captured, writer }, { sampleRate: 1, bufferRows: 4, retentionDays: 0, maxRows: 0 });
      const record = (i: number): void => log.record(MODEL, Float32Array.of(i, 0), 1, '"prediction":1', 'single', `r${i}`, performance.now());
      for (let i = 0; i < 4; i++) record(i);
      await log.flush();
      for (let i = 4; i < 8; i++) record(i);
      const drops = () => lines.filter((l) => l.msg.startsWith('prediction log: buffer full'));
      assert.equal(drops().length, 1, 'one warning for the episode, not one per dropped row');
      assert.equal(drops()[0]!.dropped, 1);
      assert.equal(drops()[0]!.failing, true);
      assert.equal(drops()[0]!.writingForMs, null);
      refuse = false;
      await log.flush();
      assert.equal(log.bufferedRows, 0);
      for (let i = 8; i < 13; i++) record(i);
      assert.equal(drops().length, 2, 'a new episode after a successful write warns again');
    });

    test('rows that cannot be packed into blocks are dropped with an error, and the rows after them are written', async () => {
      const metrics = new Metrics();
      const lines: { level: number; msg: string; dropped?: number }[] = [];
      const captured = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      const written: (string | null)[] = [];
      const writer: LogWriter = {
        write: (batch) => {
          for (const b of batch) {
            const block = new LogBlock(b.data);
            for (let i = 0; i < block.rows; i++) written.push(block.requestId(i));
          }
          return Promise.resolve();
        },
        close: () => Promise.resolve(),
      };
      const log = new PredictionLog({ store, metrics, log: captured, writer }, { sampleRate: 1, bufferRows: 100, retentionDays: 0, maxRows: 0 });
      for (let i = 0; i < 3; i++) log.record(MODEL, Float32Array.of(i, 0), 1, '"prediction":1', 'single', `bad${i}`, performance.now());
      // The rows' buffer fails to pack once (as a defect in packing would): a
      // retry would fail the same way and hold back every later row.
      const buffer = (log as unknown as { current: { blocks: (labels: readonly string[]) => unknown } }).current;
      buffer.blocks = () => {
        throw new RangeError('packing defect');
      };
      await log.flush();
      delete (buffer as { blocks?: unknown }).blocks;
      assert.equal(log.bufferedRows, 0);
      assert.equal(await counter(metrics, 'prediction_log_dropped_total'), 3);
      assert.deepEqual(
        lines.filter((l) => l.level === 50).map((l) => [l.dropped, /could not be packed/.test(l.msg)]),
        [[3, true]],
      );
      for (let i = 0; i < 2; i++) log.record(MODEL, Float32Array.of(i, 0), 1, '"prediction":1', 'single', `ok${i}`, performance.now());
      await log.flush();
      assert.deepEqual(written, ['ok0', 'ok1']);
      assert.equal(await counter(metrics, 'prediction_log_written_total'), 2);
    });

    test('rows the writer refused are written later, in order, each once; close writes the rest and releases the writer', async () => {
      const metrics = new Metrics();
      const batches: (string | null)[][] = [];
      let refusals = 2;
      let closed = false;
      const writer: LogWriter = {
        write: (batch) => {
          if (refusals > 0) {
            refusals--;
            return Promise.reject(new Error('store busy'));
          }
          batches.push(
            batch.flatMap((b) => {
              const block = new LogBlock(b.data);
              return Array.from({ length: block.rows }, (_, i) => block.requestId(i));
            }),
          );
          return Promise.resolve();
        },
        close: () => {
          closed = true;
          return Promise.resolve();
        },
      };
      const log = new PredictionLog({ store, metrics, log: quiet, writer }, { sampleRate: 1, bufferRows: 100, retentionDays: 0, maxRows: 0 });
      const requestIds: string[] = [];
      const record = (n: number): void => {
        for (let i = 0; i < n; i++) {
          const id = `r${requestIds.length}`;
          requestIds.push(id);
          log.record(MODEL, Float32Array.of(requestIds.length, 0), 1, '"prediction":1', 'single', id, performance.now());
        }
      };
      record(3);
      await log.flush();
      record(2);
      await log.flush();
      assert.equal(log.bufferedRows, 5);
      record(4);
      await log.flush();
      assert.equal(log.bufferedRows, 0);
      record(3);
      await log.close();
      assert.equal(closed, true);
      const written = batches.flat();
      assert.deepEqual(written, requestIds);
      assert.equal(await counter(metrics, 'prediction_log_written_total'), 12);
      assert.equal(await counter(metrics, 'prediction_log_dropped_total'), 0);
    });

    test('retention deletes rows past the age and keeps the newest rows', async () => {
      const now = Date.now();
      const row = (at: number, i: number) => ({ at, model: 'r', version: '1', request_id: null, kind: 'single', latency_ms: 1, inputs: new Uint8Array(0), output: `{"i":${i}}` });
      // Two blocks: the old rows, and the new ones, which retention by count cuts.
      await insertRows(store.db, Array.from({ length: 5 }, (_, i) => row(now - 40 * 86_400_000, i)));
      await insertRows(store.db, Array.from({ length: 10 }, (_, i) => row(now, 5 + i)));
      const log = new PredictionLog({ store, metrics: new Metrics(), log: quiet }, { sampleRate: 1, bufferRows: 10, retentionDays: 30, maxRows: 6 });
      await log.enforceRetention();
      const left = await rowsOf(store);
      assert.deepEqual(left.map((r) => JSON.parse(r.output).i), [9, 10, 11, 12, 13, 14]);
    });
  });
}

describe('prediction log on an SQLite file', { timeout: 120_000 }, () => {
  test('closing writes what is buffered, once', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'plog-file-'));
    const store = await openStore({ dataDir: dir });
    try {
      await migrateToLatest(store);
      const log = new PredictionLog({ store, metrics: new Metrics(), log: quiet }, { sampleRate: 1, bufferRows: 100, retentionDays: 0, maxRows: 0 });
      log.record(MODEL, Float32Array.of(1.5, 1), 1, '"prediction":1', 'single', 'a', performance.now());
      await log.flush();
      log.record(MODEL, Float32Array.of(2.5, 0, 3.5, 1), 2, ['"prediction":0', '"prediction":1'], 'batch', 'b', performance.now());
      await log.close();
      const rows = await rowsOf(store);
      const schema = parseSchema((await findSchema(store.db, 'm', '3'))!);
      assert.deepEqual(
        rows.map((r) => [r.request_id, r.kind, namedValues(schema, r.inputs), JSON.parse(r.output)]),
        [
          ['a', 'single', { size: 1.5, color: 'blue' }, { prediction: 1 }],
          ['b', 'batch', { size: 2.5, color: 'red' }, { prediction: 0 }],
          ['b', 'batch', { size: 3.5, color: 'blue' }, { prediction: 1 }],
        ],
      );
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
