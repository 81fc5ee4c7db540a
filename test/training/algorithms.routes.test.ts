import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { ALGORITHMS, ALGORITHM_PARAMS, type Algorithm } from '../../src/training/pipeline-params.ts';
import { buildTestApp, type TestApp } from '../helper.ts';

describe('GET /train/algorithms', { timeout: 60_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => {
    await t.close();
  });

  test('every algorithm with its tasks, params schema and defaults; the defaults satisfy the schema', async () => {
    const r = await t.app.inject({ url: '/train/algorithms', headers: t.headers('read') });
    assert.equal(r.statusCode, 200);
    const body = r.json();
    assert.deepEqual(body.algorithms.map((a: { name: string }) => a.name), [...ALGORITHMS]);
    const forest = body.algorithms.find((a: { name: string }) => a.name === 'random_forest');
    assert.deepEqual(forest.tasks, ['classification', 'regression']);
    assert.equal(forest.params_schema.properties.n_estimators.type, 'integer');
    assert.equal(forest.params_schema.properties.n_estimators.maximum, 10_000);
    assert.equal(forest.defaults.classification.n_estimators, 100);
    assert.equal(forest.defaults.classification.criterion, 'gini');
    assert.equal(forest.defaults.regression.criterion, 'squared_error');
    const logistic = body.algorithms.find((a: { name: string }) => a.name === 'logistic_regression');
    assert.deepEqual(logistic.tasks, ['classification']);
    assert.equal(logistic.defaults.regression, undefined);
    for (const a of body.algorithms) {
      const schema = ALGORITHM_PARAMS[a.name as Algorithm];
      assert.deepEqual(a.params_schema, JSON.parse(JSON.stringify(schema)), `${a.name}: the schema POST /train validates with`);
      for (const task of a.tasks) assert.ok(Value.Check(schema, a.defaults[task]), `${a.name} ${task} defaults fit the schema`);
    }
    assert.deepEqual(body.validation, { test_size: 0.2, seed: 42, stratify: true });
  });

  test('needs a key', async () => {
    assert.equal((await t.app.inject({ url: '/train/algorithms' })).statusCode, 401);
  });
});
