import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildServingApp, linearClassifier, sleep, type ServingTestApp } from './harness.ts';

// Constant answers so that which version served a request is visible in the label.
const OLD = linearClassifier(['a', 'b'], ['old', 'new'], [[0, 0]], [-10]);
const NEW = linearClassifier(['a', 'b'], ['old', 'new'], [[0, 0]], [10]);

interface Answer {
  status: number;
  prediction?: string;
  version?: string;
  cached?: boolean;
}

void describe('promotion under load', () => {
  let t: ServingTestApp;
  before(async () => {
    t = await buildServingApp({ env: { MODEL_NAME: 'm' }, seed: async (r) => void (await r.register('m', OLD, {}, 'Production')) });
  });
  after(() => t.close());

  const predict = async (url = '/predict', body: unknown = { features: [Math.random(), Math.random()] }): Promise<Answer> => {
    const res = await t.app.inject({ method: 'POST', url, payload: body as object, headers: t.headers('predict') });
    if (res.statusCode !== 200) return { status: res.statusCode };
    const j = res.json<{ prediction: string; model_version: string; cached: boolean }>();
    return { status: 200, prediction: j.prediction, version: j.model_version, cached: j.cached };
  };

  /** Keeps `workers` request loops busy until `stop` resolves; returns every answer. */
  const load = async (workers: number, stop: Promise<void>, url?: string): Promise<Answer[]> => {
    const answers: Answer[] = [];
    let done = false;
    void stop.then(() => {
      done = true;
    });
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (!done) answers.push(await predict(url));
      }),
    );
    return answers;
  };

  test('a promotion in this process switches traffic with zero failed requests and no stale cache', async () => {
    const fixed = { features: [0.5, 0.5] };
    assert.equal((await predict('/predict', fixed)).prediction, 'old');
    // The in-memory cache stores a row the second time it sees it.
    assert.equal((await predict('/predict', fixed)).cached, false);
    assert.equal((await predict('/predict', fixed)).cached, true);
    let stopLoad!: () => void;
    const stop = new Promise<void>((r) => (stopLoad = r));
    const running = load(16, stop);
    await sleep(30);
    const v2 = await t.registry.register('m', NEW);
    t.registry.transition('m', v2, 'Production');
    await t.serving.service.settled();
    const after = await predict();
    assert.equal(after.prediction, 'new');
    await sleep(30);
    stopLoad();
    const answers = await running;
    assert.ok(answers.length > 50, `only ${answers.length} requests`);
    assert.deepEqual(
      answers.filter((a) => a.status !== 200),
      [],
      'no request failed',
    );
    assert.ok(answers.some((a) => a.prediction === 'old') && answers.some((a) => a.prediction === 'new'));
    for (const a of answers) assert.equal(a.prediction, a.version === '1' ? 'old' : 'new');
    // The cached row of version 1 is not served for version 2.
    const fresh = await predict('/predict', fixed);
    assert.deepEqual([fresh.prediction, fresh.cached], ['new', false]);
  });

  test('a change made by another replica is picked up by polling the generation', async () => {
    t.registry.notify = false;
    try {
      const v3 = await t.registry.register('m', OLD);
      t.registry.transition('m', v3, 'Production');
      let seen: Answer | undefined;
      for (let i = 0; i < 100; i++) {
        seen = await predict();
        if (seen.version === String(v3)) break;
        await sleep(20);
      }
      assert.equal(seen?.version, String(v3));
      assert.equal(seen.prediction, 'old');
    } finally {
      t.registry.notify = true;
    }
  });

  test('an unused session is released after the idle period', async () => {
    const loadedVersions = (): string[] => t.serving.service.loadedModels().map((m) => m.identity.version);
    assert.ok(!loadedVersions().includes('1') || (await waitFor(() => !loadedVersions().includes('1'))), 'version 1 released');
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    assert.ok(!metrics.includes('model_status{model="m",version="1"}'));
    assert.ok(metrics.includes('model_status{model="m",version="3"} 1'));
  });

  test('traffic split sends both versions traffic; explicit version routes stay pinned', async () => {
    t.registry.setTraffic('m', { routes: [{ version: 2, weight: 1 }, { version: 3, weight: 1 }], shadow: [] });
    await t.serving.service.settled();
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) seen.add((await predict()).version ?? 'error');
    assert.deepEqual([...seen].sort(), ['2', '3']);
    for (let i = 0; i < 5; i++) assert.equal((await predict('/predict?model=m&version=2')).prediction, 'new');
    t.registry.setTraffic('m', undefined);
    await t.serving.service.settled();
    assert.equal((await predict()).version, '3');
  });

  test('/predict/staging and an alias move without restart', async () => {
    assert.equal((await predict('/predict/staging')).status, 404);
    t.registry.transition('m', 2, 'Staging');
    await t.serving.service.settled();
    assert.equal((await predict('/predict/staging')).prediction, 'new');
    t.registry.setAlias('m', 'best', 3);
    assert.equal((await predict('/predict?model=m&alias=best')).version, '3');
    t.registry.setAlias('m', 'best', 2);
    await t.serving.service.settled();
    assert.equal((await predict('/predict?model=m&alias=best')).version, '2');
  });
});

async function waitFor(check: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await sleep(25);
  }
  return check();
}
