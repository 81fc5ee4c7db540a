/**
 * The seed service's names keep working beside modelplane's own (#12, README "Seed service
 * compatibility"), plus the consistency fixes of the same issue.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';
import { classifierOnnx, multipart } from '../registry/fixtures.ts';

describe('seed names and consistency (#12)', { timeout: 300_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ env: { MODEL_NAME: 'wine', API_TITLE: 'Wine Quality API', API_VERSION: '2.3.0' } });
    const h = t.headers('admin');
    for (const name of ['wine', 'other', 'empty']) {
      if (name === 'empty') {
        assert.equal((await t.app.inject({ method: 'POST', url: '/models', headers: h, payload: { name } })).statusCode, 201);
        continue;
      }
      const mp = multipart({}, { bytes: classifierOnnx() });
      const up = await t.app.inject({ method: 'POST', url: `/models/${name}/versions`, headers: { ...h, ...mp.headers }, payload: mp.payload });
      assert.equal(up.statusCode, 201, up.body);
      const prod = await t.app.inject({ method: 'POST', url: '/models/transition', headers: h, payload: { name, version: 1, stage: 'Production' } });
      assert.equal(prod.statusCode, 200, prod.body);
    }
  });
  after(async () => {
    await t?.close();
  });

  it('/health/ with a trailing slash answers like /health', async () => {
    const res = await t.app.inject({ url: '/health/' });
    assert.equal(res.statusCode, 200, res.body);
  });

  it('predict takes the seed body {"wine_features": {...}}', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/predict', headers: t.headers('admin'), payload: { wine_features: { a: 1, b: 2 } } });
    assert.equal(res.statusCode, 200, res.body);
    const bad = await t.app.inject({ method: 'POST', url: '/predict', headers: t.headers('admin'), payload: { wine_features: { a: 'x', b: 2 } } });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /\/wine_features\/a/);
  });

  it('API_TITLE and API_VERSION name the OpenAPI document', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<{ info: { title: string; version: string } }>();
    assert.deepEqual({ title: doc.info.title, version: doc.info.version }, { title: 'Wine Quality API', version: '2.3.0' });
  });

  it('prediction_requests_total carries endpoint="predict" and status beside route', async () => {
    await t.app.inject({ method: 'POST', url: '/predict', headers: t.headers('admin'), payload: { features: [1, 2] } });
    await t.app.inject({ method: 'POST', url: '/predict', headers: t.headers('admin'), payload: { features: ['x'] } });
    const text = (await t.app.inject({ url: '/metrics' })).body;
    assert.match(text, /^prediction_requests_total\{endpoint="predict",route="\/predict",status="200"\} \d+/m);
    assert.match(text, /^prediction_requests_total\{endpoint="predict",route="\/predict",status="400"\} \d+/m);
    assert.match(text, /^prediction_requests_successful\{endpoint="\/predict"\} \d+/m, 'the other prediction metrics keep their route templates');
  });

  it('/model/metadata has top-level accuracy and f1_score and honours ?model=', async () => {
    const h = t.headers('read');
    const def = (await t.app.inject({ url: '/model/metadata', headers: h })).json<Record<string, unknown>>();
    assert.equal(def['name'], 'wine');
    assert.ok('accuracy' in def && 'f1_score' in def, JSON.stringify(def));
    const other = await t.app.inject({ url: '/model/metadata?model=other', headers: h });
    assert.equal(other.json<{ name: string }>().name, 'other', other.body);
    const none = await t.app.inject({ url: '/model/metadata?model=nope', headers: h });
    assert.equal(none.statusCode, 404, none.body);
  });

  it('a model that exists without a version says so', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/predict?model=empty', headers: t.headers('admin'), payload: { features: [1, 2] } });
    assert.equal(res.statusCode, 404, res.body);
    assert.match(res.json<{ details: string }>().details, /'empty' has no version yet/);
  });

  it('/health/gpu and training_jobs use the API\'s naming', async () => {
    const gpu = (await t.app.inject({ url: '/health/gpu', headers: t.headers('read') })).json<Record<string, unknown>>();
    assert.ok(Object.keys(gpu).every((k) => /^[a-z_]+$/.test(k)), JSON.stringify(gpu));
    const text = (await t.app.inject({ url: '/metrics' })).body;
    assert.match(text, /^# TYPE training_jobs gauge$/m);
    assert.doesNotMatch(text, /training_jobs_total/);
  });
});
