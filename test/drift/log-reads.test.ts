/**
 * The prediction log read from its blocks: pages and exports filtered by model and time across
 * blocks whose rows lie on both sides of `since` and `until`, drift windows of the latest rows or
 * of rows since a time, retention by age cutting a block, and rows an older version left in the
 * table before blocks moved into blocks by the retention run. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import pino from 'pino';
import { after, before, describe, test } from 'node:test';
import { upsertSchema } from '../../src/drift/drift.repository.ts';
import { DriftService, readWindow, type LoggedPrediction } from '../../src/drift/drift.service.ts';
import { windowMatrix } from '../../src/drift/log-codec.ts';
import { PredictionLog } from '../../src/drift/prediction-log.ts';
import { Metrics } from '../../src/platform/metrics.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { TEST_DATABASE_URL, dropSchema, storeBackends, uniqueSchema } from '../helper.ts';
import { insertRows, logReadingDrift, storedRows, type NewRow } from './stored-rows.ts';

const quiet = pino({ level: 'silent' });
const DAY = 86_400_000;

/** A row of model `model` version 1 at `at` whose inputs are (`x`, `x + 0.5`). */
function row(model: string, at: number, x: number): NewRow {
  return { at, model, version: '1', request_id: `r${x}`, kind: 'single', latency_ms: x / 10, inputs: new Uint8Array(Float32Array.of(x, x + 0.5).buffer), output: `{"prediction":${x}}` };
}

/** Every row of a listing, page after page. */
async function allPages(drift: DriftService, filter: Parameters<DriftService['predictions']>[0], limit: number): Promise<{ pages: number; rows: LoggedPrediction[] }> {
  const rows: LoggedPrediction[] = [];
  let pages = 0;
  let token: string | undefined;
  do {
    const page = await drift.predictions(filter, limit, token);
    pages++;
    rows.push(...page.rows);
    token = page.next_page_token;
  } while (token !== undefined);
  return { pages, rows };
}

for (const backend of await storeBackends()) {
  describe(`prediction log reads and retention over blocks (${backend})`, { timeout: 60_000 }, () => {
    let store: Store;
    let schema: string | undefined;
    let drift: DriftService;
    before(async () => {
      schema = backend === 'postgres' ? uniqueSchema('plrd') : undefined;
      store = await openStore({ dataDir: os.tmpdir(), ...(backend === 'postgres' ? { databaseUrl: TEST_DATABASE_URL, schema } : { sqlitePath: ':memory:' }) });
      await migrateToLatest(store);
      drift = logReadingDrift(store);
      for (const m of ['a', 'b']) await upsertSchema(store.db, { model: m, version: '1', element_type: 'float32', features: '["x","y"]', categories: '[null,null]' });
      // Three blocks: a (rows 1-10, at 1000-1009), b (rows 11-15, at 1005-1009), a (rows 16-25, at 1010-1019).
      await insertRows(store.db, Array.from({ length: 10 }, (_, i) => row('a', 1000 + i, i)));
      await insertRows(store.db, Array.from({ length: 5 }, (_, i) => row('b', 1005 + i, 100 + i)));
      await insertRows(store.db, Array.from({ length: 10 }, (_, i) => row('a', 1010 + i, 10 + i)));
    });
    after(async () => {
      await store.close();
      if (schema !== undefined) await dropSchema(schema);
    });

    test('pages across blocks, filtered by model and by a time range that cuts blocks', async () => {
      const a = await allPages(drift, { model: 'a', since: 1005, until: 1015 }, 3);
      assert.deepEqual(
        a.rows.map((r) => r.id),
        [6, 7, 8, 9, 10, 16, 17, 18, 19, 20],
      );
      assert.equal(a.pages, 4);
      assert.deepEqual(a.rows[5], {
        id: 16,
        timestamp: new Date(1010).toISOString(),
        model: 'a',
        version: '1',
        request_id: 'r10',
        kind: 'single',
        latency_ms: 1,
        inputs: { x: 10, y: 10.5 },
        output: { prediction: 10 },
      });
      const all = await allPages(drift, { since: 1008, until: 1011 }, 2);
      assert.deepEqual(
        all.rows.map((r) => [r.id, r.model, r.inputs['x']]),
        [
          [9, 'a', 8],
          [10, 'a', 9],
          [14, 'b', 103],
          [15, 'b', 104],
          [16, 'a', 10],
        ],
      );
      // A page that ends with a block's last row, and the next block of another model.
      const b = await allPages(drift, { model: 'b' }, 5);
      assert.deepEqual(
        [b.pages, b.rows.map((r) => r.id)],
        [1, [11, 12, 13, 14, 15]],
      );
      const exported: LoggedPrediction[] = [];
      for await (const rows of drift.exportPredictions({ version: '1', until: 1007 }, 100)) exported.push(...rows);
      assert.deepEqual(
        exported.map((r) => r.id),
        [1, 2, 3, 4, 5, 6, 7, 11, 12],
      );
      const token = (await drift.predictions({ model: 'a' }, 19)).next_page_token;
      assert.deepEqual(
        (await drift.predictions({ model: 'a' }, 5, token)).rows.map((r) => r.id),
        [25],
      );
    });

    test('drift windows: the latest rows, or the rows since a time, across blocks', async () => {
      const xs = async (limit: number, since?: number): Promise<number[]> => {
        const ranges = await readWindow(store.db, 'a', '1', limit, since);
        const { matrix } = windowMatrix({ elementType: 'float32', features: ['x', 'y'], categories: [null, null] }, ranges);
        return Array.from(matrix.filter((_, k) => k % 2 === 0));
      };
      assert.deepEqual(await xs(12), [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
      assert.deepEqual(await xs(3), [17, 18, 19]);
      assert.deepEqual(await xs(1000), Array.from({ length: 20 }, (_, i) => i));
      assert.deepEqual(await xs(1000, 1007), [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
      assert.deepEqual(await xs(4, 1007), [16, 17, 18, 19]);
      assert.deepEqual(await xs(1000, 5000), []);
      assert.deepEqual(await readWindow(store.db, 'c', '1', 10), []);
    });

    test('retention by age deletes whole blocks and cuts the block across the age; rows keep their ids', async () => {
      await store.db.deleteFrom('prediction_log_blocks').execute();
      let clock = 100 * DAY;
      await insertRows(store.db, [row('a', clock - 50 * DAY, 0), row('a', clock - 45 * DAY, 1)]);
      await insertRows(store.db, [40, 35, 20, 10].map((days, i) => row('a', clock - days * DAY, 2 + i)));
      await insertRows(store.db, [row('a', clock - DAY, 6)]);
      const ids = (await storedRows(store.db)).map((r) => r.id);
      const log = new PredictionLog({ store, metrics: new Metrics(), log: quiet, now: () => clock }, { sampleRate: 1, bufferRows: 10, retentionDays: 30, maxRows: 0, retentionMs: DAY });
      await log.enforceRetention();
      const left = await storedRows(store.db);
      assert.deepEqual(
        left.map((r) => [r.id, r.request_id]),
        [
          [ids[4], 'r4'],
          [ids[5], 'r5'],
          [ids[6], 'r6'],
        ],
      );
      // The cut block's time range is its rows' again: 21 days on, it goes whole.
      clock += 21 * DAY;
      await log.enforceRetention();
      assert.deepEqual(
        (await storedRows(store.db)).map((r) => r.id),
        ids.slice(6),
      );
    });

    test('retention deletes more blocks than one statement takes (by count, then by age), keeping exactly the newest', async () => {
      await store.db.deleteFrom('prediction_log_blocks').execute();
      // 50 blocks of two rows each, one a day (the store deletes 16 blocks per statement).
      for (let b = 0; b < 50; b++) await insertRows(store.db, [row('a', b * DAY, 2 * b), row('a', b * DAY + 1, 2 * b + 1)]);
      const ids = (await storedRows(store.db)).map((r) => r.id);
      assert.equal(ids.length, 100);
      const byCount = new PredictionLog({ store, metrics: new Metrics(), log: quiet, now: () => 50 * DAY }, { sampleRate: 1, bufferRows: 10, retentionDays: 0, maxRows: 41, retentionMs: DAY });
      await byCount.enforceRetention();
      // 41 rows: the newest 20 blocks and the last row of the block before them.
      assert.deepEqual(
        (await storedRows(store.db)).map((r) => r.id),
        ids.slice(59),
      );
      const byAge = new PredictionLog({ store, metrics: new Metrics(), log: quiet, now: () => 52 * DAY }, { sampleRate: 1, bufferRows: 10, retentionDays: 5, maxRows: 0, retentionMs: DAY });
      await byAge.enforceRetention();
      // Rows at day 47 and later are kept (52 - 5).
      assert.deepEqual(
        (await storedRows(store.db)).map((r) => r.request_id),
        Array.from({ length: 6 }, (_, i) => `r${94 + i}`),
      );
    });

    test("rows an older version's replica writes into the table before blocks are moved into blocks after the stored rows", async () => {
      await store.db.deleteFrom('prediction_log_blocks').execute();
      await insertRows(store.db, [row('a', 5000, 1)]);
      const last = (await storedRows(store.db))[0]!.id;
      await store.db
        .insertInto('prediction_log')
        .values([2, 3].map((x) => ({ at: 5000 + x, model: 'a', version: '1', request_id: null, kind: 'batch', latency_ms: 1, inputs: Buffer.from(Float32Array.of(x, x + 0.5).buffer).toString('base64'), output: `{"prediction":${x}}` })))
        .execute();
      const log = new PredictionLog({ store, metrics: new Metrics(), log: quiet, now: () => 7 * DAY }, { sampleRate: 1, bufferRows: 10, retentionDays: 0, maxRows: 0, retentionMs: DAY });
      await log.enforceRetention();
      assert.equal((await store.db.selectFrom('prediction_log').selectAll().execute()).length, 0);
      const { rows } = await drift.predictions({ model: 'a' }, 10);
      assert.deepEqual(
        rows.map((r) => [r.id, r.kind, r.request_id, r.inputs, r.output]),
        [
          [last, 'single', 'r1', { x: 1, y: 1.5 }, { prediction: 1 }],
          [last + 1, 'batch', null, { x: 2, y: 2.5 }, { prediction: 2 }],
          [last + 2, 'batch', null, { x: 3, y: 3.5 }, { prediction: 3 }],
        ],
      );
    });
  });
}
