/**
 * Migration 008 on a store with rows in the prediction log's table before blocks (schema 007):
 * every row is moved into blocks, in chunks, keeping its id, its time, its request id (or none),
 * its kind, its answer and its inputs, and reads back through the drift service as it was
 * written; the drift window and the next logged rows follow on. SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import pino from 'pino';
import { after, before, describe, test } from 'node:test';
import { sql, type Selectable } from 'kysely';
import type { LegacyPredictionLogTable } from '../../src/drift/drift.repository.ts';
import { DriftService, readWindow, type LoggedPrediction } from '../../src/drift/drift.service.ts';
import { windowMatrix } from '../../src/drift/log-codec.ts';
import { PredictionLog } from '../../src/drift/prediction-log.ts';
import { Metrics } from '../../src/platform/metrics.ts';
import type { LoadedModel } from '../../src/serving/loaded-model.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { migrateTo, migrateToLatest } from '../../src/store/migrate.ts';
import { TEST_DATABASE_URL, dropSchema, storeBackends, uniqueSchema } from '../helper.ts';
import { logReadingDrift } from './stored-rows.ts';

const quiet = pino({ level: 'silent' });

/** A row as version 007 stored it. */
type OldRow = Selectable<LegacyPredictionLogTable>;

/** 6,200 rows (more than a chunk of the move): models interleaved, a gap of deleted ids, every kind, unicode. */
function oldRows(): OldRow[] {
  const kinds = ['single', 'batch', 'invocations', 'explain', 'kserve'];
  const rows: OldRow[] = [];
  for (let id = 11; id <= 6210; id++) {
    if (id >= 3000 && id < 3005) continue;
    const color = id % 2;
    const model = id >= 2001 && id <= 2100 ? 'other' : id % 7 === 0 ? 'shop' : 'iris';
    rows.push({
      id,
      at: 1_700_000_000_000 + id * 10,
      model,
      version: model === 'shop' ? 'file' : '2',
      request_id: id % 3 === 0 ? null : `req-${id}-ü`,
      kind: kinds[id % 5]!,
      latency_ms: id / 100,
      inputs: Buffer.from(Float32Array.of(id / 4, color).buffer).toString('base64'),
      output: id % 11 === 0 ? `{"prediction":"日本 🎉 ${id}"}` : `{"prediction":${id},"probability":[0.25,0.75]}`,
    });
  }
  return rows;
}

for (const backend of await storeBackends()) {
  describe(`migration 008 moves the prediction log into blocks (${backend})`, { timeout: 120_000 }, () => {
    let store: Store;
    let schema: string | undefined;
    let drift: DriftService;
    const rows = oldRows();
    before(async () => {
      schema = backend === 'postgres' ? uniqueSchema('pmig') : undefined;
      store = await openStore({ dataDir: os.tmpdir(), ...(backend === 'postgres' ? { databaseUrl: TEST_DATABASE_URL, schema } : { sqlitePath: ':memory:' }) });
      // The store's own migration path, with its retry of a catalogue read that met another test's DROP SCHEMA.
      await migrateTo(store, '007-drift-claims');
      for (let k = 0; k < rows.length; k += 500) await store.db.insertInto('prediction_log').values(rows.slice(k, k + 500)).execute();
      for (const [model, version] of [
        ['iris', '2'],
        ['shop', 'file'],
        ['other', '2'],
      ] as const) {
        await store.db.insertInto('prediction_log_schemas').values({ model, version, element_type: 'float32', features: '["size","color"]', categories: '[null,["red","blue"]]' }).execute();
      }
      if (backend === 'postgres') await sql`select setval(pg_get_serial_sequence('prediction_log', 'id'), 6210)`.execute(store.db);
      await migrateToLatest(store);
      drift = logReadingDrift(store);
    });
    after(async () => {
      await store.close();
      if (schema !== undefined) await dropSchema(schema);
    });

    const shown = (r: OldRow): LoggedPrediction => {
      const [size, color] = new Float32Array(new Uint8Array(Buffer.from(r.inputs, 'base64')).buffer);
      return {
        id: r.id,
        timestamp: new Date(r.at).toISOString(),
        model: r.model,
        version: r.version,
        request_id: r.request_id,
        kind: r.kind,
        latency_ms: r.latency_ms,
        inputs: { size: size!, color: color === 0 ? 'red' : 'blue' },
        output: JSON.parse(r.output) as Record<string, unknown>,
      };
    };

    test('every row reads back as it was, with its id; the old table is kept, empty', async () => {
      assert.equal((await store.db.selectFrom('prediction_log').selectAll().execute()).length, 0);
      const read: LoggedPrediction[] = [];
      for await (const page of drift.exportPredictions({}, 100_000)) read.push(...page);
      assert.equal(read.length, rows.length);
      assert.deepEqual(read, rows.map(shown));
      const other = await drift.predictions({ model: 'other' }, 1000);
      assert.deepEqual(other.rows, rows.filter((r) => r.model === 'other').map(shown));
      // A block holds a run of consecutive ids of one model version.
      const blocks = await store.db.selectFrom('prediction_log_blocks').select(['first_seq', 'row_count']).where('model', '=', 'other').execute();
      assert.deepEqual(
        blocks.map((b) => [Number(b.first_seq), Number(b.row_count)]),
        [[2001, 100]],
      );
    });

    test('the drift window reads the moved rows; newly logged rows are numbered after them', async () => {
      const ranges = await readWindow(store.db, 'iris', '2', 3);
      const { matrix } = windowMatrix({ elementType: 'float32', features: ['size', 'color'], categories: [null, ['red', 'blue']] }, ranges);
      const last = rows.filter((r) => r.model === 'iris').slice(-3);
      assert.deepEqual(
        Array.from(matrix.filter((_, k) => k % 2 === 0)),
        last.map((r) => r.id / 4),
      );
      const model = { identity: { name: 'iris', version: '2' }, nFeatures: 2, featureNames: ['size', 'color'], categoryCodes: [null, new Map([['red', 0], ['blue', 1]])], double: false } as unknown as LoadedModel;
      const log = new PredictionLog({ store, metrics: new Metrics(), log: quiet }, { sampleRate: 1, bufferRows: 100, retentionDays: 0, maxRows: 0 });
      log.record(model, Float32Array.of(9, 1), 1, '"prediction":1', 'single', 'new', performance.now());
      await log.close();
      const { rows: newest } = await drift.predictions({ model: 'iris', since: Date.now() - 60_000 }, 10);
      assert.deepEqual(
        newest.map((r) => [r.id, r.request_id, r.inputs]),
        [[6211, 'new', { size: 9, color: 'blue' }]],
      );
    });
  });
}
