import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../../src/platform/errors.ts';
import type { TrainJob } from '../../src/training/job.types.ts';
import { parseTrainRequest, requiredRole, validateTrainRequest } from '../../src/training/train-request.ts';
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
      await t.services.datasets.uploadCsv('mixed', 'num,cat,flag,score,label\n1,a,true,0.5,x\n2,b,false,1.5,y\n3,a,true,2.5,x\n4,c,false,3.5,y\n', { actor: 'test' });
    });
    after(async () => {
      await t.close();
    });

    const base = { dataset: { name: 'iris' }, target: 'target', algorithm: 'random_forest' };
    /** The route's schema check, then the up-front checks, as `POST /train` runs them. */
    const validate = async (request: unknown, actor = 'key-1'): Promise<TrainJob> => validateTrainRequest(parseTrainRequest(request), t.services.datasets, actor);
    const paramsOf = (job: TrainJob): Record<string, unknown> => job.params;

    void test('a valid request resolves the dataset version, task, features and effective params', async () => {
      const v = await validate({ ...base, params: { n_estimators: 10 } });
      assert.equal(v.datasetVersion, 1);
      assert.equal(v.task, 'classification');
      assert.deepEqual(v.features, ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)']);
      assert.equal(paramsOf(v)['n_estimators'], 10);
      assert.equal(paramsOf(v)['max_features'], 'sqrt');
      assert.equal(paramsOf(v)['seed'], 42);
      const reg = await validate({ dataset: { name: 'mixed' }, target: 'score', algorithm: 'linear_regression', validation: { seed: 7 } });
      assert.equal(reg.task, 'regression');
      assert.deepEqual(reg.params, { algorithm: 'linear_regression', alpha: 0, fit_intercept: true });
      // The queued job is the request with everything the checks resolved: the worker recomputes nothing.
      const payload = await validate({ ...base, dataset: { name: 'mixed', version: 1 }, target: 'label', algorithm: 'decision_tree' }, 'key-1');
      assert.deepEqual(payload, {
        kind: 'train',
        request: { ...base, dataset: { name: 'mixed', version: 1 }, target: 'label', algorithm: 'decision_tree' },
        datasetVersion: 1,
        task: 'classification',
        features: ['num', 'cat', 'flag', 'score'],
        params: { algorithm: 'decision_tree', criterion: 'gini', max_depth: null, min_samples_split: 2, min_samples_leaf: 1, max_features: null, seed: 42 },
        actor: 'key-1',
      });
    });

    void test('unknown dataset or version is a 404', async () => {
      await rejectsWith(validate({ ...base, dataset: { name: 'nope' } }), 404, /dataset 'nope' not found/);
      await rejectsWith(validate({ ...base, dataset: { name: 'mixed', version: 5 } }), 404, /no version 5/);
    });

    void test('bad body shape, target and features are 400s naming them', async () => {
      await rejectsWith(validate({ dataset: { name: 'iris' }, algorithm: 'random_forest' }), 400, /target/, '/body/target');
      await rejectsWith(validate({ ...base, algorithm: 'svm' }), 400, /algorithm/, '/body/algorithm');
      await rejectsWith(validate({ ...base, target: 'species' }), 400, /no column 'species'.*columns: sepal length/, '/body/target');
      await rejectsWith(validate({ ...base, features: ['petal width (cm)', 'colour', 'height'] }), 400, /unknown columns 'colour', 'height'/, '/body/features');
      await rejectsWith(validate({ ...base, features: ['target'] }), 400, /cannot also be a feature/);
      await rejectsWith(validate({ ...base, features: ['petal width (cm)', 'petal width (cm)'] }), 400, /listed twice/);
    });

    void test('algorithm and task must fit each other and the target', async () => {
      await rejectsWith(validate({ ...base, algorithm: 'logistic_regression', task: 'regression' }), 400, /logistic_regression fits classification only/, '/body/algorithm');
      await rejectsWith(validate({ ...base, algorithm: 'linear_regression' }), 400, /inferred from target 'target'/);
      await rejectsWith(validate({ dataset: { name: 'mixed' }, target: 'cat', algorithm: 'decision_tree', task: 'regression' }), 400, /numeric target; 'cat' is categorical/, '/body/task');
      const flag = await validate({ dataset: { name: 'mixed' }, target: 'flag', algorithm: 'decision_tree' });
      assert.equal(flag.task, 'classification');
    });

    void test('params: unknown names, ranges and criterion are checked per algorithm', async () => {
      await rejectsWith(validate({ ...base, params: { n_trees: 5, depth: 2 } }), 400, /unknown parameters for random_forest: n_trees, depth/, '/body/params/n_trees');
      await rejectsWith(validate({ ...base, params: { n_estimators: 0 } }), 400, /n_estimators/, '/body/params/n_estimators');
      await rejectsWith(validate({ ...base, algorithm: 'gradient_boosting', params: { learning_rate: -1 } }), 400, /learning_rate/);
      await rejectsWith(validate({ ...base, algorithm: 'gradient_boosting', params: { max_bins: 1000 } }), 400, /max_bins/);
      await rejectsWith(validate({ ...base, params: { criterion: 'squared_error' } }), 400, /does not fit a classification task/, '/body/params/criterion');
      await rejectsWith(validate({ ...base, algorithm: 'logistic_regression', params: { alpha: 1 } }), 400, /unknown parameter for logistic_regression: alpha/);
      const ok = await validate({ ...base, params: { max_depth: null, max_features: 0.5, min_samples_leaf: 0.1 } });
      assert.equal(paramsOf(ok)['max_depth'], null);
    });

    void test('registration and promotion options are checked', async () => {
      await rejectsWith(validate({ ...base, register_as: '/bad name' }), 400, /model names/, '/body/register_as');
      await rejectsWith(validate({ ...base, promote_to: 'Staging' }), 400, /needs register_as/, '/body/promote_to');
      await rejectsWith(validate({ ...base, register_as: 'm', promotion_gate: { metric: 'accuracy', min: 0.9 } }), 400, /needs promote_to/);
      await rejectsWith(validate({ ...base, register_as: 'm', promote_to: 'Staging', promotion_gate: { metric: 'accuracy' } }), 400, /min, max or both/);
      await rejectsWith(validate({ ...base, register_as: 'm', promote_to: 'Staging', promotion_gate: { metric: 'r2', min: 0.5 } }), 400, /'r2' is not a classification metric/, '/body/promotion_gate/metric');
      assert.equal(requiredRole({ promote_to: 'Production' }), 'admin');
      assert.equal(requiredRole({ promote_to: 'Staging' }), 'train');
      assert.equal(requiredRole({}), 'train');
    });
  });
}
