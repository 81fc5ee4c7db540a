import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../../src/platform/errors.ts';
import { createTracking, type Tracking } from '../../src/tracking/tracking.service.ts';
import type { Run } from '../../src/tracking/tracking.types.ts';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';

/** Asserts that `fn` rejects with an AppError of `status` whose message matches `message`. */
async function rejectsWith(fn: () => Promise<unknown>, status: number, message?: RegExp): Promise<AppError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.equal(err.status, status, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return err;
  }
  assert.fail('expected a rejection');
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

for (const backend of await storeBackends()) {
  void describe(`TrackingService (${backend})`, () => {
    let t: TestApp;
    let svc: Tracking;
    let clock = 1_700_000_000_000;
    const tick = (): number => ++clock;

    before(async () => {
      t = await buildTestApp({ backend });
      svc = createTracking(t.backends.store, t.backends.artifacts, tick);
    });
    after(async () => {
      await t.close();
    });

    void test('the Default experiment "0" exists and cannot be deleted', async () => {
      const d = await svc.experiments.getExperiment('0');
      assert.equal(d.name, 'Default');
      assert.equal(d.lifecycleStage, 'active');
      assert.equal((await svc.experiments.getExperimentByName('Default')).experimentId, '0');
      await rejectsWith(() => svc.experiments.deleteExperiment('0'), 400, /Default experiment/);
      const run = await svc.runs.createRun({});
      assert.equal(run.info.experimentId, '0');
    });

    void test('experiments: numeric string ids, unique names (409), rename, tags, lookups', async () => {
      const a = await svc.experiments.createExperiment({ name: 'exp-a', tags: { team: 'ml' } });
      assert.match(a.experimentId, /^[1-9][0-9]*$/);
      assert.deepEqual(a.tags, { team: 'ml' });
      assert.equal(a.artifactLocation, 'mlflow-artifacts:/runs');
      await rejectsWith(() => svc.experiments.createExperiment({ name: 'exp-a' }), 409, /already exists/);
      const b = await svc.experiments.createExperiment({ name: 'exp-b' });
      assert.equal(Number(b.experimentId), Number(a.experimentId) + 1);
      await rejectsWith(() => svc.experiments.renameExperiment(b.experimentId, 'exp-a'), 409);
      const renamed = await svc.experiments.renameExperiment(b.experimentId, 'exp-b2');
      assert.equal(renamed.name, 'exp-b2');
      assert.ok(renamed.lastUpdateTime > b.lastUpdateTime);
      await svc.experiments.setExperimentTag(b.experimentId, 'k', 'v');
      assert.deepEqual((await svc.experiments.getExperimentByName('exp-b2')).tags, { k: 'v' });
      await svc.experiments.deleteExperimentTag(b.experimentId, 'k');
      await rejectsWith(() => svc.experiments.deleteExperimentTag(b.experimentId, 'k'), 404);
      await rejectsWith(() => svc.experiments.getExperiment('999999'), 404);
      await rejectsWith(() => svc.experiments.getExperiment('abc'), 404);
      await rejectsWith(() => svc.experiments.getExperimentByName('nope'), 404);
      assert.equal((await svc.experiments.resolveExperiment(a.experimentId)).name, 'exp-a');
    });

    void test('params are immutable: same value accepted, different value refused', async () => {
      const run = await svc.runs.createRun({ experimentName: 'params-exp', createExperiment: true });
      await svc.runs.logParam(run.info.runId, 'lr', '0.1');
      await svc.runs.logParam(run.info.runId, 'lr', '0.1');
      await rejectsWith(() => svc.runs.logParam(run.info.runId, 'lr', '0.2'), 400, /param already logged with a different value/);
      const got = await svc.runs.getRun(run.info.runId);
      assert.deepEqual(got.data.params, [{ key: 'lr', value: '0.1' }]);
      await rejectsWith(() => svc.runs.logParam(run.info.runId, '../x', '1'), 400, /invalid param name/);
      await rejectsWith(() => svc.runs.logParam(run.info.runId, 'bad*key', '1'), 400, /invalid param name/);
      await rejectsWith(() => svc.runs.logParam(run.info.runId, 'long', 'x'.repeat(6001)), 400, /longer than 6000/);
      await rejectsWith(() => svc.runs.logParam('0'.repeat(32), 'a', 'b'), 404);
    });

    void test('metric history is append-only, ordered by step, idempotent for identical points, paginated', async () => {
      const run = await svc.runs.createRun({ experimentName: 'metrics-exp', createExperiment: true });
      const id = run.info.runId;
      for (let step = 0; step < 5; step++) await svc.runs.logMetric(id, { key: 'loss', value: 1 / (step + 1), step, timestamp: 1000 + step });
      await svc.runs.logMetric(id, { key: 'loss', value: 0.5, step: 1, timestamp: 1001 });
      await svc.runs.logMetric(id, { key: 'loss', value: 0.7, step: 1, timestamp: 1001 });
      const all = await svc.runs.getMetricHistory(id, 'loss');
      assert.deepEqual(
        all.items.map((m) => [m.step, m.value]),
        [[0, 1], [1, 0.5], [1, 0.7], [2, 1 / 3], [3, 0.25], [4, 0.2]],
      );
      assert.equal(all.nextPageToken, undefined);
      const p1 = await svc.runs.getMetricHistory(id, 'loss', { maxResults: 4 });
      assert.equal(p1.items.length, 4);
      assert.ok(p1.nextPageToken !== undefined);
      const p2 = await svc.runs.getMetricHistory(id, 'loss', { maxResults: 4, pageToken: p1.nextPageToken });
      assert.deepEqual([...p1.items, ...p2.items], all.items);
      assert.equal(p2.nextPageToken, undefined);
      await rejectsWith(() => svc.runs.logMetric(id, { key: 'loss', value: 1, step: 1.5 }), 400, /step .* must be an integer/);
      await rejectsWith(() => svc.runs.logMetric(id, { key: 'loss', value: 'x' as unknown as number }), 400, /must be a number/);
      assert.deepEqual((await svc.runs.getMetricHistory(id, 'absent')).items, []);
    });

    void test("latest metric follows MLflow's greatest (step, timestamp, value) rule", async () => {
      const run = await svc.runs.createRun({ experimentName: 'latest-exp', createExperiment: true });
      const id = run.info.runId;
      const latest = async () => (await svc.runs.getRun(id)).data.metrics.find((m) => m.key === 'acc');
      await svc.runs.logMetric(id, { key: 'acc', value: 0.5, step: 5, timestamp: 100 });
      await svc.runs.logMetric(id, { key: 'acc', value: 0.9, step: 3, timestamp: 999 });
      assert.deepEqual(await latest(), { key: 'acc', value: 0.5, step: 5, timestamp: 100 });
      await svc.runs.logMetric(id, { key: 'acc', value: 0.1, step: 5, timestamp: 101 });
      assert.deepEqual(await latest(), { key: 'acc', value: 0.1, step: 5, timestamp: 101 });
      await svc.runs.logMetric(id, { key: 'acc', value: 0.3, step: 5, timestamp: 101 });
      assert.equal((await latest())?.value, 0.3);
      await svc.runs.logMetric(id, { key: 'acc', value: 0.2, step: 5, timestamp: 101 });
      assert.equal((await latest())?.value, 0.3);
      // Within one batch, the greatest point wins whatever its position.
      await svc.runs.logBatch(id, {
        metrics: [
          { key: 'b', value: 1, step: 9, timestamp: 1 },
          { key: 'b', value: 2, step: 2, timestamp: 5 },
        ],
      });
      const b = (await svc.runs.getRun(id)).data.metrics.find((m) => m.key === 'b');
      assert.deepEqual(b, { key: 'b', value: 1, step: 9, timestamp: 1 });
      assert.equal((await svc.runs.getMetricHistory(id, 'b')).items.length, 2);
    });

    void test('NaN and ±Infinity are stored and read back', async () => {
      const run = await svc.runs.createRun({ experimentName: 'nan-exp', createExperiment: true });
      const id = run.info.runId;
      await svc.runs.logBatch(id, {
        metrics: [
          { key: 'n', value: Number.NaN, timestamp: 1 },
          { key: 'p', value: Number.POSITIVE_INFINITY, timestamp: 1 },
          { key: 'm', value: Number.NEGATIVE_INFINITY, timestamp: 1 },
        ],
      });
      const got = Object.fromEntries((await svc.runs.getRun(id)).data.metrics.map((m) => [m.key, m.value]));
      assert.ok(Number.isNaN(got['n']));
      assert.equal(got['p'], Number.POSITIVE_INFINITY);
      assert.equal(got['m'], Number.NEGATIVE_INFINITY);
      assert.ok(Number.isNaN((await svc.runs.getMetricHistory(id, 'n')).items[0]!.value));
      const e = run.info.experimentId;
      const ids = async (filter: string) => (await svc.runs.searchRuns({ experimentIds: [e], filter })).items.map((r) => r.info.runId);
      assert.deepEqual(await ids('metrics.n > -1'), []);
      assert.deepEqual(await ids('metrics.n != 0'), [id]);
      assert.deepEqual(await ids('metrics.p > 1e300'), [id]);
      assert.deepEqual(await ids('metrics.m < -1e300'), [id]);
    });

    void test('soft delete and restore of runs and experiments, with view types', async () => {
      const exp = await svc.experiments.createExperiment({ name: 'lifecycle' });
      const e = exp.experimentId;
      const r1 = await svc.runs.createRun({ experimentId: e, runName: 'r1' });
      const r2 = await svc.runs.createRun({ experimentId: e, runName: 'r2' });
      const names = async (runViewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL') =>
        (await svc.runs.searchRuns({ experimentIds: [e], runViewType })).items.map((r) => r.info.runName).sort();

      await svc.runs.deleteRun(r1.info.runId);
      const deleted = await svc.runs.getRun(r1.info.runId);
      assert.equal(deleted.info.lifecycleStage, 'deleted');
      assert.ok(deleted.info.deletedTime !== null);
      assert.deepEqual(await names(), ['r2']);
      assert.deepEqual(await names('DELETED_ONLY'), ['r1']);
      assert.deepEqual(await names('ALL'), ['r1', 'r2']);
      await rejectsWith(() => svc.runs.logMetric(r1.info.runId, { key: 'a', value: 1 }), 400, /must be in the 'active' state/);
      await rejectsWith(() => svc.runs.updateRun(r1.info.runId, { status: 'FINISHED' }), 400, /active/);
      await svc.runs.restoreRun(r1.info.runId);
      assert.deepEqual(await names(), ['r1', 'r2']);

      // r1 deleted on its own first; deleting the experiment deletes r2 with it.
      await svc.runs.deleteRun(r1.info.runId);
      await svc.experiments.deleteExperiment(e);
      assert.equal((await svc.experiments.getExperiment(e)).lifecycleStage, 'deleted');
      assert.deepEqual(await names('ALL'), ['r1', 'r2']);
      assert.deepEqual(await names(), []);
      await rejectsWith(() => svc.runs.createRun({ experimentId: e }), 400, /active/);
      await rejectsWith(() => svc.experiments.createExperiment({ name: 'lifecycle' }), 409, /deleted state/);
      await rejectsWith(() => svc.runs.restoreRun(r2.info.runId), 400, /restore the experiment first/);
      const exps = async (viewType: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL') =>
        (await svc.experiments.searchExperiments({ viewType })).items.map((x) => x.name);
      assert.ok(!(await exps('ACTIVE_ONLY')).includes('lifecycle'));
      assert.ok((await exps('DELETED_ONLY')).includes('lifecycle'));
      assert.ok((await exps('ALL')).includes('lifecycle'));

      await svc.experiments.restoreExperiment(e);
      assert.equal((await svc.experiments.getExperiment(e)).lifecycleStage, 'active');
      // Only the run deleted with the experiment comes back.
      assert.deepEqual(await names(), ['r2']);
      assert.deepEqual(await names('DELETED_ONLY'), ['r1']);
    });

    void test('createRun: by name with creation, run name and its tag kept in sync, update, outputs, dataset', async () => {
      await rejectsWith(() => svc.runs.createRun({ experimentName: 'not-there' }), 404);
      const run = await svc.runs.createRun({ experimentName: 'sync-exp', createExperiment: true, tags: { owner: 'me' }, userId: 'alice' });
      assert.match(run.info.runId, /^[0-9a-f]{32}$/);
      assert.match(run.info.runName, /^[a-z]+-[a-z]+-[0-9]+$/);
      assert.equal(run.info.status, 'RUNNING');
      assert.equal(run.info.userId, 'alice');
      assert.equal(run.info.artifactUri, `mlflow-artifacts:/runs/${run.info.runId}/artifacts`);
      const tag = (r: Run, k: string) => r.data.tags.find((x) => x.key === k)?.value;
      assert.equal(tag(run, 'mlflow.runName'), run.info.runName);
      const id = run.info.runId;
      const info = await svc.runs.updateRun(id, { status: 'FINISHED', endTime: 1234, runName: 'renamed' });
      assert.equal(info.status, 'FINISHED');
      assert.equal(info.endTime, 1234);
      assert.equal(tag(await svc.runs.getRun(id), 'mlflow.runName'), 'renamed');
      await svc.runs.setTag(id, 'mlflow.runName', 'via-tag');
      assert.equal((await svc.runs.getRun(id)).info.runName, 'via-tag');
      await rejectsWith(() => svc.runs.updateRun(id, { status: 'DONE' as never }), 400, /invalid run status/);
      await rejectsWith(() => svc.runs.createRun({ experimentName: 'sync-exp', runName: 'a', tags: { 'mlflow.runName': 'b' } }), 400, /different values/);
      await svc.runs.recordModelOutput(id, 'iris', 3);
      await svc.runs.recordModelOutput(id, 'iris', 3);
      await svc.runs.setRunDataset(id, 'iris', 2, 'abc123');
      const got = await svc.runs.getRun(id);
      assert.deepEqual(got.outputs.modelVersions, [{ name: 'iris', version: 3 }]);
      assert.deepEqual(got.inputs.datasetInputs[0]?.dataset, { name: 'iris', version: 2, digest: 'abc123', sourceType: 'modelplane', source: 'datasets/iris/versions/2' });
      await svc.runs.deleteTag(id, 'owner');
      await rejectsWith(() => svc.runs.deleteTag(id, 'owner'), 404);
    });

    void test('logBatch is atomic: one bad entry stores nothing; limits as MLflow', async () => {
      const run = await svc.runs.createRun({ experimentName: 'batch-exp', createExperiment: true });
      const id = run.info.runId;
      await svc.runs.logParam(id, 'lr', '0.1');
      const before = await svc.runs.getRun(id);
      // Conflict found in the store, after metrics and tags were written in the same transaction.
      await rejectsWith(
        () =>
          svc.runs.logBatch(id, {
            metrics: [{ key: 'm', value: 1, timestamp: 1 }],
            params: [{ key: 'depth', value: '3' }, { key: 'lr', value: '0.2' }],
            tags: [{ key: 't', value: 'x' }],
          }),
        400,
        /param already logged with a different value/,
      );
      // A bad key caught by validation.
      await rejectsWith(() => svc.runs.logBatch(id, { metrics: [{ key: 'ok', value: 1 }], tags: [{ key: '', value: 'x' }] }), 400);
      const afterRun = await svc.runs.getRun(id);
      assert.deepEqual(afterRun.data, before.data);
      assert.deepEqual((await svc.runs.getMetricHistory(id, 'm')).items, []);
      await rejectsWith(() => svc.runs.logBatch(id, { params: Array.from({ length: 101 }, (_, i) => ({ key: `p${i}`, value: '1' })) }), 400, /at most 100 params/);
      await rejectsWith(() => svc.runs.logBatch(id, { metrics: Array.from({ length: 1001 }, (_, i) => ({ key: `m${i}`, value: 1 })) }), 400, /at most 1000 metrics/);
      await rejectsWith(
        () =>
          svc.runs.logBatch(id, {
            metrics: Array.from({ length: 950 }, (_, i) => ({ key: `m${i}`, value: 1 })),
            tags: Array.from({ length: 51 }, (_, i) => ({ key: `t${i}`, value: '1' })),
          }),
        400,
        /at most 1000 metrics, params and tags in all/,
      );
      await rejectsWith(() => svc.runs.logBatch(id, { params: [{ key: 'a', value: '1' }, { key: 'a', value: '2' }] }), 400, /twice/);
      // A full-size batch goes through in one call.
      await svc.runs.logBatch(id, { metrics: Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 10}`, value: i, step: i, timestamp: 1 })) });
      const metrics = (await svc.runs.getRun(id)).data.metrics;
      assert.equal(metrics.length, 10);
      assert.equal(metrics.find((m) => m.key === 'k3')?.value, 993);
      assert.equal((await svc.runs.getMetricHistory(id, 'k3')).items.length, 100);
    });

    void test('artifacts: stored under runs/<id>/artifacts, listed by folder, read back; traversal refused', async () => {
      const run = await svc.runs.createRun({ experimentName: 'art-exp', createExperiment: true });
      const id = run.info.runId;
      await svc.artifacts.logArtifact(id, 'model/model.onnx', Buffer.from('onnx-bytes'));
      await svc.artifacts.logArtifact(id, 'model/signature.json', Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]));
      await svc.artifacts.logArtifact(id, 'notes.txt', Buffer.from('hello'));
      assert.equal((await t.backends.artifacts.getBuffer(`runs/${id}/artifacts/model/model.onnx`)).toString(), 'onnx-bytes');
      assert.deepEqual(await svc.artifacts.listArtifacts(id), [
        { path: 'model', isDir: true },
        { path: 'notes.txt', isDir: false, fileSize: 5 },
      ]);
      assert.deepEqual(await svc.artifacts.listArtifacts(id, 'model/'), [
        { path: 'model/model.onnx', isDir: false, fileSize: 10 },
        { path: 'model/signature.json', isDir: false, fileSize: 7 },
      ]);
      assert.equal((await svc.artifacts.readArtifact(id, 'model/signature.json')).toString(), '{"a":1}');
      assert.equal((await collect(await svc.artifacts.getArtifact(id, 'notes.txt'))).toString(), 'hello');
      assert.equal((await svc.artifacts.listAllArtifacts(id)).files.length, 3);
      for (const bad of ['../x', '/etc/passwd', 'a/../../b', 'a//b', 'a\\b', '', './x']) {
        await rejectsWith(() => svc.artifacts.logArtifact(id, bad, Buffer.from('x')), 400, /artifact path/);
        if (bad !== '') await rejectsWith(() => svc.artifacts.readArtifact(id, bad), 400, /artifact path/);
      }
      await rejectsWith(() => svc.artifacts.listArtifacts(id, '../other'), 400);
      await rejectsWith(() => svc.artifacts.readArtifact(id, 'missing.bin'), 404);
      await rejectsWith(() => svc.artifacts.listArtifacts('f'.repeat(32)), 404);
    });

    void describe('searchRuns', () => {
      let e = '';
      const byName = new Map<string, string>();
      before(async () => {
        e = (await svc.experiments.createExperiment({ name: 'search-exp' })).experimentId;
        const specs: { name: string; metrics: Record<string, number>; params: Record<string, string>; tags: Record<string, string>; status?: 'FINISHED' | 'FAILED' }[] = [
          { name: 'alpha', metrics: { accuracy: 0.91, 'my metric': 3 }, params: { max_depth: '8', algo: 'RandomForest' }, tags: { team: 'Vision' }, status: 'FINISHED' },
          { name: 'beta', metrics: { accuracy: 0.85, rmse: 1.5 }, params: { max_depth: '4', algo: 'random_forest' }, tags: { team: 'nlp' }, status: 'FAILED' },
          { name: 'gamma', metrics: { accuracy: 0.97 }, params: { max_depth: '8', algo: 'gbdt' }, tags: { 'mlflow.source': 'x y' } },
          { name: 'delta', metrics: { rmse: 0.5 }, params: { algo: 'linear%' }, tags: { team: 'vision' }, status: 'FINISHED' },
          { name: 'Epsilon', metrics: {}, params: {}, tags: {} },
        ];
        for (const s of specs) {
          const r = await svc.runs.createRun({ experimentId: e, runName: s.name, userId: s.name === 'alpha' ? 'alice' : 'bob' });
          byName.set(s.name, r.info.runId);
          await svc.runs.logBatch(r.info.runId, {
            metrics: Object.entries(s.metrics).map(([key, value]) => ({ key, value, timestamp: 1 })),
            params: Object.entries(s.params).map(([key, value]) => ({ key, value })),
            tags: Object.entries(s.tags).map(([key, value]) => ({ key, value })),
          });
          if (s.status !== undefined) await svc.runs.updateRun(r.info.runId, { status: s.status, endTime: 5000 });
        }
        await svc.runs.setRunDataset(byName.get('alpha')!, 'iris', 2);
        await svc.runs.setRunDataset(byName.get('beta')!, 'wine', 1);
      });

      const names = async (filter: string, orderBy?: string[]) =>
        (await svc.runs.searchRuns({ experimentIds: [e], filter, ...(orderBy === undefined ? {} : { orderBy }) })).items.map((r) => r.info.runName);

      const table: [string, string[]][] = [
        ['', ['alpha', 'beta', 'delta', 'Epsilon', 'gamma']],
        ['metrics.accuracy > 0.9', ['alpha', 'gamma']],
        ['metrics.accuracy >= 0.91', ['alpha', 'gamma']],
        ['metrics.accuracy < 0.9', ['beta']],
        ['metrics.accuracy <= 0.85', ['beta']],
        ['metrics.accuracy = 0.97', ['gamma']],
        ['metrics.accuracy != 0.97', ['alpha', 'beta']],
        ['metrics.`my metric` = 3', ['alpha']],
        ['metrics."my metric" = 3', ['alpha']],
        ["params.max_depth = '8'", ['alpha', 'gamma']],
        ["params.max_depth != '8'", ['beta']],
        ["metrics.accuracy > 0.9 and params.max_depth = '8'", ['alpha', 'gamma']],
        ["metrics.accuracy > 0.9 AND params.algo = 'gbdt'", ['gamma']],
        ["params.algo LIKE 'random%'", ['beta']],
        ["params.algo ILIKE 'random%'", ['alpha', 'beta']],
        ["params.algo LIKE '%Forest'", ['alpha']],
        ["params.algo LIKE 'random_forest'", ['beta']],
        ["params.algo LIKE 'linear\\%'", ['delta']],
        ["params.algo LIKE 'g*'", []],
        ["tags.team ILIKE 'VISION'", ['alpha', 'delta']],
        ["tags.team = 'vision'", ['delta']],
        ["tags.`mlflow.source` = 'x y'", ['gamma']],
        ["tags.mlflow.source LIKE 'x%'", ['gamma']],
        ["status = 'FINISHED'", ['alpha', 'delta']],
        ["attributes.status != 'RUNNING'", ['alpha', 'beta', 'delta']],
        ["status IN ('FAILED', 'RUNNING')", ['beta', 'Epsilon', 'gamma']],
        ["status NOT IN ('FAILED', 'RUNNING')", ['alpha', 'delta']],
        ["run_name ILIKE 'e%'", ['Epsilon']],
        ["run_name LIKE 'e%'", []],
        ["`Run name` = 'beta'", ['beta']],
        ["user_id = 'alice'", ['alpha']],
        ['end_time IS NULL', ['Epsilon', 'gamma']],
        ['end_time > 0', ['alpha', 'beta', 'delta']],
        ['metrics.rmse IS NOT NULL', ['beta', 'delta']],
        ['params.algo IS NULL', ['Epsilon']],
        ["datasets.name = 'iris'", ['alpha']],
        ['datasets.version >= 1', ['alpha', 'beta']],
        ["metrics.accuracy > 0.5 and status = 'FINISHED' and tags.team ILIKE 'v%' and params.max_depth IN ('8', '9')", ['alpha']],
      ];
      for (const [filter, expected] of table) {
        void test(`filter ${JSON.stringify(filter)}`, async () => {
          assert.deepEqual((await names(filter)).sort(), [...expected].sort());
        });
      }

      void test('run_id IN and attribute start_time comparisons', async () => {
        const a = byName.get('alpha')!;
        const g = byName.get('gamma')!;
        assert.deepEqual((await names(`run_id IN ('${a}', '${g}')`)).sort(), ['alpha', 'gamma']);
        assert.deepEqual((await names(`attributes.run_id NOT IN ('${a}')`)).length, 4);
        const start = (await svc.runs.getRun(g)).info.startTime!;
        assert.deepEqual((await names(`start_time >= ${start}`)).sort(), ['Epsilon', 'delta', 'gamma']);
      });

      void test('bad filters are 400s naming the problem', async () => {
        await rejectsWith(() => names('metrics.accuracy > 0.9 OR metrics.rmse < 1'), 400, /character 24.*OR/);
        await rejectsWith(() => names("params.max_depth = 8"), 400, /quote the value/);
        await rejectsWith(() => names('metrics.accuracy >'), 400, /at the end/);
        await rejectsWith(() => svc.runs.searchRuns({ experimentIds: ['x'] }), 400, /not a valid id/);
        await rejectsWith(() => svc.runs.searchRuns({ experimentIds: [e], maxResults: 0 }), 400, /max_results/);
        await rejectsWith(() => svc.runs.searchRuns({ experimentIds: [e], pageToken: 'garbage!' }), 400, /page_token/);
      });

      void test('default order is start_time DESC; order_by puts missing values last both ways', async () => {
        assert.deepEqual(await names(''), ['Epsilon', 'delta', 'gamma', 'beta', 'alpha']);
        assert.deepEqual(await names('', ['metrics.accuracy DESC']), ['gamma', 'alpha', 'beta', 'Epsilon', 'delta']);
        assert.deepEqual(await names('', ['metrics.accuracy ASC']), ['beta', 'alpha', 'gamma', 'Epsilon', 'delta']);
        assert.deepEqual(await names('', ['metrics.rmse']), ['delta', 'beta', 'Epsilon', 'gamma', 'alpha']);
        assert.deepEqual(await names('', ['params.max_depth DESC', 'run_name']), ['alpha', 'gamma', 'beta', 'Epsilon', 'delta']);
        // Equal end times fall back to start_time DESC.
        assert.deepEqual(await names('', ['end_time ASC']), ['delta', 'beta', 'alpha', 'Epsilon', 'gamma']);
        assert.deepEqual(await names('', ['tags.team']), ['alpha', 'beta', 'delta', 'Epsilon', 'gamma']);
        assert.deepEqual(await names('', ['start_time ASC']), ['alpha', 'beta', 'gamma', 'delta', 'Epsilon']);
        await rejectsWith(() => names('', ['metrics.accuracy SIDEWAYS']), 400, /order_by/);
      });

      void test('pages are stable and complete', async () => {
        for (const orderBy of [[], ['metrics.accuracy DESC'], ['params.max_depth'], ['status']]) {
          const full = (await svc.runs.searchRuns({ experimentIds: [e], orderBy })).items.map((r) => r.info.runId);
          const paged: string[] = [];
          let token: string | undefined;
          let pages = 0;
          do {
            const page = await svc.runs.searchRuns({ experimentIds: [e], orderBy, maxResults: 2, ...(token === undefined ? {} : { pageToken: token }) });
            paged.push(...page.items.map((r) => r.info.runId));
            token = page.nextPageToken;
            pages++;
          } while (token !== undefined);
          assert.equal(pages, 3);
          assert.deepEqual(paged, full);
          assert.equal(new Set(paged).size, 5);
        }
      });

      void test('search returns full runs and spans several experiments', async () => {
        const other = await svc.runs.createRun({ experimentName: 'search-exp-2', createExperiment: true, runName: 'zeta' });
        const res = await svc.runs.searchRuns({ experimentIds: [e, other.info.experimentId], filter: "run_name IN ('zeta', 'alpha')" });
        assert.deepEqual(res.items.map((r) => r.info.runName).sort(), ['alpha', 'zeta']);
        const alpha = res.items.find((r) => r.info.runName === 'alpha')!;
        assert.equal(alpha.data.params.length, 2);
        assert.equal(alpha.data.metrics.length, 2);
        assert.equal(alpha.inputs.datasetInputs[0]?.dataset.name, 'iris');
      });

      void test('searchExperiments: filter, order and pages', async () => {
        const res = await svc.experiments.searchExperiments({ filter: "name LIKE 'search-exp%'", orderBy: ['name DESC'] });
        assert.deepEqual(res.items.map((x) => x.name), ['search-exp-2', 'search-exp']);
        const p1 = await svc.experiments.searchExperiments({ maxResults: 1, orderBy: ['experiment_id'] });
        assert.equal(p1.items[0]?.experimentId, '0');
        const p2 = await svc.experiments.searchExperiments({ maxResults: 1, orderBy: ['experiment_id'], pageToken: p1.nextPageToken });
        assert.notEqual(p2.items[0]?.experimentId, '0');
      });

      void test('experiment summary: run count and best run by the primary metric', async () => {
        const exp = await svc.experiments.getExperiment(e);
        const s = (await svc.experiments.summarizeExperiments([exp])).get(e)!;
        assert.equal(s.runCount, 5);
        // beta FAILED is not a candidate; gamma has the highest accuracy.
        assert.equal(s.bestRun?.runName, 'gamma');
        assert.deepEqual(s.bestRun?.metric, { key: 'accuracy', value: 0.97, goal: 'max' });
        await svc.experiments.setExperimentTag(e, 'modelplane.primary_metric', 'rmse');
        const s2 = (await svc.experiments.summarizeExperiments([await svc.experiments.getExperiment(e)])).get(e)!;
        assert.equal(s2.bestRun?.runName, 'delta');
        assert.equal(s2.bestRun?.metric?.goal, 'min');
        await svc.experiments.deleteExperimentTag(e, 'modelplane.primary_metric');
        const empty = await svc.experiments.createExperiment({ name: 'summary-empty' });
        assert.deepEqual((await svc.experiments.summarizeExperiments([empty])).get(empty.experimentId), { runCount: 0, bestRun: null });
        const plain = await svc.runs.createRun({ experimentId: empty.experimentId, runName: 'only' });
        const s3 = (await svc.experiments.summarizeExperiments([empty])).get(empty.experimentId)!;
        assert.deepEqual(s3.bestRun, { runId: plain.info.runId, runName: 'only', metric: null });
      });
    });
  });
}
