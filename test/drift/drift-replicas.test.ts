/**
 * Two API replicas on one database (two contexts, as two processes build them): the periodic
 * drift check stores one report per interval whichever replica's timer fires, every replica's
 * gauges follow it, a check that comes intervals late still covers the traffic since the last
 * check, and the prediction log's retention runs once per period. PostgreSQL (replicas)
 * and SQLite (the processes of `serve --workers N` share the file).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { closeContext, openContext, type AppContext } from '../../src/context.ts';
import { upsertSchema } from '../../src/drift/drift.repository.ts';
import { DriftService } from '../../src/drift/drift.service.ts';
import { PredictionLog } from '../../src/drift/prediction-log.ts';
import { Metrics } from '../../src/platform/metrics.ts';
import { createLogger } from '../../src/platform/logging.ts';
import { numericReference, REFERENCE_FORMAT } from '../../src/training/pipeline-reference.ts';
import { TEST_DATABASE_URL, dropSchema, storeBackends, uniqueSchema } from '../helper.ts';
import { classifierOnnx } from '../registry/fixtures.ts';
import { countRows, inputBytes, insertRows } from './stored-rows.ts';

const MODEL = 'replicated';
const MINUTE = 60_000;

/** Normal values around `mean` (seeded). */
function values(n: number, seed: number, mean: number): Float64Array {
  let s = seed;
  const u = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s + 0.5) / 2147483648;
  };
  return Float64Array.from({ length: n }, () => mean + Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

for (const backend of await storeBackends()) {
  describe(`drift work of two replicas on one ${backend} store`, { timeout: 180_000 }, () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'drift-replicas-'));
    const schema = backend === 'postgres' ? uniqueSchema('drep') : undefined;
    const config = loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', TRAINING_WORKERS: '0', DRIFT_MIN_WINDOW: '10', ...(backend === 'postgres' ? { DATABASE_URL: TEST_DATABASE_URL } : {}) });
    const log = createLogger(config, { pretty: false });
    const replicas: AppContext[] = [];
    /** A drift service over a replica's store and log, with its own metrics, on a clock the test sets. */
    const driftOf = (ctx: AppContext, checkIntervalSeconds: number, now: () => number, metrics = new Metrics()): DriftService =>
      new DriftService({
        store: ctx.backends.store,
        registry: ctx.services.registry,
        datasets: ctx.services.datasets,
        metrics,
        log,
        predictionLog: ctx.services.drift.log,
        settings: { ...config.drift, checkIntervalSeconds },
        now,
      });

    before(async () => {
      for (let k = 0; k < 2; k++) replicas.push(await openContext(config, log, { backends: schema === undefined ? {} : { pgSchema: schema } }));
      const [a] = replicas;
      const reference = { format: REFERENCE_FORMAT, source: 'training', rows: 500, feature_names: ['a', 'b'], features: { a: numericReference(values(500, 1, 0)), b: numericReference(values(500, 2, 0)) } };
      await a!.services.registry.models.registerVersion(MODEL, classifierOnnx(), {}, { actor: 'test', reference });
      // Logged traffic where feature a moved by two standard deviations.
      const db = a!.backends.store.db;
      await upsertSchema(db, { model: MODEL, version: '1', element_type: 'float32', features: '["a","b"]', categories: '[null,null]' });
      const live = [values(200, 3, 2), values(200, 4, 0)];
      const input = new Float32Array(400);
      for (let i = 0; i < 200; i++) [input[2 * i], input[2 * i + 1]] = [live[0]![i]!, live[1]![i]!];
      const now = Date.now();
      await insertRows(
        db,
        Array.from({ length: 200 }, (_, i) => ({ at: now, model: MODEL, version: '1', request_id: null, kind: 'single', latency_ms: 1, inputs: inputBytes(input, i, 2), output: '{"prediction":"yes"}' }))
      );
    });
    after(async () => {
      for (const r of replicas) await closeContext(r);
      if (schema !== undefined) await dropSchema(schema);
      rmSync(dir, { recursive: true, force: true });
    });

    test('one stored report per check interval; the replica that did not check publishes it', async () => {
      // The replicas' periodic checks on one clock, at the start of a one-minute interval.
      let clock = Math.floor(Date.now() / MINUTE) * MINUTE;
      const checks = replicas.map((ctx) => {
        const metrics = new Metrics();
        return { metrics, drift: driftOf(ctx, 60, () => clock, metrics) };
      });
      const history = async (): Promise<number> => (await replicas[0]!.services.drift.history(MODEL, 50)).reports.length;
      const share = async (metrics: Metrics): Promise<number | undefined> =>
        (await metrics.registry.getSingleMetric('dataset_drift_share')?.get())?.values.find((v) => v.labels['model'] === MODEL)?.value;

      // Both timers fire in the same interval, at the same moment: one report.
      await Promise.all(checks.map((c) => c.drift.runChecks()));
      assert.equal(await history(), 1);
      // Later in the same interval: nothing new is stored; both replicas now show the report.
      clock += 30_000;
      for (const c of checks) await c.drift.runChecks();
      assert.equal(await history(), 1);
      const stored = (await replicas[1]!.services.drift.history(MODEL, 1)).reports[0]!;
      assert.equal(stored.dataset_drift, true);
      for (const c of checks) assert.equal(await share(c.metrics), stored.share_drifted);

      // The next interval: one more report, from whichever replica comes first.
      clock += MINUTE;
      await Promise.all(checks.map((c) => c.drift.runChecks()).reverse());
      assert.equal(await history(), 2);
    });

    test('with the timer off (interval 0) each check run by hand reports on the last day of traffic', async () => {
      // The rows were logged before this test; ten minutes later by this clock.
      const clock = Date.now() + 10 * MINUTE;
      const drift = driftOf(replicas[0]!, 0, () => clock);
      const before = (await replicas[0]!.services.drift.history(MODEL, 50)).reports.length;
      await drift.runChecks();
      await drift.runChecks();
      assert.equal((await replicas[0]!.services.drift.history(MODEL, 50)).reports.length, before + 2);
    });

    test('retention runs once per retention period across the replicas', async () => {
      const count = (): Promise<number> => countRows(replicas[0]!.backends.store.db);
      const add = async (n: number): Promise<void> => {
        const rows = Array.from({ length: n }, () => ({ at: Date.now(), model: 'kept', version: '1', request_id: null, kind: 'single', latency_ms: 1, inputs: new Uint8Array(0), output: '{}' }));
        await insertRows(replicas[0]!.backends.store.db, rows);
      };
      let clock = 10 * MINUTE;
      const logs = replicas.map(
        (ctx) => new PredictionLog({ store: ctx.backends.store, metrics: new Metrics(), log, now: () => clock }, { sampleRate: 1, bufferRows: 10, retentionDays: 0, maxRows: 150, retentionMs: MINUTE }),
      );
      assert.equal(await count(), 200);
      await logs[0]!.enforceRetention();
      assert.equal(await count(), 150);
      // The other replica's timer, in the same period: done already, nothing deleted.
      await add(20);
      await logs[1]!.enforceRetention();
      assert.equal(await count(), 170);
      // The next period: whichever replica comes first deletes again.
      clock += MINUTE;
      await logs[1]!.enforceRetention();
      await logs[0]!.enforceRetention();
      assert.equal(await count(), 150);
    });

    test('a check that comes intervals after the last one still covers the traffic logged since that one', async () => {
      // A clock far past the other tests' intervals; a check there claims its interval (no traffic).
      const start = (Math.floor(Date.now() / MINUTE) + 100) * MINUTE;
      let clock = start;
      const drift = driftOf(replicas[0]!, 60, () => clock);
      await drift.runChecks();
      const before = (await replicas[0]!.services.drift.history(MODEL, 50)).reports.length;
      // Traffic right after that check, then the next check only three intervals later (a busy
      // process whose timer waited): it must still see that traffic.
      const input = new Float32Array(2 * 50);
      const live = [values(50, 5, 2), values(50, 6, 0)];
      for (let i = 0; i < 50; i++) [input[2 * i], input[2 * i + 1]] = [live[0]![i]!, live[1]![i]!];
      const rows = Array.from({ length: 50 }, (_, i) => ({ at: start + 1000, model: MODEL, version: '1', request_id: null, kind: 'single', latency_ms: 1, inputs: inputBytes(input, i, 2), output: '{"prediction":"yes"}' }));
      await insertRows(replicas[0]!.backends.store.db, rows);
      clock = start + 3 * MINUTE + 1000;
      await drift.runChecks();
      assert.equal((await replicas[0]!.services.drift.history(MODEL, 50)).reports.length, before + 1);
    });
  });
}
