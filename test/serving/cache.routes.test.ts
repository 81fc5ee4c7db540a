/**
 * The prediction cache seen through HTTP: batch requests answered partly from the cache (in
 * memory and in Redis), and two app instances sharing one real Redis (TEST_REDIS_URL) the way API
 * replicas do. Each app uses its own Redis key prefix, removed at the end.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { Serving } from '../../src/serving/index.ts';
import { buildTestApp, redisKeysUnder, TEST_REDIS_URL, type TestApp } from '../helper.ts';
import { buildServingApp, linearClassifier, linearRegressor, type ServingTestApp } from './harness.ts';

// y = 2a + 3b + 1: small integer rows give exact answers, so order and values are easy to check.
const REGRESSOR = linearRegressor(['a', 'b'], [2, 3], 1);
// Constant answers, so which version answered is visible in the label.
const OLD = linearClassifier(['a', 'b'], ['old', 'new'], [[0, 0]], [-10]);
const NEW = linearClassifier(['a', 'b'], ['old', 'new'], [[0, 0]], [10]);

let admin: Redis;
const prefixes: string[] = [];

function uniquePrefix(): string {
  const prefix = `modelplane-test:pred:${randomUUID()}:`;
  prefixes.push(prefix);
  return prefix;
}

/** Keys under a prefix (read straight from Redis, not through the cache). */
const keysUnder = (prefix: string): Promise<string[]> => redisKeysUnder(admin, prefix);

before(async () => {
  admin = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  await admin.ping();
});

after(async () => {
  for (const prefix of prefixes) {
    const keys = await keysUnder(prefix);
    if (keys.length > 0) await admin.unlink(...keys);
  }
  await admin.quit();
});

const counterValue = async (c: Serving['metrics']['cacheHits']): Promise<number> => (await c.get()).values[0]?.value ?? 0;

for (const backend of ['memory', 'redis'] as const) {
  void describe(`batch predictions through the prediction cache (${backend})`, () => {
    let t: ServingTestApp;
    let prefix: string;
    before(async () => {
      prefix = uniquePrefix();
      t = await buildServingApp({
        // Every answer is stored on both backends here (Redis' default), so the hit counts below are
        // the same for both; the in-memory default (store rows seen twice) has its own tests.
        env: { MODEL_NAME: 'price', MAX_BATCH_SIZE: '50', PREDICTION_CACHE_ADMIT: 'always', ...(backend === 'redis' ? { REDIS_URL: TEST_REDIS_URL, PREDICTION_CACHE_TTL: '120' } : {}) },
        seed: async (r) => {
          await r.register('price', REGRESSOR, {}, 'Production');
          await r.register('iris', linearClassifier(['x', 'y'], ['setosa', 'versicolor', 'virginica'], [[1, 0], [0, 1], [-1, -1]]), {}, 'Production');
        },
        cache: { redisPrefix: prefix },
      });
      assert.equal(t.serving.cache?.kind, backend);
    });
    after(() => t.close());

    const batch = async (rows: number[][], url = '/predict/batch', query = '') => {
      const res = await t.app.inject({ method: 'POST', url: url + query, payload: { features_list: rows }, headers: t.headers('predict') });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{ predictions: Record<string, unknown>[]; count: number; model_name: string; model_version: string }>();
    };
    /** Hits, misses and model runs (rows and calls) since the last call. */
    const counter = () => {
      const m = t.serving.service.defaultModel!;
      let last = { hits: 0, misses: 0, runs: 0, rows: 0 };
      const read = async () => {
        const s = m.batcher.stats();
        return { hits: await counterValue(t.serving.metrics.cacheHits), misses: await counterValue(t.serving.metrics.cacheMisses), runs: s.runs, rows: Math.round(s.runs * s.mean_rows_per_run) };
      };
      return async () => {
        const now = await read();
        const delta = { hits: now.hits - last.hits, misses: now.misses - last.misses, runs: now.runs - last.runs, rows: now.rows - last.rows };
        last = now;
        return delta;
      };
    };
    const settle = () => new Promise((r) => setTimeout(r, backend === 'redis' ? 30 : 0));

    test('misses go to the model, hits do not, answers stay in input order', async () => {
      const since = counter();
      await since();
      const first = await batch([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      assert.deepEqual(first.predictions, [{ prediction: 6 }, { prediction: 11 }, { prediction: 16 }]);
      assert.deepEqual(await since(), { hits: 0, misses: 3, runs: 1, rows: 3 });
      await settle();
      if (backend === 'redis') {
        // PREDICTION_CACHE_TTL reached the cache: batch writes carry it.
        const keys = await keysUnder(prefix);
        assert.equal(keys.length, 3);
        for (const key of keys) {
          const ttl = await admin.ttl(key);
          assert.ok(ttl > 100 && ttl <= 120, `ttl ${ttl}`);
        }
      }

      // Two cached rows around two new ones (one given twice): only the new rows run.
      const mixed = await batch([
        [4, 4],
        [2, 2],
        [1, 1],
        [4, 4],
        [5, 0],
      ]);
      assert.deepEqual(mixed.predictions, [{ prediction: 21 }, { prediction: 11 }, { prediction: 6 }, { prediction: 21 }, { prediction: 11 }]);
      assert.equal(mixed.count, 5);
      assert.deepEqual(await since(), { hits: 2, misses: 3, runs: 1, rows: 3 });
      await settle();

      // Everything cached: the model is not called at all; the other route shares the entries.
      const cached = await batch(
        [
          [5, 0],
          [3, 3],
          [4, 4],
        ],
        '/batch-predict',
      );
      assert.deepEqual(cached.predictions, [{ prediction: 11 }, { prediction: 16 }, { prediction: 21 }]);
      assert.deepEqual(await since(), { hits: 3, misses: 0, runs: 0, rows: 0 });
      assert.deepEqual(Object.keys(cached).sort(), ['count', 'model_name', 'model_version', 'predictions', 'processing_time_ms']);
    });

    test('single and batch requests share entries both ways', async () => {
      const single = async (row: number[]) => {
        const res = await t.app.inject({ method: 'POST', url: '/predict', payload: { features: row }, headers: t.headers('predict') });
        return res.json<{ prediction: number; cached: boolean }>();
      };
      await batch([[7, 7]]);
      await settle();
      const hit = await single([7, 7]);
      assert.deepEqual([hit.prediction, hit.cached], [36, true]);
      await single([8, 1]);
      await settle();
      const since = counter();
      await since();
      assert.deepEqual((await batch([[8, 1]])).predictions, [{ prediction: 20 }]);
      assert.deepEqual(await since(), { hits: 1, misses: 0, runs: 0, rows: 0 });
    });

    test('classifier rows answered from the cache are the same as computed ones', async () => {
      const rows = [
        [0.5, 0.1],
        [-1, 2],
        [3, 3],
      ];
      const computed = await batch(rows, '/predict/batch', '?model=iris');
      await settle();
      const fromCache = await batch(rows, '/predict/batch', '?model=iris');
      assert.deepEqual(fromCache.predictions, computed.predictions);
      assert.deepEqual(Object.keys(computed.predictions[0]!), ['prediction', 'probability', 'confidence']);
      assert.equal(fromCache.model_name, 'iris');
      const iris = t.serving.service.loadedModels().find((m) => m.identity.name === 'iris')!;
      assert.equal(iris.cacheHits, 3);
    });

    test('DELETE /predict/cache empties what batches filled', async () => {
      await batch([[9, 9]]);
      await settle();
      const denied = await t.app.inject({ method: 'DELETE', url: '/predict/cache', headers: t.headers('predict') });
      assert.equal(denied.statusCode, 403);
      const cleared = await t.app.inject({ method: 'DELETE', url: '/predict/cache', headers: t.headers('admin') });
      assert.equal(cleared.statusCode, 200);
      assert.ok(cleared.json<{ cleared: number }>().cleared >= 1);
      const since = counter();
      await since();
      await batch([[9, 9]]);
      assert.deepEqual(await since(), { hits: 0, misses: 1, runs: 1, rows: 1 });
    });
  });
}

void describe('API replicas sharing one Redis', () => {
  const prefix = uniquePrefix();
  const name = `shared-${randomUUID().slice(0, 8)}`;
  const apps: TestApp[] = [];
  const headers = { 'content-type': 'application/octet-stream' };

  /** A full app (real registry on its own store) whose prediction cache lives under `prefix` in the shared Redis. */
  const replica = async (): Promise<TestApp> => {
    const t = await buildTestApp({
      env: { REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_PER_MINUTE: '0' },
      backends: { predictionCache: { redisPrefix: prefix } },
    });
    apps.push(t);
    return t;
  };

  /** Registers `bytes` as the next version of the model and moves it to Production. */
  const publish = async (t: TestApp, bytes: Uint8Array): Promise<number> => {
    const up = await t.app.inject({ method: 'POST', url: `/models/${name}/versions`, payload: Buffer.from(bytes), headers: { ...headers, ...t.headers('train') } });
    assert.equal(up.statusCode, 201, up.body);
    const version = up.json<{ version: number }>().version;
    const moved = await t.app.inject({ method: 'POST', url: '/models/transition', payload: { name, version, stage: 'Production' }, headers: t.headers('admin') });
    assert.equal(moved.statusCode, 200, moved.body);
    return version;
  };

  const predict = async (t: TestApp, features: number[]) => {
    const res = await t.app.inject({ method: 'POST', url: `/models/${name}/predict`, payload: { features }, headers: t.headers('predict') });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ prediction: string; model_version: string; cached: boolean }>();
  };
  const predictBatch = async (t: TestApp, rows: number[][]) => {
    const res = await t.app.inject({ method: 'POST', url: `/predict/batch?model=${name}`, payload: { records: rows }, headers: t.headers('predict') });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ predictions: { prediction: string }[]; model_version: string }>();
  };
  /** Waits for fire-and-forget cache writes to reach Redis. */
  const written = async (count: number) => {
    for (let i = 0; i < 100 && (await keysUnder(prefix)).length < count; i++) await new Promise((r) => setTimeout(r, 10));
  };

  let a: TestApp;
  let b: TestApp;
  before(async () => {
    a = await replica();
    b = await replica();
    // The same model file published as version 1 on both, as replicas of one deployment see it.
    await publish(a, OLD);
    await publish(b, OLD);
  });
  after(async () => {
    for (const t of apps) await t.close();
  });

  test('an answer cached by one replica is served by the other', async () => {
    const first = await predict(a, [0.25, 0.5]);
    assert.deepEqual(first, { ...first, prediction: 'old', model_version: '1', cached: false });
    await written(1);
    const other = await predict(b, [0.25, 0.5]);
    assert.deepEqual(other, { ...other, prediction: 'old', model_version: '1', cached: true });
    // Batch rows written by b are hits for single requests on a.
    await predictBatch(b, [
      [1, 1],
      [2, 2],
    ]);
    await written(3);
    assert.equal((await predict(a, [2, 2])).cached, true);
    // Without PREDICTION_CACHE_TTL, Redis entries live an hour.
    const ttl = await admin.ttl((await keysUnder(prefix))[0]!);
    assert.ok(ttl > 3500 && ttl <= 3600, `ttl ${ttl}`);
    const health = await a.app.inject({ url: '/health/model', headers: a.headers('read') });
    assert.deepEqual(health.json<{ cache: unknown }>().cache, { enabled: true, backend: 'redis', entries: null });
  });

  test('a new version never serves the previous version’s answers', async () => {
    await predict(a, [3, 3]);
    await written(4);
    assert.equal((await predict(b, [3, 3])).cached, true);
    const v2 = await publish(a, NEW);
    await a.services.serving.service.settled();
    const after = await predict(a, [3, 3]);
    assert.deepEqual([after.prediction, after.model_version, after.cached], ['new', String(v2), false]);
    const rows = await predictBatch(a, [
      [3, 3],
      [0.25, 0.5],
    ]);
    assert.deepEqual(
      rows.predictions.map((p) => p.prediction),
      ['new', 'new'],
    );
    // The replica still on version 1 keeps its own answers.
    const stillOld = await predict(b, [3, 3]);
    assert.deepEqual([stillOld.prediction, stillOld.model_version, stillOld.cached], ['old', '1', true]);
  });

  test('different bytes under the same name and version number do not share answers', async () => {
    // Another store where the model was deleted and registered again: version 1 is NEW there.
    const c = await replica();
    await publish(c, NEW);
    const fresh = await predict(c, [0.25, 0.5]);
    assert.deepEqual([fresh.prediction, fresh.model_version, fresh.cached], ['new', '1', false]);
  });

  test('DELETE /predict/cache on one replica empties the shared cache', async () => {
    await written(1);
    const before = (await keysUnder(prefix)).length;
    assert.ok(before >= 5, `${before} keys`);
    const res = await b.app.inject({ method: 'DELETE', url: '/predict/cache', headers: b.headers('admin') });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<{ cleared: number }>().cleared, before);
    assert.deepEqual(await keysUnder(prefix), []);
    assert.equal((await predict(a, [0.25, 0.5])).cached, false);
    assert.equal((await predict(b, [0.25, 0.5])).cached, false);
  });
});

void describe('a Redis connection that goes away', () => {
  test('predictions are answered without the cache; DELETE /predict/cache is a 503', async () => {
    // The app needs Redis at start (the training queue waits for it), so the connection is cut afterwards.
    const t = await buildServingApp({
      env: { MODEL_NAME: 'price', REDIS_URL: TEST_REDIS_URL },
      seed: async (r) => void (await r.register('price', REGRESSOR, {}, 'Production')),
      cache: { redisPrefix: uniquePrefix() },
    });
    try {
      assert.equal(t.serving.cache?.kind, 'redis');
      t.ctx.backends.redis!.disconnect();
      for (let i = 0; i < 2; i++) {
        const single = await t.app.inject({ method: 'POST', url: '/predict', payload: { features: [1, 1] }, headers: t.headers('predict') });
        assert.equal(single.statusCode, 200, single.body);
        const answer = single.json<{ prediction: number; cached: boolean }>();
        assert.deepEqual([answer.prediction, answer.cached], [6, false]);
        const batch = await t.app.inject({
          method: 'POST',
          url: '/predict/batch',
          payload: {
            features_list: [
              [1, 1],
              [2, 0],
            ],
          },
          headers: t.headers('predict'),
        });
        assert.equal(batch.statusCode, 200, batch.body);
        assert.deepEqual(batch.json<{ predictions: unknown[] }>().predictions, [{ prediction: 6 }, { prediction: 5 }]);
      }
      const cleared = await t.app.inject({ method: 'DELETE', url: '/predict/cache', headers: t.headers('admin') });
      assert.equal(cleared.statusCode, 503, cleared.body);
      assert.match(cleared.json<{ details: string }>().details, /Redis/);
    } finally {
      await t.close();
    }
  });
});
