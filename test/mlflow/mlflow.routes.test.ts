/**
 * Conformance of the MLflow surface, driven over HTTP as MLflow's Python client drives it, on
 * SQLite and PostgreSQL: wire rules (methods, query strings and JSON bodies, int64 as strings,
 * enums by number, `run_uuid`, compact replies, NaN), errors and their statuses, auth, the
 * tracking and registry endpoints, the artifact proxy, and that it is the native API's data (a
 * run logged here shows under `/experiments`; a version registered here serves on `/predict`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';
import { classifierOnnx } from '../registry/fixtures.ts';
import { call, type Credentials, type MlflowAnswer } from './client.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

for (const backend of await storeBackends()) {
  describe(`MLflow REST surface (${backend})`, { timeout: 300_000 }, () => {
    let t: TestApp;
    let admin: Credentials;
    let train: Credentials;
    let read: Credentials;
    const as = (who: Credentials) => (method: Method, endpoint: string, message?: Record<string, unknown>) => call(t.app, who, method, endpoint, message);
    const ok = async (answer: Promise<MlflowAnswer>): Promise<Record<string, unknown>> => {
      const a = await answer;
      assert.equal(a.status, 200, a.text);
      return a.body;
    };
    const fails = async (answer: Promise<MlflowAnswer>, status: number, code: string): Promise<string> => {
      const a = await answer;
      assert.equal(a.status, status, a.text);
      assert.equal(a.body['error_code'], code, a.text);
      assert.equal(typeof a.body['message'], 'string');
      return a.body['message'] as string;
    };

    before(async () => {
      t = await buildTestApp({ backend });
      admin = { bearer: t.keys.admin };
      train = { basic: { user: 'ci', password: t.keys.train } };
      read = { bearer: t.keys.read };
    });
    after(async () => {
      await t?.close();
    });

    test('experiments: create, get, get-by-name, update, tags, search with paging, list, delete and restore', async () => {
      const api = as(train);
      const created = await ok(api('POST', 'experiments/create', { name: 'mlf-exp', tags: [{ key: 'team', value: 'fraud' }] }));
      const id = created['experiment_id'] as string;
      assert.match(id, /^[0-9]+$/);
      await fails(api('POST', 'experiments/create', { name: 'mlf-exp' }), 400, 'RESOURCE_ALREADY_EXISTS');
      await fails(api('POST', 'experiments/create', {}), 400, 'INVALID_PARAMETER_VALUE');

      const got = (await ok(api('GET', 'experiments/get', { experiment_id: id })))['experiment'] as Record<string, unknown>;
      assert.equal(got['name'], 'mlf-exp');
      assert.equal(got['lifecycle_stage'], 'active');
      assert.equal(typeof got['creation_time'], 'number');
      assert.deepEqual(got['tags'], [{ key: 'team', value: 'fraud' }]);
      const byName = (await ok(api('GET', 'experiments/get-by-name', { experiment_name: 'mlf-exp' })))['experiment'] as Record<string, unknown>;
      assert.equal(byName['experiment_id'], id);
      await fails(api('GET', 'experiments/get', { experiment_id: '987654' }), 404, 'RESOURCE_DOES_NOT_EXIST');
      await fails(api('GET', 'experiments/get-by-name', { experiment_name: 'nope' }), 404, 'RESOURCE_DOES_NOT_EXIST');

      assert.deepEqual(await ok(api('POST', 'experiments/update', { experiment_id: id, new_name: 'mlf-exp-2' })), {});
      assert.deepEqual(await ok(api('POST', 'experiments/set-experiment-tag', { experiment_id: id, key: 'owner', value: 'ana' })), {});
      await ok(api('POST', 'experiments/create', { name: 'mlf-other' }));

      // Filter and order as the client sends them (POST body; GET with a query string works too).
      const search = await ok(api('POST', 'experiments/search', { filter: "name LIKE 'mlf-%' and tags.team = 'fraud'", max_results: 10, order_by: ['name ASC'] }));
      assert.deepEqual((search['experiments'] as { name: string }[]).map((e) => e.name), ['mlf-exp-2']);
      const page1 = await ok(api('GET', 'experiments/search', { filter: "name LIKE 'mlf-%'", max_results: '1', order_by: 'name DESC' }));
      assert.deepEqual((page1['experiments'] as { name: string }[]).map((e) => e.name), ['mlf-other']);
      const page2 = await ok(api('GET', 'experiments/search', { filter: "name LIKE 'mlf-%'", max_results: '1', order_by: 'name DESC', page_token: page1['next_page_token'] }));
      assert.deepEqual((page2['experiments'] as { name: string }[]).map((e) => e.name), ['mlf-exp-2']);
      await fails(api('POST', 'experiments/search', { filter: 'name = ' }), 400, 'INVALID_PARAMETER_VALUE');

      assert.deepEqual(await ok(api('POST', 'experiments/delete', { experiment_id: id })), {});
      const active = await ok(api('GET', 'experiments/list', {}));
      assert.ok(!(active['experiments'] as { experiment_id: string }[]).some((e) => e.experiment_id === id));
      // view_type as its protobuf number (2 = DELETED_ONLY).
      const deleted = await ok(api('POST', 'experiments/search', { view_type: 2 }));
      assert.deepEqual((deleted['experiments'] as { experiment_id: string }[]).map((e) => e.experiment_id), [id]);
      await fails(api('POST', 'runs/create', { experiment_id: id }), 400, 'INVALID_PARAMETER_VALUE');
      await ok(api('POST', 'experiments/restore', { experiment_id: id }));
      const restored = (await ok(api('GET', 'experiments/get', { experiment_id: id })))['experiment'] as Record<string, unknown>;
      assert.equal(restored['lifecycle_stage'], 'active');
      assert.equal(restored['name'], 'mlf-exp-2');
    });

    test('runs: create, log (metric, param, tag, batch, model), get, update, search, history; the native API sees the run', async () => {
      const api = as(train);
      const exp = (await ok(api('POST', 'experiments/create', { name: 'mlf-runs' })))['experiment_id'] as string;
      const run = (await ok(api('POST', 'runs/create', { experiment_id: exp, start_time: '1700000000000', run_name: 'first', tags: [{ key: 'mlflow.user', value: 'ana' }] })))['run'] as {
        info: Record<string, unknown>;
        data: { tags: { key: string; value: string }[] };
      };
      const runId = run.info['run_id'] as string;
      assert.equal(run.info['run_uuid'], runId);
      assert.equal(run.info['status'], 'RUNNING');
      assert.equal(run.info['start_time'], 1_700_000_000_000, 'int64 in as a string, out as a number');
      assert.equal(run.info['run_name'], 'first');
      assert.equal(run.info['artifact_uri'], `mlflow-artifacts:/runs/${runId}/artifacts`);
      assert.ok(!('end_time' in run.info), 'unset fields are omitted');
      assert.ok(run.data.tags.some((tag) => tag.key === 'mlflow.runName' && tag.value === 'first'));

      assert.deepEqual(await ok(api('POST', 'runs/log-metric', { run_uuid: runId, key: 'loss', value: 0.9, timestamp: '1700000000001', step: '0' })), {});
      await ok(api('POST', 'runs/log-metric', { run_id: runId, key: 'loss', value: 0.4, timestamp: 1_700_000_000_002, step: 1 }));
      await ok(api('POST', 'runs/log-metric', { run_id: runId, key: 'odd', value: 'NaN', timestamp: 1, step: 0 }));
      await ok(api('POST', 'runs/log-parameter', { run_id: runId, key: 'depth', value: '8' }));
      await ok(api('POST', 'runs/log-parameter', { run_id: runId, key: 'depth', value: '8' }));
      await fails(api('POST', 'runs/log-parameter', { run_id: runId, key: 'depth', value: '9' }), 400, 'INVALID_PARAMETER_VALUE');
      await ok(api('POST', 'runs/set-tag', { run_id: runId, key: 'stage', value: 'dev' }));
      await ok(api('POST', 'runs/set-tag', { run_id: runId, key: 'gone', value: 'x' }));
      await ok(api('POST', 'runs/delete-tag', { run_id: runId, key: 'gone' }));
      await fails(api('POST', 'runs/delete-tag', { run_id: runId, key: 'gone' }), 404, 'RESOURCE_DOES_NOT_EXIST');
      await fails(api('POST', 'runs/log-metric', { run_id: runId, key: 'bad key!', value: 1, timestamp: 1 }), 400, 'INVALID_PARAMETER_VALUE');
      await fails(api('POST', 'runs/log-metric', { key: 'x', value: 1 }), 400, 'INVALID_PARAMETER_VALUE');

      // log-batch: MLflow's limits, atomic with params.
      const metrics = Array.from({ length: 998 }, (_, i) => ({ key: 'acc', value: i / 1000, timestamp: 1_700_000_000_000 + i, step: i }));
      await ok(api('POST', 'runs/log-batch', { run_id: runId, metrics, params: [{ key: 'lr', value: '0.1' }], tags: [{ key: 'batch', value: 'yes' }] }));
      await fails(api('POST', 'runs/log-batch', { run_id: runId, metrics, params: [{ key: 'lr', value: '0.1' }], tags: [{ key: 'a', value: '1' }, { key: 'b', value: '1' }] }), 400, 'INVALID_PARAMETER_VALUE');
      await fails(api('POST', 'runs/log-batch', { run_id: runId, metrics: [...metrics, ...metrics.slice(0, 3)] }), 400, 'INVALID_PARAMETER_VALUE');
      await fails(
        api('POST', 'runs/log-batch', { run_id: runId, params: Array.from({ length: 101 }, (_, i) => ({ key: `p${i}`, value: '1' })) }),
        400,
        'INVALID_PARAMETER_VALUE',
      );
      await fails(api('POST', 'runs/log-batch', { run_id: runId, metrics: [{ key: 'z', value: 1, timestamp: 1 }], params: [{ key: 'lr', value: '0.2' }] }), 400, 'INVALID_PARAMETER_VALUE');

      const model = { artifact_path: 'model', flavors: { onnx: {} }, utc_time_created: '2024-01-01 00:00:00.000000', run_id: runId };
      await ok(api('POST', 'runs/log-model', { run_id: runId, model_json: JSON.stringify(model) }));
      await fails(api('POST', 'runs/log-model', { run_id: runId, model_json: '{"flavors": {}}' }), 400, 'INVALID_PARAMETER_VALUE');

      const got = ((await ok(api('GET', 'runs/get', { run_id: runId })))['run'] as { data: { metrics: { key: string; value: unknown; step: number }[]; params: unknown[]; tags: { key: string; value: string }[] } }).data;
      const byKey = Object.fromEntries(got.metrics.map((m) => [m.key, m]));
      assert.equal(byKey['loss']?.value, 0.4);
      assert.equal(byKey['odd']?.value, 'NaN', 'NaN as protobuf JSON writes it');
      assert.equal(byKey['acc']?.step, 997);
      assert.ok(!('z' in byKey), 'a refused batch logs nothing');
      assert.deepEqual(
        got.params.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
        [
          { key: 'depth', value: '8' },
          { key: 'lr', value: '0.1' },
        ],
      );
      const history = JSON.parse(got.tags.find((tag) => tag.key === 'mlflow.log-model.history')!.value) as unknown[];
      assert.deepEqual(history, [model]);

      const hist = await ok(api('GET', 'metrics/get-history', { run_id: runId, metric_key: 'loss' }));
      assert.deepEqual((hist['metrics'] as { value: number }[]).map((m) => m.value), [0.9, 0.4]);

      // status by protobuf number (3 = FINISHED), end_time as a string.
      const updated = await ok(api('POST', 'runs/update', { run_id: runId, status: 3, end_time: '1700000009999' }));
      assert.equal((updated['run_info'] as Record<string, unknown>)['status'], 'FINISHED');
      assert.equal((updated['run_info'] as Record<string, unknown>)['end_time'], 1_700_000_009_999);
      await fails(api('POST', 'runs/update', { run_id: runId, status: 'DONE' }), 400, 'INVALID_PARAMETER_VALUE');

      const second = ((await ok(api('POST', 'runs/create', { experiment_id: exp, run_name: 'second' })))['run'] as { info: { run_id: string } }).info.run_id;
      await ok(api('POST', 'runs/log-batch', { run_id: second, metrics: [{ key: 'loss', value: 0.2, timestamp: 1, step: 0 }], params: [{ key: 'depth', value: '4' }] }));
      const found = await ok(api('POST', 'runs/search', { experiment_ids: [exp], filter: 'metrics.loss < 0.5', order_by: ['metrics.loss ASC'], max_results: 1 }));
      assert.deepEqual((found['runs'] as { info: { run_id: string } }[]).map((r) => r.info.run_id), [second]);
      const next = await ok(api('POST', 'runs/search', { experiment_ids: [exp], filter: 'metrics.loss < 0.5', order_by: ['metrics.loss ASC'], max_results: 1, page_token: found['next_page_token'] }));
      assert.deepEqual((next['runs'] as { info: { run_id: string } }[]).map((r) => r.info.run_id), [runId]);
      assert.ok(!('next_page_token' in next));
      const byParam = await ok(api('POST', 'runs/search', { experiment_ids: [exp], filter: "params.depth = '8' and attributes.status = 'FINISHED'" }));
      assert.equal((byParam['runs'] as unknown[]).length, 1);
      assert.deepEqual(await ok(api('POST', 'runs/search', { experiment_ids: [exp], filter: "tags.stage = 'prod'" })), {}, 'an empty answer is {}');

      // The same data on the native API.
      const native = await t.app.inject({ url: `/experiments/mlf-runs/runs/${runId}`, headers: t.headers('read') });
      assert.equal(native.statusCode, 200, native.body);
      assert.equal(native.json().run_name, 'first');

      await ok(api('POST', 'runs/delete', { run_id: second }));
      await fails(api('POST', 'runs/log-metric', { run_id: second, key: 'loss', value: 1, timestamp: 1 }), 400, 'INVALID_PARAMETER_VALUE');
      const deleted = await ok(api('POST', 'runs/search', { experiment_ids: [exp], run_view_type: 'DELETED_ONLY' }));
      assert.deepEqual((deleted['runs'] as { info: { run_id: string } }[]).map((r) => r.info.run_id), [second]);
      await ok(api('POST', 'runs/restore', { run_id: second }));
      await fails(api('GET', 'runs/get', { run_id: 'f'.repeat(32) }), 404, 'RESOURCE_DOES_NOT_EXIST');
    });

    test('auth: Bearer and Basic keys with the native roles; errors in MLflow shape', async () => {
      await fails(call(t.app, null, 'GET', 'experiments/search', {}), 401, 'UNAUTHENTICATED');
      await fails(call(t.app, { bearer: 'mp_wrong' }, 'GET', 'experiments/search', {}), 401, 'UNAUTHENTICATED');
      await ok(call(t.app, read, 'GET', 'experiments/search', {}));
      await fails(call(t.app, read, 'POST', 'experiments/create', { name: 'by-reader' }), 403, 'PERMISSION_DENIED');
      await ok(call(t.app, { basic: { user: 'anyone', password: t.keys.train } }, 'POST', 'experiments/create', { name: 'by-basic' }));
      await fails(call(t.app, admin, 'GET', 'experiments/nope', {}), 404, 'ENDPOINT_NOT_FOUND');
      // The ajax-api copy used by MLflow's UI.
      const ajax = await call(t.app, read, 'GET', 'experiments/get-by-name', { experiment_name: 'by-basic' }, '/ajax-api/2.0/mlflow');
      assert.equal(ajax.status, 200, ajax.text);
      // A malformed body is INVALID_PARAMETER_VALUE/BAD_REQUEST in MLflow's shape, never the native one.
      const bad = await t.app.inject({ method: 'POST', url: '/api/2.0/mlflow/experiments/create', headers: { authorization: `Bearer ${t.keys.admin}`, 'content-type': 'application/json' }, payload: '{"name":' });
      assert.equal(bad.statusCode, 400);
      assert.ok(typeof bad.json().error_code === 'string', bad.body);
    });

    test('artifacts through the proxy, a version registered from the run, stages and aliases, and /predict', async () => {
      const api = as(train);
      const boss = as(admin);
      const exp = (await ok(api('POST', 'experiments/create', { name: 'mlf-models' })))['experiment_id'] as string;
      const runId = ((await ok(api('POST', 'runs/create', { experiment_id: exp })))['run'] as { info: { run_id: string; artifact_uri: string } }).info.run_id;
      const onnx = Buffer.from(classifierOnnx());
      const base = `/api/2.0/mlflow-artifacts/artifacts/runs/${runId}/artifacts`;
      const put = (path: string, body: Buffer | string) =>
        t.app.inject({ method: 'PUT', url: `${base}/${path}`, headers: { authorization: `Bearer ${t.keys.train}` }, payload: body });
      assert.equal((await put('model/model.onnx', onnx)).statusCode, 200);
      const mlmodel = 'artifact_path: model\nflavors:\n  onnx: {}\n';
      assert.equal((await put('model/MLmodel', mlmodel)).statusCode, 200);
      const readOnly = await t.app.inject({ method: 'PUT', url: `${base}/x.txt`, headers: { authorization: `Bearer ${t.keys.read}` }, payload: 'x' });
      assert.equal(readOnly.statusCode, 403);
      const escape = await t.app.inject({ method: 'PUT', url: `/api/2.0/mlflow-artifacts/artifacts/elsewhere/x.txt`, headers: { authorization: `Bearer ${t.keys.train}` }, payload: 'x' });
      assert.equal(escape.statusCode, 400);
      assert.equal(escape.json().error_code, 'INVALID_PARAMETER_VALUE');

      const listed = await t.app.inject({ url: `/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(`runs/${runId}/artifacts/model`)}`, headers: { authorization: `Bearer ${t.keys.read}` } });
      assert.deepEqual(listed.json(), { files: [{ path: 'MLmodel', is_dir: false, file_size: Buffer.byteLength(mlmodel) }, { path: 'model.onnx', is_dir: false, file_size: onnx.length }] });
      const listApi = await ok(as(read)('GET', 'artifacts/list', { run_id: runId }));
      assert.deepEqual(listApi, { root_uri: `mlflow-artifacts:/runs/${runId}/artifacts`, files: [{ path: 'model', is_dir: true }] });
      const down = await t.app.inject({ url: `${base}/model/model.onnx`, headers: { authorization: `Bearer ${t.keys.read}` } });
      assert.equal(down.statusCode, 200);
      assert.ok(down.rawPayload.equals(onnx));
      const missing = await t.app.inject({ url: `${base}/model/none.onnx`, headers: { authorization: `Bearer ${t.keys.read}` } });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.json().error_code, 'RESOURCE_DOES_NOT_EXIST');

      // What mlflow.register_model does: create the model (tolerating RESOURCE_ALREADY_EXISTS), then a version from the run's URI.
      const rm = await ok(api('POST', 'registered-models/create', { name: 'mlf-clf', description: 'fraud', tags: [{ key: 'team', value: 'risk' }] }));
      assert.equal((rm['registered_model'] as Record<string, unknown>)['name'], 'mlf-clf');
      await fails(api('POST', 'registered-models/create', { name: 'mlf-clf' }), 400, 'RESOURCE_ALREADY_EXISTS');
      await fails(api('POST', 'model-versions/create', { name: 'no-such-model', source: `runs:/${runId}/model` }), 404, 'RESOURCE_DOES_NOT_EXIST');
      await fails(api('POST', 'model-versions/create', { name: 'mlf-clf', source: 's3://elsewhere/model' }), 400, 'INVALID_PARAMETER_VALUE');
      const mv = (await ok(api('POST', 'model-versions/create', { name: 'mlf-clf', source: `mlflow-artifacts:/runs/${runId}/artifacts/model`, run_id: runId, tags: [{ key: 'k', value: 'v' }] })))['model_version'] as Record<string, unknown>;
      assert.equal(mv['version'], '1');
      assert.equal(mv['status'], 'READY');
      assert.equal(mv['current_stage'], 'None');
      assert.equal(mv['run_id'], runId);
      assert.equal(mv['source'], `runs:/${runId}/model`);
      const mv2 = (await ok(api('POST', 'model-versions/create', { name: 'mlf-clf', source: `runs:/${runId}/model` })))['model_version'] as Record<string, unknown>;
      assert.equal(mv2['version'], '2');

      // Stages with the native roles: Production needs admin.
      await fails(api('POST', 'model-versions/transition-stage', { name: 'mlf-clf', version: '1', stage: 'production', archive_existing_versions: false }), 403, 'PERMISSION_DENIED');
      const prod = await ok(boss('POST', 'model-versions/transition-stage', { name: 'mlf-clf', version: '1', stage: 'production', archive_existing_versions: 'false' }));
      assert.equal((prod['model_version'] as Record<string, unknown>)['current_stage'], 'Production');
      await ok(api('POST', 'model-versions/transition-stage', { name: 'mlf-clf', version: 2, stage: 'Staging', archive_existing_versions: false }));
      const latest = await ok(as(read)('GET', 'registered-models/get-latest-versions', { name: 'mlf-clf', stages: ['Production', 'Staging'] }));
      assert.deepEqual((latest['model_versions'] as { version: string; current_stage: string }[]).map((v) => [v.version, v.current_stage]), [['1', 'Production'], ['2', 'Staging']]);

      const predicted = await t.app.inject({ method: 'POST', url: '/predict?model=mlf-clf&stage=Production', headers: t.headers('predict'), payload: { a: 1, b: 2 } });
      assert.equal(predicted.statusCode, 200, predicted.body);
      assert.equal(String(predicted.json().model_version), '1');
      assert.ok(['yes', 'no'].includes(predicted.json().prediction));

      await fails(api('POST', 'registered-models/alias', { name: 'mlf-clf', alias: 'champion', version: '2' }), 403, 'PERMISSION_DENIED');
      assert.deepEqual(await ok(boss('POST', 'registered-models/alias', { name: 'mlf-clf', alias: 'champion', version: '2' })), {});
      await fails(boss('POST', 'registered-models/alias', { name: 'mlf-clf', alias: 'latest', version: '2' }), 400, 'INVALID_PARAMETER_VALUE');
      const byAlias = (await ok(as(read)('GET', 'registered-models/alias', { name: 'mlf-clf', alias: 'champion' })))['model_version'] as Record<string, unknown>;
      assert.equal(byAlias['version'], '2');
      assert.deepEqual(byAlias['aliases'], ['champion']);
      const aliasPredict = await t.app.inject({ method: 'POST', url: '/predict?model=mlf-clf&alias=champion', headers: t.headers('predict'), payload: { a: 1, b: 2 } });
      assert.equal(String(aliasPredict.json().model_version), '2', aliasPredict.body);

      const model = (await ok(as(read)('GET', 'registered-models/get', { name: 'mlf-clf' })))['registered_model'] as Record<string, unknown>;
      assert.deepEqual(model['aliases'], [{ alias: 'champion', version: '2' }]);
      assert.deepEqual(model['tags'], [{ key: 'team', value: 'risk' }]);
      assert.equal((model['latest_versions'] as unknown[]).length, 2);

      // Download as the client resolves models:/mlf-clf@champion: download URI, then the proxy.
      const uri = (await ok(as(read)('GET', 'model-versions/get-download-uri', { name: 'mlf-clf', version: '2' })))['artifact_uri'] as string;
      assert.equal(uri, `mlflow-artifacts:/runs/${runId}/artifacts/model`);
      const viaUri = await t.app.inject({ url: `/api/2.0/mlflow-artifacts/artifacts/${uri.slice('mlflow-artifacts:/'.length)}/model.onnx`, headers: { authorization: `Bearer ${t.keys.read}` } });
      assert.ok(viaUri.rawPayload.equals(onnx));

      // Tags, descriptions, searches.
      await ok(api('POST', 'model-versions/set-tag', { name: 'mlf-clf', version: '2', key: 'validated', value: 'yes' }));
      await ok(api('PATCH', 'model-versions/update', { name: 'mlf-clf', version: '2', description: 'second' }));
      await ok(api('POST', 'registered-models/set-tag', { name: 'mlf-clf', key: 'tier', value: 'gold' }));
      await ok(api('DELETE', 'registered-models/delete-tag', { name: 'mlf-clf', key: 'team' }));
      await ok(api('PATCH', 'registered-models/update', { name: 'mlf-clf', description: 'fraud v2' }));
      const versions = await ok(as(read)('GET', 'model-versions/search', { filter: `run_id = '${runId}' and tags.validated = 'yes'` }));
      assert.deepEqual((versions['model_versions'] as { version: string; description: string }[]).map((v) => [v.version, v.description]), [['2', 'second']]);
      const all = await ok(as(read)('GET', 'model-versions/search', { filter: "name = 'mlf-clf'", max_results: 1 }));
      assert.deepEqual((all['model_versions'] as { version: string }[]).map((v) => v.version), ['2']);
      assert.ok(typeof all['next_page_token'] === 'string');
      const models = await ok(as(read)('GET', 'registered-models/search', { filter: "name ILIKE 'MLF-%' and tags.tier = 'gold'" }));
      assert.deepEqual((models['registered_models'] as { name: string; description: string }[]).map((m) => [m.name, m.description]), [['mlf-clf', 'fraud v2']]);

      // The registry's rules: a serving version cannot be deleted.
      await fails(boss('DELETE', 'model-versions/delete', { name: 'mlf-clf', version: '1' }), 409, 'RESOURCE_CONFLICT');

      // Rename: versions, aliases and stages follow; the old name is gone; history records it.
      await fails(api('POST', 'registered-models/rename', { name: 'mlf-clf', new_name: 'mlf-fraud' }), 403, 'PERMISSION_DENIED');
      const renamed = (await ok(boss('POST', 'registered-models/rename', { name: 'mlf-clf', new_name: 'mlf-fraud' })))['registered_model'] as Record<string, unknown>;
      assert.equal(renamed['name'], 'mlf-fraud');
      await fails(as(read)('GET', 'registered-models/get', { name: 'mlf-clf' }), 404, 'RESOURCE_DOES_NOT_EXIST');
      const moved = (await ok(as(read)('GET', 'model-versions/get', { name: 'mlf-fraud', version: '2' })))['model_version'] as Record<string, unknown>;
      assert.deepEqual(moved['aliases'], ['champion']);
      const renamedPredict = await t.app.inject({ method: 'POST', url: '/predict?model=mlf-fraud&stage=Production', headers: t.headers('predict'), payload: { a: 1, b: 2 } });
      assert.equal(renamedPredict.statusCode, 200, renamedPredict.body);
      const nativeHistory = await t.app.inject({ url: '/models/mlf-fraud/history', headers: t.headers('read') });
      const actions = (nativeHistory.json().entries ?? nativeHistory.json().history ?? nativeHistory.json().items ?? []) as { action: string }[];
      assert.ok(nativeHistory.body.includes('model.rename'), nativeHistory.body);
      assert.ok(actions.length === 0 || actions.some((a) => a.action === 'stage'));

      // The run lists the versions it produced (native run view).
      const runView = await t.app.inject({ url: `/experiments/mlf-models/runs/${runId}`, headers: t.headers('read') });
      assert.ok(runView.body.includes('mlf-fraud'), runView.body);

      await ok(boss('DELETE', 'registered-models/alias', { name: 'mlf-fraud', alias: 'champion' }));
      await fails(boss('DELETE', 'registered-models/alias', { name: 'mlf-fraud', alias: 'champion' }), 404, 'RESOURCE_DOES_NOT_EXIST');
      await ok(boss('POST', 'model-versions/transition-stage', { name: 'mlf-fraud', version: '2', stage: 'Archived', archive_existing_versions: false }));
      await ok(boss('DELETE', 'model-versions/delete', { name: 'mlf-fraud', version: '2' }));
      await fails(as(read)('GET', 'model-versions/get', { name: 'mlf-fraud', version: '2' }), 404, 'RESOURCE_DOES_NOT_EXIST');
    });
  });
}
