import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getDatasets } from '../../src/datasets/dataset.service.ts';
import { AppError } from '../../src/platform/errors.ts';
import { requiredRole, trainJobKind, validateTrainRequest } from '../../src/training/pipeline.ts';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';

/** Asserts an AppError with `status` whose message matches `message` (and the first error path, if given). */
async function rejectsWith(p: Promise<unknown>, status: number, message: RegExp, path?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.equal(err.status, status, err.message);
    assert.match(err.message, message);
    if (path !== undefined) assert.equal(err.errors?.[0]?.path, path);
    return true;
  });
}

for (const backend of await storeBackends()) {
  void describe(`validateTrainRequest (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ backend });
      await getDatasets(t.ctx).uploadCsv('mixed', 'num,cat,flag,score,label\n1,a,true,0.5,x\n2,b,false,1.5,y\n3,a,true,2.5,x\n4,c,false,3.5,y\n', { actor: 'test' });
    });
    after(async () => {
      await t.close();
    });

    const base = { dataset: { name: 'iris' }, target: 'target', algorithm: 'random_forest' };

    void test('a valid request resolves the dataset version, task, features and effective params', async () => {
      const v = await validateTrainRequest({ ...base, params: { n_estimators: 10 } }, t.ctx);
      assert.equal(v.datasetVersion, 1);
      assert.equal(v.task, 'classification');
      assert.deepEqual(v.features, ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)']);
      assert.equal(v.params['n_estimators'], 10);
      assert.equal(v.params['max_features'], 'sqrt');
      assert.equal(v.params['seed'], 42);
      const reg = await validateTrainRequest({ dataset: { name: 'mixed' }, target: 'score', algorithm: 'linear_regression', validation: { seed: 7 } }, t.ctx);
      assert.equal(reg.task, 'regression');
      assert.deepEqual(reg.params, { alpha: 0, fit_intercept: true });
      const payload = await trainJobKind.validate!({ ...base, dataset: { name: 'mixed', version: 1 }, target: 'label', algorithm: 'decision_tree' }, t.ctx, 'key-1');
      assert.deepEqual(payload, { kind: 'train', request: { ...base, dataset: { name: 'mixed', version: 1 }, target: 'label', algorithm: 'decision_tree' }, datasetVersion: 1, actor: 'key-1' });
    });

    void test('unknown dataset or version is a 404', async () => {
      await rejectsWith(validateTrainRequest({ ...base, dataset: { name: 'nope' } }, t.ctx), 404, /dataset 'nope' not found/);
      await rejectsWith(validateTrainRequest({ ...base, dataset: { name: 'mixed', version: 5 } }, t.ctx), 404, /no version 5/);
    });

    void test('bad body shape, target and features are 400s naming them', async () => {
      await rejectsWith(validateTrainRequest({ dataset: { name: 'iris' }, algorithm: 'random_forest' }, t.ctx), 400, /target/, '/body/target');
      await rejectsWith(validateTrainRequest({ ...base, algorithm: 'svm' }, t.ctx), 400, /algorithm/, '/body/algorithm');
      await rejectsWith(validateTrainRequest({ ...base, target: 'species' }, t.ctx), 400, /no column 'species'.*columns: sepal length/, '/body/target');
      await rejectsWith(validateTrainRequest({ ...base, features: ['petal width (cm)', 'colour', 'height'] }, t.ctx), 400, /unknown columns 'colour', 'height'/, '/body/features');
      await rejectsWith(validateTrainRequest({ ...base, features: ['target'] }, t.ctx), 400, /cannot also be a feature/);
      await rejectsWith(validateTrainRequest({ ...base, features: ['petal width (cm)', 'petal width (cm)'] }, t.ctx), 400, /listed twice/);
    });

    void test('algorithm and task must fit each other and the target', async () => {
      await rejectsWith(validateTrainRequest({ ...base, algorithm: 'logistic_regression', task: 'regression' }, t.ctx), 400, /logistic_regression fits classification only/, '/body/algorithm');
      await rejectsWith(validateTrainRequest({ ...base, algorithm: 'linear_regression' }, t.ctx), 400, /inferred from target 'target'/);
      await rejectsWith(validateTrainRequest({ dataset: { name: 'mixed' }, target: 'cat', algorithm: 'decision_tree', task: 'regression' }, t.ctx), 400, /numeric target; 'cat' is categorical/, '/body/task');
      const flag = await validateTrainRequest({ dataset: { name: 'mixed' }, target: 'flag', algorithm: 'decision_tree' }, t.ctx);
      assert.equal(flag.task, 'classification');
    });

    void test('params: unknown names, ranges and criterion are checked per algorithm', async () => {
      await rejectsWith(validateTrainRequest({ ...base, params: { n_trees: 5, depth: 2 } }, t.ctx), 400, /unknown parameters for random_forest: n_trees, depth/, '/body/params/n_trees');
      await rejectsWith(validateTrainRequest({ ...base, params: { n_estimators: 0 } }, t.ctx), 400, /n_estimators/, '/body/params/n_estimators');
      await rejectsWith(validateTrainRequest({ ...base, algorithm: 'gradient_boosting', params: { learning_rate: -1 } }, t.ctx), 400, /learning_rate/);
      await rejectsWith(validateTrainRequest({ ...base, algorithm: 'gradient_boosting', params: { max_bins: 1000 } }, t.ctx), 400, /max_bins/);
      await rejectsWith(validateTrainRequest({ ...base, params: { criterion: 'squared_error' } }, t.ctx), 400, /does not fit a classification task/, '/body/params/criterion');
      await rejectsWith(validateTrainRequest({ ...base, algorithm: 'logistic_regression', params: { alpha: 1 } }, t.ctx), 400, /unknown parameter for logistic_regression: alpha/);
      const ok = await validateTrainRequest({ ...base, params: { max_depth: null, max_features: 0.5, min_samples_leaf: 0.1 } }, t.ctx);
      assert.equal(ok.params['max_depth'], null);
    });

    void test('registration and promotion options are checked', async () => {
      await rejectsWith(validateTrainRequest({ ...base, register_as: '/bad name' }, t.ctx), 400, /model names/, '/body/register_as');
      await rejectsWith(validateTrainRequest({ ...base, promote_to: 'Staging' }, t.ctx), 400, /needs register_as/, '/body/promote_to');
      await rejectsWith(validateTrainRequest({ ...base, register_as: 'm', promotion_gate: { metric: 'accuracy', min: 0.9 } }, t.ctx), 400, /needs promote_to/);
      await rejectsWith(validateTrainRequest({ ...base, register_as: 'm', promote_to: 'Staging', promotion_gate: { metric: 'accuracy' } }, t.ctx), 400, /min, max or both/);
      await rejectsWith(validateTrainRequest({ ...base, register_as: 'm', promote_to: 'Staging', promotion_gate: { metric: 'r2', min: 0.5 } }, t.ctx), 400, /'r2' is not a classification metric/, '/body/promotion_gate/metric');
      assert.equal(requiredRole({ promote_to: 'Production' }), 'admin');
      assert.equal(requiredRole({ promote_to: 'Staging' }), 'train');
      assert.equal(requiredRole({}), 'train');
    });
  });
}
