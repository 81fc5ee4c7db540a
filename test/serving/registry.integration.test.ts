/** Serving against the project's real registry (store + artifact store), wired by buildApp. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';
import { linearClassifier } from './harness.ts';

const OLD = linearClassifier(['a', 'b'], ['old', 'new'], [[0, 0]], [-10]);
const NEW = linearClassifier(['a', 'b'], ['old', 'new'], [[0, 0]], [10]);
const actor = { keyId: 'test', role: 'admin' as const };

void describe('serving with the real registry', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ env: { MODEL_NAME: 'churn' } });
  });
  after(() => t.close());

  test('before a version exists /ready is 503; a transition makes it servable and a promotion moves traffic', async () => {
    assert.equal((await t.app.inject({ url: '/ready' })).statusCode, 503);
    const registry = t.services.registry;
    await registry.models.createModel('churn', {}, 'test');
    const v1 = await registry.models.registerVersion('churn', OLD, {}, { actor: 'test' });
    await registry.lifecycle.transitionStage('churn', v1.version, 'Production', { actor });
    const predict = async () => {
      const res = await t.app.inject({ method: 'POST', url: '/predict', payload: { a: 1, b: 2 }, headers: t.headers('predict') });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<{ prediction: string; model_version: string; stage: string }>();
    };
    const first = await predict();
    assert.deepEqual([first.prediction, first.model_version, first.stage], ['old', String(v1.version), 'Production']);
    assert.equal((await t.app.inject({ url: '/ready' })).statusCode, 200);
    const v2 = await registry.models.registerVersion('churn', NEW, {}, { actor: 'test' });
    await registry.lifecycle.transitionStage('churn', v2.version, 'Production', { actor, archiveExistingVersions: true });
    await t.services.serving.service.settled();
    const second = await predict();
    assert.deepEqual([second.prediction, second.model_version], ['new', String(v2.version)]);
    const pinned = await t.app.inject({ method: 'POST', url: `/models/churn/predict?version=${v1.version}`, payload: { features: [0, 0] }, headers: t.headers('predict') });
    assert.equal(pinned.json<{ prediction: string }>().prediction, 'old');
  });
});
