import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Task } from '../../src/ml/types.ts';
import { prepareForServing } from '../../src/onnx/prepare.ts';
import { DeterministicJobError, type JobResult } from '../../src/training/job.types.ts';
import { localJobContext, runTrainingJob, type PipelineDeps } from '../../src/training/pipeline.ts';
import { resolveParams } from '../../src/training/pipeline-params.ts';
import type { TrainingReference } from '../../src/training/pipeline-reference.ts';
import { parseTrainRequest, validateTrainRequest } from '../../src/training/train-request.ts';
import { buildTestApp, pipelineDeps, storeBackends, type TestApp } from '../helper.ts';

const SHARED = path.resolve(import.meta.dirname, '../../../shared');
const BREAST_CANCER = path.join(SHARED, 'datasets/breast_cancer.csv');

async function train(deps: PipelineDeps, request: Record<string, unknown>, options: { signal?: AbortSignal; onProgress?: (p: number, stage: string) => void; logs?: string[] } = {}): Promise<JobResult> {
  const job = await validateTrainRequest(parseTrainRequest(request), deps.services.datasets, 'test-key');
  return runTrainingJob(
    job,
    localJobContext({
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      onLog: (line) => options.logs?.push(line),
    }),
    deps,
  );
}

const CASES = [
  { algorithm: 'logistic_regression', dataset: 'iris', metric: 'accuracy', min: 0.85, params: {} },
  { algorithm: 'decision_tree', dataset: 'iris', metric: 'accuracy', min: 0.85, params: { max_depth: 4 } },
  { algorithm: 'random_forest', dataset: 'iris', metric: 'accuracy', min: 0.85, params: { n_estimators: 15 } },
  { algorithm: 'gradient_boosting', dataset: 'iris', metric: 'accuracy', min: 0.85, params: { max_iter: 20 } },
  { algorithm: 'linear_regression', dataset: 'synthetic_regression', metric: 'r2', min: 0.9, params: {} },
  { algorithm: 'gradient_boosting', dataset: 'synthetic_regression', metric: 'r2', min: 0.5, params: { max_iter: 30 } },
] as const;

for (const backend of await storeBackends()) {
  void describe(`training pipeline (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ backend });
    });
    after(async () => {
      await t.close();
    });

    for (const c of CASES) {
      void test(`${c.algorithm} on ${c.dataset}: run with params and metrics, checked ONNX export, registered version with signature and reference`, async () => {
        const name = `${c.dataset}-${c.algorithm}`.replaceAll('_', '-');
        const progress: number[] = [];
        const result = await train(pipelineDeps(t), { dataset: { name: c.dataset }, target: 'target', algorithm: c.algorithm, params: c.params, register_as: name }, {
          onProgress: (p) => progress.push(p),
        });
        assert.ok(result.metrics[c.metric]! >= c.min, `${c.metric} = ${result.metrics[c.metric]}`);
        assert.equal(result.experimentName, c.dataset);
        assert.deepEqual(result.model, { name, version: 1, stage: 'None' });
        assert.ok(progress.some((p) => p > 10 && p < 80), 'fit progress is reported between 10 and 80');
        assert.equal(progress.at(-1), 100);

        const run = await t.services.tracking.runs.getRun(result.runId!);
        assert.equal(run.info.status, 'FINISHED');
        const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
        assert.equal(params['algorithm'], c.algorithm);
        assert.equal(params['dataset_version'], '1');
        for (const [k, v] of Object.entries(c.params)) assert.equal(params[k], String(v));
        if (c.algorithm === 'random_forest') assert.equal(params['max_features'], 'sqrt');
        const metrics = Object.fromEntries(run.data.metrics.map((m) => [m.key, m.value]));
        assert.equal(metrics[c.metric], result.metrics[c.metric]);
        const tags = Object.fromEntries(run.data.tags.map((tag) => [tag.key, tag.value]));
        assert.equal((JSON.parse(tags['modelplane.onnx_check']!) as { ok: boolean }).ok, true);
        const files = (await t.services.tracking.artifacts.listAllArtifacts(result.runId!)).files.map((f) => f.path);
        for (const f of ['model/model.onnx', 'metrics.json', 'features.json']) assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
        assert.equal(files.includes('confusion_matrix.json'), c.metric === 'accuracy');

        const version = await t.services.registry.models.getVersion(name, 1);
        assert.equal(version.runId, result.runId);
        assert.deepEqual(version.dataset, { name: c.dataset, version: 1 });
        assert.equal(version.signature.task, c.metric === 'accuracy' ? 'classification' : 'regression');
        const datasetVersion = await t.services.datasets.getVersion(c.dataset, 1);
        const featureNames = datasetVersion.schema!.columns.map((col) => col.name).filter((n) => n !== 'target');
        assert.deepEqual(version.signature.featureNames, featureNames);
        if (c.metric === 'accuracy') assert.deepEqual(version.signature.classLabels, [0, 1, 2]);
        // The version points at the run's model (written once) and its signature, known to the
        // pipeline without parsing the file again, is what the file itself says.
        assert.equal(version.artifactKey, `runs/${result.runId}/artifacts/model/model.onnx`);
        assert.deepEqual(version.signature, prepareForServing(await t.services.registry.models.readArtifact(name, 1)).signature);
        const reference = JSON.parse((await t.backends.artifacts.getBuffer(`models/${name}/1/reference.json`)).toString()) as TrainingReference;
        assert.deepEqual(reference.feature_names, featureNames);
        const first = reference.features[featureNames[0]!]!;
        assert.equal(first.type, 'numeric');
        if (first.type === 'numeric') {
          assert.ok(first.bins.edges.length >= 1 && first.bins.edges.length <= 9);
          assert.equal(first.bins.counts.length, first.bins.edges.length + 1);
          assert.equal(first.bins.counts.reduce((a, b) => a + b, 0), reference.rows);
          assert.ok(first.sample.length <= 1000);
        }
      });
    }

    void test('categorical features and a boolean target with missing values: labels, dropped rows, one-hot and code exports', async () => {
      const rows = [];
      const colours = ['red', 'green', 'blue'];
      for (let i = 0; i < 120; i++) {
        const colour = colours[i % 3]!;
        const size = (i * 7) % 11;
        rows.push({ colour, size, hot: i % 10 === 9 ? null : colour === 'red' || size > 8 });
      }
      await t.services.datasets.uploadRows('weather', rows, { actor: 'test' });
      for (const algorithm of ['logistic_regression', 'decision_tree'] as const) {
        const logs: string[] = [];
        const result = await train(pipelineDeps(t), { dataset: { name: 'weather' }, target: 'hot', algorithm, register_as: `weather-${algorithm}` }, { logs });
        assert.ok(logs.some((l) => l.includes('dropped 12 rows')), logs.join('\n'));
        assert.ok(result.metrics['accuracy']! > 0.8, `accuracy ${result.metrics['accuracy']}`);
        const v = await t.services.registry.models.getVersion(`weather-${algorithm}`, 1);
        assert.deepEqual(v.signature.classLabels, ['false', 'true']);
        assert.deepEqual(v.signature.featureTypes, ['categorical', 'numeric']);
        assert.deepEqual([...(v.signature.categories?.['colour'] ?? [])].sort(), ['blue', 'green', 'red']);
        assert.deepEqual(v.signature, prepareForServing(await t.services.registry.models.readArtifact(`weather-${algorithm}`, 1)).signature);
      }
    });

    void test('promotion gate: a passing gate promotes and archives the previous version, a failing one records why', async () => {
      const base = { dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree', register_as: 'gated', promote_to: 'Staging' };
      const first = await train(pipelineDeps(t), { ...base, promotion_gate: { metric: 'accuracy', min: 0.5 } });
      assert.equal(first.model?.stage, 'Staging');
      const second = await train(pipelineDeps(t), { ...base, params: { max_depth: 3 }, promotion_gate: { metric: 'accuracy', min: 0.5, max: 1 } });
      assert.deepEqual(second.model, { name: 'gated', version: 2, stage: 'Staging' });
      assert.equal((await t.services.registry.models.getVersion('gated', 1)).stage, 'Archived');
      let tags = Object.fromEntries((await t.services.tracking.runs.getRun(second.runId!)).data.tags.map((x) => [x.key, x.value]));
      assert.equal(tags['promotion.decision'], 'promoted');
      assert.match(tags['promotion.reason']!, /^accuracy = [\d.]+ >= 0\.5 and <= 1$/);

      const logs: string[] = [];
      const third = await train(pipelineDeps(t), { ...base, promotion_gate: { metric: 'log_loss', max: -1 } }, { logs });
      assert.deepEqual(third.model, { name: 'gated', version: 3, stage: 'None' });
      tags = Object.fromEntries((await t.services.tracking.runs.getRun(third.runId!)).data.tags.map((x) => [x.key, x.value]));
      assert.equal(tags['promotion.decision'], 'rejected');
      assert.match(tags['promotion.reason']!, /log_loss = .* is above the maximum -1/);
      assert.ok(logs.some((l) => l.startsWith('not promoted to Staging')));
      assert.equal((await t.services.registry.models.getVersion('gated', 2)).stage, 'Staging');
    });

    void test('cancellation: an abort during the fit stops the job and marks the run KILLED; nothing is registered', async () => {
      const controller = new AbortController();
      const logs: string[] = [];
      await assert.rejects(
        train(
          pipelineDeps(t),
          { dataset: { name: 'iris' }, target: 'target', algorithm: 'random_forest', params: { n_estimators: 200, n_jobs: 1 }, register_as: 'cancelled', experiment_name: 'cancel-exp' },
          {
            signal: controller.signal,
            logs,
            onProgress: (p, stage) => {
              if (stage === 'fitting' && p > 20) controller.abort(new Error('job cancelled'));
            },
          },
        ),
        /job cancelled/,
      );
      assert.ok(logs.includes('cancelled'));
      const runs = await t.services.tracking.runs.searchRuns({ experimentIds: [(await t.services.tracking.experiments.getExperimentByName('cancel-exp')).experimentId] });
      const runId = runs.items[0]?.info.runId;
      assert.ok(runId);
      assert.equal(runs.items[0]!.info.status, 'KILLED');
      await assert.rejects(t.services.registry.models.getModelSummary('cancelled'), /does not exist/);

      const early = new AbortController();
      early.abort(new Error('job cancelled'));
      await assert.rejects(train(pipelineDeps(t), { dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' }, { signal: early.signal }), /job cancelled/);
    });

    void test('bad data fails deterministically: one class, no target values, non-numeric regression target', async () => {
      const datasets = t.services.datasets;
      const one = await datasets.uploadCsv('oneclass', 'x,y\n1,a\n2,a\n3,a\n4,a\n', { actor: 'test' });
      const empty = await datasets.uploadCsv('notarget', 'x,y\n1,\n2,\n3,NA\n', { actor: 'test' });
      const text = await datasets.uploadCsv('texttarget', 'x,y\n1,a\n2,b\n3,c\n4,d\n', { actor: 'test' });
      // Queued as the API would have resolved them, then run: the pipeline's own checks of the data.
      const run = (name: string, version: number, task: Task) =>
        runTrainingJob(
          {
            kind: 'train',
            request: { dataset: { name, version }, target: 'y', algorithm: 'decision_tree', task },
            datasetVersion: version,
            task,
            features: ['x'],
            params: resolveParams('decision_tree', task, undefined, 42),
            actor: 'test',
          },
          localJobContext({}),
          pipelineDeps(t),
        );
      await assert.rejects(run('oneclass', one.version, 'classification'), (err: unknown) => err instanceof DeterministicJobError && /only 'a'/.test(err.message));
      await assert.rejects(run('notarget', empty.version, 'classification'), (err: unknown) => err instanceof DeterministicJobError && /no values/.test(err.message));
      await assert.rejects(run('texttarget', text.version, 'regression'), (err: unknown) => err instanceof DeterministicJobError && /numeric target/.test(err.message));
      const failed = await t.services.tracking.runs.searchRuns({ experimentIds: [(await t.services.tracking.experiments.getExperimentByName('oneclass')).experimentId] });
      assert.equal(failed.items[0]!.info.status, 'FAILED');
    });

    void test('a model over TRAINING_MAX_MODEL_BYTES fails deterministically: a forest once its first tree shows it, others at export; nothing is registered', async () => {
      const fits: string[] = [];
      await assert.rejects(
        train(
          { ...pipelineDeps(t), maxModelBytes: 20_000 },
          { dataset: { name: 'synthetic_regression' }, target: 'target', algorithm: 'random_forest', params: { n_estimators: 400, n_jobs: 1 }, register_as: 'too-large-forest' },
          { onProgress: (_p, stage) => fits.push(stage) },
        ),
        (err: unknown) =>
          err instanceof DeterministicJobError &&
          /^the forest's ONNX model would be about \d+ (MiB|bytes) \(1 of 400 trees grown, \d+ nodes each\), over the limit of 20000 bytes \(TRAINING_MAX_MODEL_BYTES\): limit max_depth/.test(err.message),
      );
      assert.ok(!fits.includes('exporting'), 'stopped in the fit');
      await assert.rejects(t.services.registry.models.getModelSummary('too-large-forest'), /does not exist/);

      await assert.rejects(
        train({ ...pipelineDeps(t), maxModelBytes: 300 }, { dataset: { name: 'synthetic_regression' }, target: 'target', algorithm: 'linear_regression', register_as: 'too-large-linear' }),
        (err: unknown) => err instanceof DeterministicJobError && /^the ONNX model would be \d+ bytes, over the limit of 300 bytes \(TRAINING_MAX_MODEL_BYTES\)/.test(err.message),
      );
      await assert.rejects(t.services.registry.models.getModelSummary('too-large-linear'), /does not exist/);

      // At the default (onnxruntime's bound) the same forest trains and registers.
      const ok = await train(pipelineDeps(t), { dataset: { name: 'synthetic_regression' }, target: 'target', algorithm: 'random_forest', params: { n_estimators: 5, n_jobs: 1 }, register_as: 'fits-forest' });
      assert.equal(ok.model?.name, 'fits-forest');
    });

    void test('breast_cancer end to end with gradient boosting', { skip: !existsSync(BREAST_CANCER) }, async () => {
      const csv = readFileSync(BREAST_CANCER);
      await t.services.datasets.uploadCsv('breast_cancer', csv, { actor: 'test' });
      const result = await train(pipelineDeps(t), {
        dataset: { name: 'breast_cancer' },
        target: 'target',
        algorithm: 'gradient_boosting',
        params: { max_iter: 50 },
        register_as: 'breast-cancer',
        promote_to: 'Production',
        promotion_gate: { metric: 'roc_auc', min: 0.95 },
      });
      assert.ok(result.metrics['accuracy']! > 0.92, `accuracy ${result.metrics['accuracy']}`);
      assert.ok(result.metrics['roc_auc']! > 0.97, `roc_auc ${result.metrics['roc_auc']}`);
      assert.equal(result.model?.stage, 'Production');
      const v = await t.services.registry.models.getVersion('breast-cancer', 1);
      assert.equal(v.signature.featureNames.length, 30);
      assert.equal(v.signature.featureNames[0], 'mean radius');
      assert.deepEqual(v.signature.classLabels, [0, 1]);
    });
  });
}
