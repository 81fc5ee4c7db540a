import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

for (const backend of await storeBackends()) {
  void describe(`tracking routes (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ backend });
    });
    after(async () => {
      await t.close();
    });

    const call = async (role: 'read' | 'train' | 'admin' | 'predict', method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
      const res = await t.app.inject({ method, url, headers: t.headers(role), ...(payload === undefined ? {} : { payload: payload as object }) });
      return { status: res.statusCode, body: String(res.headers['content-type'] ?? '').includes('json') ? res.json() : res.body, raw: res };
    };

    void test('writes need the train role: read and predict keys get 403, no key 401', async () => {
      const run = await t.services.tracking.runs.createRun({ experimentName: 'roles', createExperiment: true });
      const id = run.info.runId;
      const writes: ['POST' | 'PATCH' | 'DELETE', string, unknown][] = [
        ['POST', '/experiments', { name: 'x' }],
        ['PATCH', '/experiments/roles', { name: 'y' }],
        ['DELETE', '/experiments/roles', undefined],
        ['POST', '/experiments/roles/restore', undefined],
        ['POST', '/experiments/roles/runs', {}],
        ['POST', `/runs/${id}/log`, { params: { a: 1 } }],
        ['PATCH', `/runs/${id}`, { status: 'FINISHED' }],
        ['DELETE', `/runs/${id}`, undefined],
        ['POST', `/runs/${id}/restore`, undefined],
        ['DELETE', `/runs/${id}/tags/x`, undefined],
      ];
      for (const [method, url, payload] of writes) {
        for (const role of ['read', 'predict'] as const) {
          const res = await call(role, method, url, payload);
          assert.equal(res.status, 403, `${role} ${method} ${url}`);
          assert.equal((res.body as { error: string }).error, 'forbidden');
        }
      }
      const anon = await t.app.inject({ method: 'GET', url: '/experiments' });
      assert.equal(anon.statusCode, 401);
      // Nothing was changed by the refused calls.
      const after = await t.services.tracking.runs.getRun(id);
      assert.equal(after.info.status, 'RUNNING');
      assert.equal(after.data.params.length, 0);
    });

    void test('create, list and get experiments; 409 on duplicates with the native error body', async () => {
      const created = await call('train', 'POST', '/experiments', { name: 'http-exp', tags: { team: 'ml' } });
      assert.equal(created.status, 201);
      const e = created.body as Record<string, unknown>;
      assert.match(e['experiment_id'] as string, /^\d+$/);
      assert.match(e['creation_time'] as string, ISO);
      assert.deepEqual(e['tags'], { team: 'ml' });
      assert.equal(e['run_count'], 0);
      assert.equal(e['best_run'], null);

      const dup = await call('train', 'POST', '/experiments', { name: 'http-exp' });
      assert.equal(dup.status, 409);
      const err = dup.body as Record<string, unknown>;
      assert.equal(err['error'], 'conflict');
      assert.match(err['details'] as string, /already exists/);
      assert.ok(typeof err['request_id'] === 'string');

      const bad = await call('train', 'POST', '/experiments', { name: '' });
      assert.equal(bad.status, 400);

      const list = await call('read', 'GET', '/experiments');
      assert.equal(list.status, 200);
      const names = (list.body as { experiments: { name: string }[] }).experiments.map((x) => x.name);
      assert.ok(names.includes('http-exp') && names.includes('Default'));

      const one = await call('read', 'GET', '/experiments/http-exp');
      assert.equal(one.status, 200);
      assert.equal((one.body as { name: string }).name, 'http-exp');
      assert.equal((await call('read', 'GET', '/experiments/0')).status, 200);
      assert.equal((await call('read', 'GET', '/experiments/nope')).status, 404);

      const renamed = await call('train', 'PATCH', '/experiments/http-exp', { name: 'http-exp-2', tags: { stage: 'dev' } });
      assert.equal(renamed.status, 200);
      assert.deepEqual((renamed.body as { tags: unknown }).tags, { team: 'ml', stage: 'dev' });
      assert.equal((await call('train', 'PATCH', '/experiments/http-exp-2', { name: 'http-exp' })).status, 200);
    });

    void test('runs: create, log, search, detail with artifacts, history, update, delete and restore', async () => {
      const created = await call('train', 'POST', '/experiments/http-runs/runs', { run_name: 'first', create_experiment: true, tags: { kind: 'rf' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const run = created.body as Record<string, unknown>;
      const id = run['run_id'] as string;
      assert.match(id, /^[0-9a-f]{32}$/);
      assert.equal(run['status'], 'RUNNING');
      assert.match(run['start_time'] as string, ISO);
      assert.equal(run['end_time'], null);
      assert.equal(run['user_id'], 'test-train');
      assert.equal((await call('train', 'POST', '/experiments/missing-exp/runs', {})).status, 404);

      const logged = await call('train', 'POST', `/runs/${id}/log`, {
        params: { max_depth: 8, criterion: 'gini' },
        metrics: [
          { key: 'accuracy', value: 0.8, step: 0, timestamp: '2024-01-01T00:00:00.000Z' },
          { key: 'accuracy', value: 0.9, step: 1, timestamp: 1704067200001 },
          { key: 'train/loss', value: 'NaN', step: 0 },
          { key: 'big', value: 'Infinity' },
        ],
        tags: [{ key: 'note', value: 'hello' }],
      });
      assert.equal(logged.status, 200, JSON.stringify(logged.body));
      assert.deepEqual((logged.body as { logged: unknown }).logged, { params: 2, metrics: 4, tags: 1 });

      const again = await call('train', 'POST', `/runs/${id}/log`, { params: { max_depth: '9' }, metrics: [{ key: 'other', value: 1 }] });
      assert.equal(again.status, 400);
      assert.equal((again.body as { error: string }).error, 'invalid_parameter_value');
      assert.match((again.body as { details: string }).details, /param already logged with a different value/);
      assert.equal((await call('train', 'POST', `/runs/${id}/log`, { params: { max_depth: '8' } })).status, 200);

      const second = await call('train', 'POST', '/experiments/http-runs/runs', { run_name: 'second' });
      const id2 = (second.body as { run_id: string }).run_id;
      await call('train', 'POST', `/runs/${id2}/log`, { params: { max_depth: 4 }, metrics: [{ key: 'accuracy', value: 0.95 }] });

      const tracking = t.services.tracking;
      await tracking.artifacts.logArtifact(id, 'model/model.onnx', Buffer.from('ONNX'));
      await tracking.runs.setRunDataset(id, 'iris', 1);
      await tracking.runs.recordModelOutput(id, 'iris-model', 2);

      const search = await call('read', 'GET', `/experiments/http-runs/runs?filter=${encodeURIComponent("metrics.accuracy > 0.85 and params.max_depth = '8'")}`);
      assert.equal(search.status, 200);
      const runs = (search.body as { runs: { run_id: string; metrics: Record<string, unknown>; params: Record<string, string> }[] }).runs;
      assert.deepEqual(runs.map((r) => r.run_id), [id]);
      assert.equal(runs[0]!.metrics['accuracy'], 0.9);
      assert.equal(runs[0]!.metrics['train/loss'], 'NaN');
      assert.equal(runs[0]!.metrics['big'], 'Infinity');
      assert.equal(runs[0]!.params['max_depth'], '8');

      const ordered = await call('read', 'GET', `/experiments/http-runs/runs?order_by=${encodeURIComponent('metrics.accuracy DESC')}&limit=1`);
      const page1 = ordered.body as { runs: { run_id: string }[]; next_page_token?: string };
      assert.deepEqual(page1.runs.map((r) => r.run_id), [id2]);
      assert.ok(page1.next_page_token !== undefined);
      const page2 = await call('read', 'GET', `/experiments/http-runs/runs?order_by=${encodeURIComponent('metrics.accuracy DESC')}&limit=1&page_token=${page1.next_page_token}`);
      assert.deepEqual((page2.body as { runs: { run_id: string }[] }).runs.map((r) => r.run_id), [id]);

      const badFilter = await call('read', 'GET', `/experiments/http-runs/runs?filter=${encodeURIComponent('metrics.accuracy > 0.9 OR 1')}`);
      assert.equal(badFilter.status, 400);
      assert.match((badFilter.body as { details: string }).details, /character 24.*'OR' is not supported/);

      const detail = await call('read', 'GET', `/experiments/http-runs/runs/${id}`);
      assert.equal(detail.status, 200);
      const d = detail.body as Record<string, unknown>;
      assert.deepEqual(d['params'], { criterion: 'gini', max_depth: '8' });
      assert.equal((d['tags'] as Record<string, string>)['note'], 'hello');
      assert.equal((d['tags'] as Record<string, string>)['mlflow.runName'], 'first');
      assert.deepEqual(d['artifacts'], [{ path: 'model/model.onnx', size: 4 }]);
      assert.deepEqual(d['dataset'], { name: 'iris', version: 1, digest: '1' });
      assert.deepEqual(d['model_versions'], [{ name: 'iris-model', version: 2 }]);
      const latest = (d['latest_metrics'] as { key: string; step: number; timestamp: string }[]).find((m) => m.key === 'accuracy');
      assert.deepEqual(latest, { key: 'accuracy', value: 0.9, step: 1, timestamp: '2024-01-01T00:00:00.001Z' });

      assert.equal((await call('read', 'GET', `/experiments/http-exp/runs/${id}`)).status, 404);
      assert.equal((await call('read', 'GET', `/experiments/http-runs/runs/${'0'.repeat(32)}`)).status, 404);
      assert.equal((await call('read', 'GET', `/runs/${id}`)).status, 200);

      const history = await call('read', 'GET', `/experiments/http-runs/runs/${id}/metrics/accuracy`);
      assert.equal(history.status, 200);
      assert.deepEqual((history.body as { history: unknown[] }).history, [
        { value: 0.8, step: 0, timestamp: '2024-01-01T00:00:00.000Z' },
        { value: 0.9, step: 1, timestamp: '2024-01-01T00:00:00.001Z' },
      ]);
      const slashed = await call('read', 'GET', `/experiments/http-runs/runs/${id}/metrics/${encodeURIComponent('train/loss')}`);
      assert.equal(slashed.status, 200);
      assert.deepEqual((slashed.body as { history: { value: unknown }[] }).history.map((h) => h.value), ['NaN']);
      assert.equal((await call('read', 'GET', `/experiments/http-runs/runs/${id}/metrics/absent`)).status, 404);

      const file = await call('read', 'GET', `/experiments/http-runs/runs/${id}/artifacts/model/model.onnx`);
      assert.equal(file.status, 200);
      assert.equal(file.raw.body, 'ONNX');
      assert.equal((await call('read', 'GET', `/experiments/http-runs/runs/${id}/artifacts/model/missing`)).status, 404);
      assert.equal((await call('read', 'GET', `/experiments/http-runs/runs/${id}/artifacts/model/..%2F..%2Fx`)).status, 400);

      const finished = await call('train', 'PATCH', `/runs/${id}`, { status: 'FINISHED' });
      assert.equal(finished.status, 200);
      assert.equal((finished.body as { status: string }).status, 'FINISHED');
      assert.match((finished.body as { end_time: string }).end_time, ISO);
      assert.equal((await call('train', 'PATCH', `/runs/${id}`, { status: 'DONE' })).status, 400);

      // Deletes are an admin's (API.md).
      assert.equal((await call('train', 'DELETE', `/runs/${id2}`)).status, 403);
      const deleted = await call('admin', 'DELETE', `/runs/${id2}`);
      assert.equal(deleted.status, 200);
      assert.equal((deleted.body as { lifecycle_stage: string }).lifecycle_stage, 'deleted');
      const active = await call('read', 'GET', '/experiments/http-runs/runs');
      assert.deepEqual((active.body as { runs: { run_id: string }[] }).runs.map((r) => r.run_id), [id]);
      const gone = await call('read', 'GET', '/experiments/http-runs/runs?view_type=deleted_only');
      assert.deepEqual((gone.body as { runs: { run_id: string }[] }).runs.map((r) => r.run_id), [id2]);
      assert.equal((await call('train', 'POST', `/runs/${id2}/log`, { metrics: [{ key: 'a', value: 1 }] })).status, 400);
      assert.equal((await call('train', 'POST', `/runs/${id2}/restore`)).status, 200);

      const summary = await call('read', 'GET', '/experiments/http-runs');
      const s = summary.body as { run_count: number; best_run: { run_id: string; metric: { key: string; value: number } } };
      assert.equal(s.run_count, 2);
      assert.equal(s.best_run.run_id, id2);
      assert.deepEqual(s.best_run.metric, { key: 'accuracy', value: 0.95, goal: 'max' });

      assert.equal((await call('train', 'DELETE', `/runs/${id}/tags/note`)).status, 200);
      assert.equal((await call('train', 'DELETE', `/runs/${id}/tags/note`)).status, 404);
    });

    void test('experiment delete and restore over HTTP, with view types', async () => {
      await call('train', 'POST', '/experiments', { name: 'to-delete' });
      assert.equal((await call('train', 'DELETE', '/experiments/to-delete')).status, 403);
      const del = await call('admin', 'DELETE', '/experiments/to-delete');
      assert.equal(del.status, 200);
      assert.equal((del.body as { lifecycle_stage: string }).lifecycle_stage, 'deleted');
      const active = await call('read', 'GET', '/experiments');
      assert.ok(!(active.body as { experiments: { name: string }[] }).experiments.some((e) => e.name === 'to-delete'));
      const deleted = await call('read', 'GET', '/experiments?view_type=deleted_only');
      assert.deepEqual((deleted.body as { experiments: { name: string }[] }).experiments.map((e) => e.name), ['to-delete']);
      assert.equal((await call('train', 'POST', '/experiments', { name: 'to-delete' })).status, 409);
      const restored = await call('train', 'POST', '/experiments/to-delete/restore');
      assert.equal((restored.body as { lifecycle_stage: string }).lifecycle_stage, 'active');
      assert.equal((await call('admin', 'DELETE', '/experiments/Default')).status, 400);
      const filtered = await call('read', 'GET', `/experiments?filter=${encodeURIComponent("name LIKE 'to-%'")}`);
      assert.deepEqual((filtered.body as { experiments: { name: string }[] }).experiments.map((e) => e.name), ['to-delete']);
      const paged = await call('read', 'GET', '/experiments?limit=1');
      assert.equal((paged.body as { experiments: unknown[] }).experiments.length, 1);
      assert.ok((paged.body as { next_page_token?: string }).next_page_token !== undefined);
    });
  });
}
