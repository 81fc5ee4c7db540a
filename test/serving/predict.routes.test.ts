import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BatchPredictionSchema, SinglePredictionSchema } from '../../src/serving/serving.schemas.ts';
import { buildServingApp, categoricalRegressor, linearClassifier, linearRegressor, type ServingTestApp } from './harness.ts';

const NAMES = ['mean radius', 'texture', 'a/b'];
// Class 1 when x0 > x1 (logistic on x0 - x1).
const BINARY = linearClassifier(NAMES, [0, 1], [[4, -4, 0]]);
const STRINGS = linearClassifier(['x', 'y'], ['setosa', 'versicolor', 'virginica'], [[1, 0], [0, 1], [-1, -1]]);

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

interface Single {
  prediction: number | string | number[];
  probability?: number[];
  classes?: (number | string)[];
  confidence?: number;
  model_name: string;
  model_version: string;
  stage: string | null;
  cached: boolean;
  features_processed: number;
  request_id: string;
}

void describe('prediction routes', () => {
  let t: ServingTestApp;
  before(async () => {
    t = await buildServingApp({
      env: { MODEL_NAME: 'cancer', MAX_BATCH_SIZE: '50' },
      seed: async (r) => {
        await r.register('cancer', BINARY, {}, 'Production');
        await r.register('iris', STRINGS, {}, 'Production');
        await r.register('price', linearRegressor(['a', 'b'], [2, 3], 1), {}, 'Staging');
        await r.register('colours', categoricalRegressor(), {}, 'Production');
      },
    });
  });
  after(() => t.close());

  const post = (url: string, payload: unknown, role: 'predict' | 'read' | 'admin' = 'predict', headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url, payload: payload as object, headers: { ...t.headers(role), ...headers } });

  test('the default model is loaded before ready', async () => {
    const ready = await t.app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 200, ready.body);
    assert.equal(ready.json<{ checks: Record<string, { ok: boolean }> }>().checks['model']?.ok, true);
    const ping = await t.app.inject({ url: '/ping' });
    assert.equal(ping.statusCode, 200);
  });

  test('positional, named object and top-level named forms give the same answer', async () => {
    const forms = [{ features: [3, 1, 0] }, { features: { 'mean radius': 3, texture: 1, 'a/b': 0 } }, { 'mean radius': 3, texture: 1, 'a/b': 0 }];
    for (const body of forms) {
      const res = await post('/predict', body);
      assert.equal(res.statusCode, 200, res.body);
      const j = res.json<Single>();
      assert.ok(Value.Check(SinglePredictionSchema, j), res.body);
      assert.equal(j.prediction, 1);
      assert.deepEqual(j.classes, [0, 1]);
      assert.equal(j.model_name, 'cancer');
      assert.equal(j.model_version, '1');
      assert.equal(j.stage, 'Production');
      assert.equal(j.features_processed, 3);
      assert.equal(j.probability?.length, 2);
      assert.ok(Math.abs(j.probability[0]! + j.probability[1]! - 1) < 1e-6);
      assert.equal(j.confidence, Math.max(...j.probability));
      assert.equal(res.headers['x-request-id'], j.request_id);
    }
  });

  test('string labels stay strings; regressors give a number without probabilities', async () => {
    const iris = await post('/predict?model=iris', { features: [5, 0] });
    assert.equal(iris.statusCode, 200, iris.body);
    assert.equal(iris.json<Single>().prediction, 'setosa');
    assert.deepEqual(iris.json<Single>().classes, ['setosa', 'versicolor', 'virginica']);
    const price = await post('/predict/staging?model=price', { a: 1, b: 2 });
    assert.equal(price.statusCode, 200, price.body);
    const j = price.json<Single>();
    assert.ok(Value.Check(SinglePredictionSchema, j), price.body);
    assert.equal(j.prediction, 9);
    assert.equal(j.probability, undefined);
    assert.equal(j.classes, undefined);
    assert.equal(j.stage, 'Staging');
    const byPath = await post('/models/price/predict?stage=Staging', { features: [0, 0] });
    assert.equal(byPath.json<Single>().prediction, 1);
  });

  test('categorical features take category strings; unseen categories are missing', async () => {
    const res = await post('/predict?model=colours', { colour: 'blue', size: 3 });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<Single>().prediction, 23);
    const bad = await post('/predict?model=colours', { colour: 4.5, size: 'big' });
    assert.equal(bad.statusCode, 400);
    assert.ok(bad.json<{ errors: { path: string }[] }>().errors.some((e) => e.path === '/size'));
  });

  test('model selection: version, stage, alias, unknown model and conflicting selectors', async () => {
    t.registry.setAlias('iris', 'champion', 1);
    assert.equal((await post('/predict?model=iris&alias=champion', { features: [0, 5] })).json<Single>().prediction, 'versicolor');
    assert.equal((await post('/predict?model=iris&version=1', { features: [0, 5] })).statusCode, 200);
    const unknown = await post('/predict?model=nope', { features: [1] });
    assert.equal(unknown.statusCode, 404, unknown.body);
    assert.equal((await post('/predict?model=iris&version=9', { features: [1, 2] })).statusCode, 404);
    assert.equal((await post('/predict?model=iris&alias=gone', { features: [1, 2] })).statusCode, 404);
    const both = await post('/predict?model=iris&version=1&stage=Production', { features: [1, 2] });
    assert.equal(both.statusCode, 400);
    assert.equal((await post('/predict?model=price', { features: [1, 2] })).statusCode, 200, 'falls back to Staging');
  });

  test('validation errors are 400s naming the field', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ features: [1, 2] }, '/features', /3 feature values/],
      [{ features: [1, 'x', 3] }, '/features/1', /finite number/],
      [{ features: [1, null, 3] }, '/features/1', /finite number/],
      [{ features: [1, 1e39, 3] }, '/features/1', /float32/],
      [{ 'mean radius': 1, texture: 2 }, '/a~1b', /missing/],
      [{ 'mean radius': 1, texture: 2, 'a/b': 3, extra: 4 }, '/extra', /not a feature/],
      [{ features: 'abc' }, '/features', /array of 3/],
    ];
    for (const [body, path, message] of cases) {
      const res = await post('/predict', body);
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      const j = res.json<{ error: string; details: string; errors: { path: string; message: string }[]; request_id: string }>();
      assert.equal(j.error, 'validation_error');
      const hit = j.errors.find((e) => e.path === path);
      assert.ok(hit, `${JSON.stringify(body)} -> ${res.body}`);
      assert.match(hit.message, message);
    }
    const named = await post('/predict', { 'mean radius': 1, texture: 2, bogus: 3 });
    assert.match(named.json<{ details: string }>().details, /missing features: a\/b; unknown features: bogus/);
    // 1e999 parses as Infinity.
    const inf = await t.app.inject({ method: 'POST', url: '/predict', payload: '{"features":[1,1e999,3]}', headers: { ...t.headers('predict'), 'content-type': 'application/json' } });
    assert.equal(inf.statusCode, 400);
    assert.match(inf.body, /finite/);
    const nan = await t.app.inject({ method: 'POST', url: '/predict', payload: '{"features":[1,NaN,3]}', headers: { ...t.headers('predict'), 'content-type': 'application/json' } });
    assert.equal(nan.statusCode, 400);
    const notObject = await post('/predict', [1, 2, 3]);
    assert.equal(notObject.statusCode, 400);
  });

  test('auth: no key 401, read key 403', async () => {
    assert.equal((await t.app.inject({ method: 'POST', url: '/predict', payload: { features: [1, 2, 3] } })).statusCode, 401);
    assert.equal((await post('/predict', { features: [1, 2, 3] }, 'read')).statusCode, 403);
  });

  test('a body arriving in many chunks is read as one; broken or short bodies are 400', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({ 'mean radius': i % 7, texture: (i * 3) % 5, 'a/b': i / 10 }));
    const text = JSON.stringify({ records: rows });
    const inChunks = (s: string, size: number): Readable => Readable.from(Array.from({ length: Math.ceil(s.length / size) }, (_, k) => Buffer.from(s.slice(k * size, k * size + size))));
    const send = (payload: Readable, headers: Record<string, string> = {}) =>
      t.app.inject({ method: 'POST', url: '/batch-predict', payload, headers: { ...t.headers('predict'), 'content-type': 'application/json', ...headers } });
    const whole = await post('/batch-predict', { records: rows });
    assert.equal(whole.statusCode, 200, whole.body);
    for (const size of [1, 37, 1000]) {
      const streamed = await send(inChunks(text, size));
      assert.equal(streamed.statusCode, 200, streamed.body);
      assert.deepEqual(streamed.json<{ predictions: unknown }>().predictions, whole.json<{ predictions: unknown }>().predictions);
    }
    const broken = await send(inChunks('{"records": [{"mean radius": 1, "texture": }]}', 10));
    assert.equal(broken.statusCode, 400);
    assert.match(broken.body, /not valid JSON/);
    const short = await send(inChunks(text, 100), { 'content-length': String(text.length + 5) });
    assert.equal(short.statusCode, 400, short.body);
  });

  test('batch forms answer in input order; empty and oversized batches are 400', async () => {
    const rows = Array.from({ length: 20 }, (_, i) => [i % 2 === 0 ? 5 : 0, i % 2 === 0 ? 0 : 5, i]);
    const expected = rows.map((r) => (r[0]! > r[1]! ? 1 : 0));
    const bodies = [
      { records: rows },
      { records: rows.map((r) => ({ 'mean radius': r[0], texture: r[1], 'a/b': r[2] })) },
      { features_list: rows },
      { instances: rows.map((r) => ({ 'mean radius': r[0], texture: r[1], 'a/b': r[2] })) },
    ];
    for (const url of ['/predict/batch', '/batch-predict']) {
      for (const body of bodies) {
        const res = await post(url, body);
        assert.equal(res.statusCode, 200, res.body);
        const j = res.json<{ predictions: { prediction: number }[]; count: number; model_name: string }>();
        assert.ok(Value.Check(BatchPredictionSchema, j), res.body);
        assert.equal(j.count, 20);
        assert.deepEqual(
          j.predictions.map((p) => p.prediction),
          expected,
        );
      }
    }
    assert.equal((await post('/predict/batch', { records: [] })).statusCode, 400);
    const big = await post('/predict/batch', { records: Array.from({ length: 51 }, () => [1, 2, 3]) });
    assert.equal(big.statusCode, 400);
    assert.match(big.body, /at most 50/);
    const bad = await post('/predict/batch', { records: [[1, 2, 3], { 'mean radius': 1 }] });
    assert.equal(bad.statusCode, 400);
    assert.ok(bad.json<{ errors: { path: string }[] }>().errors.some((e) => e.path === '/records/1/texture'));
    assert.equal((await post('/predict/batch', { rows: [[1, 2, 3]] })).statusCode, 400);
  });

  test('concurrent requests, packed into shared runs and reusing row buffers, each get their own rows answered', async () => {
    // price = 2a + 3b + 1: every row has its own answer. Some rows are seen three times first, so
    // that batches mixing cached and new rows take the cache path (misses packed into a buffer of
    // their own); sizes repeat, so buffers given back are taken again.
    const price = (a: number, b: number): number => 2 * a + 3 * b + 1;
    for (let k = 0; k < 3; k++) for (let i = 0; i < 5; i++) await post('/predict/batch?model=price&stage=Staging', { features_list: [[i, 1000]] });
    let next = 0;
    const fresh = (): [number, number] => {
      next++;
      return [next, next % 7];
    };
    const checks: Promise<void>[] = [];
    for (let r = 0; r < 120; r++) {
      if (r % 3 === 0) {
        const [a, b] = fresh();
        checks.push(
          post('/predict/staging?model=price', { a, b }).then((res) => {
            assert.equal(res.statusCode, 200, res.body);
            assert.equal(res.json<Single>().prediction, price(a, b));
          }),
        );
      } else {
        const rows: [number, number][] = Array.from({ length: 1 + (r % 4) }, () => fresh());
        if (r % 5 === 0) rows.splice(1, 0, [r % 5, 1000]);
        const body = r % 2 === 0 ? { features_list: rows } : { records: rows.map(([a, b]) => ({ a, b })) };
        checks.push(
          post('/predict/batch?model=price&stage=Staging', body).then((res) => {
            assert.equal(res.statusCode, 200, res.body);
            assert.deepEqual(
              res.json<{ predictions: { prediction: number }[] }>().predictions.map((p) => p.prediction),
              rows.map(([a, b]) => price(a, b)),
            );
          }),
        );
      }
    }
    await Promise.all(checks);
  });

  test('prediction cache: stored the second time a row is seen, hit from then on, cleared by DELETE /predict/cache', async () => {
    const body = { features: [0.25, 0.5, 0.75] };
    const first = await post('/predict', body);
    const second = await post('/predict', body);
    const third = await post('/predict', body);
    assert.equal(first.json<Single>().cached, false);
    assert.equal(second.json<Single>().cached, false);
    assert.equal(third.json<Single>().cached, true);
    assert.deepEqual(third.json<Single>().probability, first.json<Single>().probability);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/predict/cache', headers: t.headers('predict') })).statusCode, 403);
    const cleared = await t.app.inject({ method: 'DELETE', url: '/predict/cache', headers: t.headers('admin') });
    assert.equal(cleared.statusCode, 200);
    assert.ok(cleared.json<{ cleared: number }>().cleared >= 1);
    // Sightings are forgotten too: the row is new again.
    assert.equal((await post('/predict', body)).json<Single>().cached, false);
    assert.equal((await post('/predict', body)).json<Single>().cached, false);
  });

  test('model metadata, features, health and reload', async () => {
    const meta = await t.app.inject({ url: '/model/metadata', headers: t.headers('read') });
    assert.equal(meta.statusCode, 200, meta.body);
    const m = meta.json<{ name: string; version: string; task: string; features: string[]; classes: number[]; metrics: Record<string, number> }>();
    assert.equal(m.name, 'cancer');
    assert.equal(m.task, 'classification');
    assert.deepEqual(m.features, NAMES);
    assert.deepEqual(m.classes, [0, 1]);
    assert.equal(m.metrics['accuracy'], 0.9);
    const features = await t.app.inject({ url: '/model/features', headers: t.headers('read') });
    assert.deepEqual(features.json(), { feature_names: NAMES, n_features: 3, types: ['numeric', 'numeric', 'numeric'] });
    const health = await t.app.inject({ url: '/health/model', headers: t.headers('read') });
    assert.equal(health.json<{ model_loaded: boolean }>().model_loaded, true);
    for (const url of ['/model/reload', '/health/model/reload']) {
      assert.equal((await t.app.inject({ method: 'POST', url, headers: t.headers('predict') })).statusCode, 403);
      const reload = await t.app.inject({ method: 'POST', url, headers: t.headers('admin') });
      assert.equal(reload.statusCode, 200, reload.body);
    }
    assert.equal((await post('/predict', { features: [3, 1, 0] })).statusCode, 200);
    const info = await t.app.inject({ url: '/info', headers: t.headers('read') });
    const serving = info.json<{ serving: { model_reloads: number; predictions_served: number } }>().serving;
    assert.ok(serving.model_reloads >= 2);
    assert.ok(serving.predictions_served > 0);
  });

  test('metrics named in API.md are exported', async () => {
    const text = (await t.app.inject({ url: '/metrics' })).body;
    for (const name of [
      'prediction_requests_total{endpoint="predict",route="/predict",status="200"}',
      'prediction_requests_successful{endpoint="/predict"}',
      'prediction_requests_failed{endpoint="/predict"}',
      'prediction_latency_seconds_bucket{le="0.0001",endpoint="/predict"}',
      'predictions_total{model="cancer",version="1",type="single"}',
      'predictions_total{model="cancer",version="1",type="batch"}',
      'prediction_duration_seconds_bucket',
      'model_status{model="cancer",version="1"} 1',
      'model_loaded 1',
      'prediction_cache_hits_total',
      'prediction_cache_misses_total',
    ]) {
      assert.ok(text.includes(name), `missing ${name} in ${text.split("\n").filter((l) => l.startsWith("model_")).join(" | ")}`);
    }
  });
});

void describe('prediction bodies over BODY_LIMIT_BYTES', () => {
  test('are 413 whether the length is declared or not', async () => {
    const t = await buildServingApp({ env: { BODY_LIMIT_BYTES: '2048', MODEL_NAME: 'cancer' }, seed: (r) => r.register('cancer', BINARY, {}, 'Production').then(() => undefined) });
    try {
      const text = JSON.stringify({ records: Array.from({ length: 400 }, () => [1, 2, 3]) });
      for (const url of ['/predict', '/batch-predict']) {
        const declared = await t.app.inject({ method: 'POST', url, payload: text, headers: { ...t.headers('predict'), 'content-type': 'application/json' } });
        assert.equal(declared.statusCode, 413, declared.body);
        assert.equal(declared.json<{ error: string }>().error, 'payload_too_large');
        const streamed = await t.app.inject({
          method: 'POST',
          url,
          payload: Readable.from([Buffer.from(text.slice(0, 1500)), Buffer.from(text.slice(1500))]),
          headers: { ...t.headers('predict'), 'content-type': 'application/json' },
        });
        assert.equal(streamed.statusCode, 413, streamed.body);
      }
    } finally {
      await t.close();
    }
  });
});
