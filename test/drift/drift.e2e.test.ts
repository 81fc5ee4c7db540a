/**
 * Drift over HTTP alone, on SQLite and PostgreSQL: upload a dataset, train a model on it, send
 * traffic from the training distribution (calm report), then shifted traffic (the shifted features
 * drift, dataset drift), the periodic check's history and gauges on /metrics, the prediction log
 * with page tokens and CSV / NDJSON export, /invocations logged too, rows checked without logging,
 * a reference set from a dataset version, and the "not enough data" answer.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { localJobContext, runTrainingJob } from '../../src/training/pipeline.ts';
import { parseTrainRequest, validateTrainRequest } from '../../src/training/train-request.ts';
import { buildTestApp, pipelineDeps, storeBackends, type TestApp } from '../helper.ts';

const FEATURES = ['f0', 'f1', 'f2', 'f3', 'f4'];
const MODEL = 'drift-e2e';

/** A seeded generator (mulberry32) and standard normals from it (Box-Muller). */
function normals(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Rows of the five features, the first `shifted` of them moved by `by` standard deviations. */
function rows(n: number, seed: number, shifted = 0, by = 0): Record<string, number>[] {
  const z = normals(seed);
  return Array.from({ length: n }, () => Object.fromEntries(FEATURES.map((f, j) => [f, Math.round((z() * (j + 1) + j + (j < shifted ? by * (j + 1) : 0)) * 1e4) / 1e4])));
}

async function poll<T>(what: string, get: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const backend of await storeBackends()) {
  describe(`drift end to end over HTTP (${backend})`, { timeout: 240_000 }, () => {
    let t: TestApp;
    const json = async (method: 'GET' | 'POST' | 'PUT', url: string, role: 'read' | 'predict' | 'train' | 'admin', payload?: object, status = 200) => {
      const res = await t.app.inject({ method, url, headers: t.headers(role), ...(payload === undefined ? {} : { payload }) });
      assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
      return res.json();
    };

    before(async () => {
      t = await buildTestApp({ backend, env: { TRAINING_WORKERS: backend === 'sqlite' ? '1' : '0', DRIFT_CHECK_INTERVAL: '0.2', DRIFT_MIN_WINDOW: '50' } });
    });
    after(async () => {
      await t?.close();
    });

    test('train, calm traffic, shifted traffic, history, metrics', async () => {
      // A dataset whose target depends on the features, and a model trained on it here.
      const train = rows(600, 1).map((r) => ({ ...r, y: r['f0']! + r['f1']! / 2 > 1 ? 1 : 0 }));
      await json('POST', '/datasets/drift-train', 'train', { rows: train }, 201);
      const request = { dataset: { name: 'drift-train' }, target: 'y', algorithm: 'logistic_regression', register_as: MODEL, promote_to: 'Production' };
      if (backend === 'sqlite') {
        const job = await json('POST', '/train', 'admin', request, 202);
        const status = await poll('training', async () => {
          const b = await json('GET', `/train/status/${job.job_id}`, 'read');
          return ['succeeded', 'failed', 'cancelled'].includes(b.status) ? b : undefined;
        });
        assert.equal(status.status, 'succeeded', JSON.stringify(status));
      } else {
        // The test harness's training worker thread cannot reach the per-test PostgreSQL schema,
        // so the same pipeline runs in this process here.
        const job = await validateTrainRequest(parseTrainRequest(request), t.services.datasets, 'test');
        await runTrainingJob(job, localJobContext({}), pipelineDeps(t));
      }

      // Before any traffic: not enough data, no guess.
      const empty = await json('GET', `/drift/${MODEL}`, 'read');
      assert.equal(empty.status, 'not_enough_data');
      assert.equal(empty.dataset_drift, null);
      assert.match(empty.message, /not enough data/);

      // Calm traffic: one batch and some single predictions.
      await json('POST', `/predict/batch?model=${MODEL}`, 'predict', { records: rows(300, 2) });
      for (const r of rows(20, 3)) await json('POST', `/predict?model=${MODEL}`, 'predict', { features: r });
      const calm = await json('GET', `/drift/${MODEL}?window=320`, 'read');
      assert.equal(calm.status, 'ok');
      assert.equal(calm.current_rows, 320);
      assert.equal(calm.reference.source, 'training');
      assert.equal(calm.features.length, FEATURES.length);
      assert.equal(calm.dataset_drift, false, JSON.stringify(calm.features.map((f: { feature: string; p_value: number }) => [f.feature, f.p_value])));
      for (const f of calm.features) {
        assert.equal(f.method, 'ks');
        assert.equal(f.threshold, 0.05);
        assert.equal(typeof f.p_value, 'number');
        assert.equal(f.null_rate, 0);
      }

      // Shifted traffic: f0, f1, f2 move by 1.5 standard deviations.
      await json('POST', `/predict/batch?model=${MODEL}`, 'predict', { records: rows(300, 4, 3, 1.5) });
      const shifted = await json('GET', `/drift/${MODEL}?window=300`, 'read');
      const drifted = shifted.features.filter((f: { drifted: boolean }) => f.drifted).map((f: { feature: string }) => f.feature);
      assert.deepEqual(drifted, ['f0', 'f1', 'f2']);
      assert.equal(shifted.dataset_drift, true);
      assert.equal(shifted.share_drifted, 0.6);

      // The periodic check stores the report and sets the gauges.
      const history = await poll('a drifted report in the history', async () => {
        const h = await json('GET', `/drift/${MODEL}/history?limit=5`, 'read');
        return h.reports.length > 0 && h.reports[0].dataset_drift === true ? h : undefined;
      });
      assert.equal(history.reports[0].model, MODEL);
      const metrics = (await t.app.inject({ url: '/metrics' })).body;
      assert.match(metrics, new RegExp(`dataset_drift_share\\{model="${MODEL}"\\} 0\\.[1-9]`));
      assert.match(metrics, new RegExp(`drift_detected\\{model="${MODEL}",feature="f0"\\} 1`));
      assert.match(metrics, new RegExp(`drift_detected\\{model="${MODEL}",feature="f4"\\} 0`));
      assert.match(metrics, new RegExp(`drift_score\\{model="${MODEL}",feature="f0",method="ks"\\}`));
      assert.match(metrics, /prediction_log_dropped_total 0/);
      assert.match(metrics, /prediction_log_written_total [1-9]/);
      assert.match(metrics, new RegExp(`dataset_drift_detected\\{model="${MODEL}"\\} 1`));
      // Every metric the dashboard's drift panels query is exported.
      const dashboard = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../deploy/grafana/dashboards/modelplane.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
      const driftPanels = dashboard.panels.filter((p) => /drift|prediction log/i.test(p.title) && p.targets !== undefined);
      assert.ok(driftPanels.length >= 5);
      for (const p of driftPanels) for (const target of p.targets!) for (const m of target.expr.matchAll(/([a-z_]+)\{/g)) assert.match(metrics, new RegExp(`^# TYPE ${m[1]} `, 'm'), p.title);

      // PSI on request.
      const psi = await json('GET', `/drift/${MODEL}?window=300&method=psi`, 'read');
      assert.ok(psi.features.every((f: { method: string; threshold: number }) => f.method === 'psi' && f.threshold === 0.1));
      assert.equal(psi.features[0].drifted, true);
    });

    test('the prediction log: filters, page tokens, CSV and NDJSON export, /invocations', async () => {
      await json('POST', `/invocations?model=${MODEL}`, 'predict', { dataframe_records: rows(3, 9) });
      const page1 = await json('GET', `/predictions?model=${MODEL}&limit=100`, 'read');
      assert.equal(page1.predictions.length, 100);
      assert.ok(page1.next_page_token);
      const first = page1.predictions[0];
      assert.deepEqual(Object.keys(first.inputs), FEATURES);
      assert.equal(first.model, MODEL);
      assert.equal(first.version, '1');
      assert.equal(first.kind, 'batch');
      assert.ok('prediction' in first.output);
      const page2 = await json('GET', `/predictions?model=${MODEL}&limit=100&page_token=${page1.next_page_token}`, 'read');
      assert.ok(page2.predictions[0].id > page1.predictions[99].id);

      const all = await json('GET', `/predictions?model=${MODEL}&since=1h&limit=1000`, 'read');
      assert.equal(all.predictions.length, 623);
      const singles = all.predictions.filter((p: { kind: string }) => p.kind === 'single');
      assert.equal(singles.length, 20);
      assert.ok(singles.every((p: { request_id: string | null }) => typeof p.request_id === 'string'));
      assert.equal(all.predictions.filter((p: { kind: string }) => p.kind === 'invocations').length, 3);
      assert.equal((await json('GET', `/predictions?model=${MODEL}&until=2000-01-01T00:00:00Z`, 'read')).predictions.length, 0);
      assert.equal((await json('GET', `/predictions?model=no-such-model`, 'read')).predictions.length, 0);

      const csv = await t.app.inject({ url: `/predictions?model=${MODEL}&since=1h`, headers: { ...t.headers('read'), accept: 'text/csv' } });
      assert.equal(csv.statusCode, 200);
      assert.match(String(csv.headers['content-type']), /^text\/csv/);
      const lines = csv.body.trim().split('\n');
      assert.equal(lines.length, 624);
      assert.equal(lines[0], 'id,timestamp,model,version,request_id,kind,latency_ms,f0,f1,f2,f3,f4,prediction,output');

      const nd = await t.app.inject({ url: `/predictions?model=${MODEL}&limit=10`, headers: { ...t.headers('read'), accept: 'application/x-ndjson' } });
      const objs = nd.body.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(objs.length, 10);
      assert.equal(objs[0].model, MODEL);

      assert.equal((await t.app.inject({ url: '/predictions?since=yesterday', headers: t.headers('read') })).statusCode, 400);
      assert.equal((await t.app.inject({ url: '/predictions?page_token=bogus', headers: t.headers('read') })).statusCode, 400);
      assert.equal((await t.app.inject({ url: '/predictions' })).statusCode, 401);
    });

    test('rows checked without logging; reference from a dataset version; errors', async () => {
      const before = (await json('GET', `/predictions?model=${MODEL}&since=1h&limit=1000`, 'read')).predictions.length;
      const calm = await json('POST', `/drift/${MODEL}/check`, 'predict', { records: rows(200, 11) });
      assert.equal(calm.window.source, 'request');
      assert.equal(calm.dataset_drift, false);
      const asArrays = await json('POST', `/drift/${MODEL}/check`, 'predict', { records: rows(200, 12, 5, 2).map((r) => FEATURES.map((f) => r[f])) });
      assert.equal(asArrays.drifted_features, 5);
      assert.equal((await json('GET', `/predictions?model=${MODEL}&since=1h&limit=1000`, 'read')).predictions.length, before);

      const bad = await json('POST', `/drift/${MODEL}/check`, 'predict', { records: [[1, 2]] }, 400);
      assert.match(JSON.stringify(bad), /records\/0/);
      await json('POST', '/drift/no-such-model/check', 'predict', { records: [{ f0: 1 }] }, 404);
      await json('GET', `/drift/${MODEL}?since=soon`, 'read', undefined, 400);

      // A larger reference from a dataset version switches to the distance tests.
      await json('POST', '/datasets/drift-big', 'train', { rows: rows(3000, 21) }, 201);
      const ref = await json('PUT', `/drift/${MODEL}/reference`, 'train', { dataset: 'drift-big' });
      assert.deepEqual(ref, { model: MODEL, version: '1', source: 'dataset', rows: 3000, features: 5, dataset: { name: 'drift-big', version: 1 } });
      const big = await json('POST', `/drift/${MODEL}/check`, 'predict', { records: rows(2000, 22, 2, 1.5) });
      assert.equal(big.reference.source, 'dataset');
      assert.ok(big.features.every((f: { method: string }) => f.method === 'wasserstein'));
      assert.deepEqual(
        big.features.filter((f: { drifted: boolean }) => f.drifted).map((f: { feature: string }) => f.feature),
        ['f0', 'f1'],
      );
      await json('POST', '/datasets/drift-missing', 'train', { rows: [{ f0: 1, f1: 2 }] }, 201);
      const missing = await json('PUT', `/drift/${MODEL}/reference`, 'train', { dataset: 'drift-missing' }, 400);
      assert.match(missing.details, /f2/);
      await json('PUT', `/drift/${MODEL}/reference`, 'predict', { dataset: 'drift-big' }, 403);
    });
  });
}
