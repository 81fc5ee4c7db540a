import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';
import { classifierOnnx, externalDataOnnx, multipart, regressorOnnx, unknownOpOnnx } from './fixtures.ts';

interface VersionBody {
  name: string;
  version: number;
  stage: string;
  aliases: string[];
  run_id: string | null;
  dataset: { name: string; version: number | null } | null;
  sha256: string;
  size_bytes: number;
  artifact_key: string;
  created_by: string;
  description: string | null;
  tags: Record<string, string>;
  signature: {
    input: { name: string; n_features: number; fixed_batch: number | null; rank: number };
    feature_names: string[];
    task: string;
    class_labels: (string | number)[] | null;
    outputs: Record<string, string>;
  };
}

const backends = await storeBackends();

for (const backend of backends) {
  describe(`model registry over HTTP (${backend})`, () => {
    let t: TestApp;
    const keyIds: Record<string, string> = {};

    before(async () => {
      t = await buildTestApp({ backend });
      for (const role of ['read', 'train', 'admin'] as const) {
        const p = await t.services.keys.authenticate(t.keys[role]);
        keyIds[role] = p!.keyId;
      }
    });
    after(async () => {
      await t.close();
    });

    const upload = (name: string, bytes: Uint8Array, role: 'read' | 'train' | 'admin' = 'train', fields: Record<string, string> = {}) => {
      const body = multipart(fields, { bytes });
      return t.app.inject({ method: 'POST', url: `/models/${encodeURIComponent(name)}/versions`, payload: body.payload, headers: { ...body.headers, ...t.headers(role) } });
    };
    const raw = (name: string, bytes: Uint8Array, query = '') =>
      t.app.inject({
        method: 'POST',
        url: `/models/${encodeURIComponent(name)}/versions${query}`,
        payload: Buffer.from(bytes),
        headers: { 'content-type': 'application/octet-stream', ...t.headers('train') },
      });
    const transition = (name: string, version: number, stage: string, role: 'train' | 'admin', archive?: boolean) =>
      t.app.inject({
        method: 'POST',
        url: '/models/transition',
        payload: { name, version, stage, ...(archive === undefined ? {} : { archive_existing_versions: archive }) },
        headers: t.headers(role),
      });
    const versionRows = async (name: string) =>
      t.backends.store.db.selectFrom('model_versions').select('version').where('model', '=', name).orderBy('version').execute();

    test('multipart upload stores the bundle, infers the signature and serves the bytes back', async () => {
      // The lineage must point at a run and a dataset version that exist.
      const run = await t.app.inject({ method: 'POST', url: '/experiments/e/runs', headers: t.headers('admin'), payload: { create_experiment: true } });
      const runId = run.json<{ run_id: string }>().run_id;
      for (let i = 0; i < 3; i += 1) {
        const ds = await t.app.inject({ method: 'POST', url: '/datasets/customers', headers: { ...t.headers('admin'), 'content-type': 'text/csv' }, payload: `a,b\n1,${i}\n` });
        assert.equal(ds.statusCode, 201, ds.body);
      }
      const res = await upload('churn', classifierOnnx(), 'train', { description: 'first', run_id: runId, reference_dataset: 'customers:3', tags: '{"team":"a"}' });
      assert.equal(res.statusCode, 201, res.body);
      const v = res.json<VersionBody>();
      assert.equal(v.version, 1);
      assert.equal(v.stage, 'None');
      assert.equal(v.description, 'first');
      assert.equal(v.run_id, runId);
      assert.deepEqual(v.dataset, { name: 'customers', version: 3 });
      assert.deepEqual(v.tags, { team: 'a' });
      assert.equal(v.created_by, keyIds['train']);
      assert.equal(v.signature.task, 'classification');
      assert.deepEqual(v.signature.class_labels, ['no', 'yes']);
      assert.deepEqual(v.signature.feature_names, ['a', 'b']);
      assert.equal(v.artifact_key, 'models/churn/1/model.onnx');

      const keys = (await t.backends.artifacts.list('models/churn/1/')).map((a) => a.key);
      assert.deepEqual(keys, ['models/churn/1/model.onnx', 'models/churn/1/signature.json']);
      const signature = JSON.parse((await t.backends.artifacts.getBuffer('models/churn/1/signature.json')).toString('utf8')) as { featureNames: string[] };
      assert.deepEqual(signature.featureNames, ['a', 'b']);

      const art = await t.app.inject({ method: 'GET', url: '/models/churn/versions/1/artifact', headers: t.headers('read') });
      assert.equal(art.statusCode, 200);
      assert.match(String(art.headers['content-type']), /application\/octet-stream/);
      assert.equal(createHash('sha256').update(art.rawPayload).digest('hex'), v.sha256);
      assert.equal(art.rawPayload.length, v.size_bytes);

      const got = await t.app.inject({ method: 'GET', url: '/models/churn/versions/1', headers: t.headers('read') });
      assert.equal(got.statusCode, 200);
      assert.equal(got.json<VersionBody>().sha256, v.sha256);
    });

    test('raw bytes with hints in the query string; hints are checked against the model', async () => {
      const res = await raw('prices', regressorOnnx(), '?feature_names=rooms,area,age&description=raw');
      assert.equal(res.statusCode, 201, res.body);
      const v = res.json<VersionBody>();
      assert.equal(v.signature.task, 'regression');
      assert.deepEqual(v.signature.feature_names, ['rooms', 'area', 'age']);
      assert.equal(v.signature.class_labels, null);

      const wrong = await raw('prices', regressorOnnx(), '?feature_names=a,b');
      assert.equal(wrong.statusCode, 400);
      assert.match(wrong.json<{ details: string }>().details, /2 feature names were given but input 'input' has 3 features/);
      const unknown = await raw('prices', regressorOnnx(), '?task=clustering');
      assert.equal(unknown.statusCode, 400);
    });

    test('bad files are 400s that say why, leave nothing behind and consume no version number', async () => {
      const name = 'fragile';
      assert.equal((await upload(name, regressorOnnx())).statusCode, 201);
      const good = regressorOnnx();
      const cases: [string, Uint8Array, RegExp][] = [
        ['garbage', Buffer.from('this is not a model at all, just text'), /not an ONNX file|not an ONNX model/],
        ['truncated', good.subarray(0, Math.floor(good.length / 2)), /invalid model file/],
        ['external data', externalDataOnnx(), /external file \(weights\.bin\)/],
        ['unknown operator', unknownOpOnnx(), /onnxruntime cannot load the model: .*Frobnicate/],
        ['empty', new Uint8Array(0), /empty/],
      ];
      for (const [label, bytes, reason] of cases) {
        const res = await upload(name, bytes);
        assert.equal(res.statusCode, 400, `${label}: ${res.body}`);
        const body = res.json<{ error: string; details: string }>();
        assert.equal(body.error, 'invalid_model', label);
        assert.match(body.details, reason, label);
      }
      // The same through a brand-new model name: the model is not created either.
      assert.equal((await upload('never-created', Buffer.from('junk'))).statusCode, 400);
      const missing = await t.app.inject({ method: 'GET', url: '/models/never-created', headers: t.headers('read') });
      assert.equal(missing.statusCode, 404);

      assert.deepEqual((await versionRows(name)).map((r) => r.version), [1]);
      assert.deepEqual((await t.backends.artifacts.list(`models/${name}/`)).map((a) => a.key), [`models/${name}/1/model.onnx`, `models/${name}/1/signature.json`]);
      assert.deepEqual(await t.backends.artifacts.list('models/never-created/'), []);
      const next = await upload(name, regressorOnnx());
      assert.equal(next.json<VersionBody>().version, 2);
    });

    test('a file over the size limit is a 413', async () => {
      const registry = t.services.registry;
      const big = new Uint8Array(t.config.bodyLimitBytes + 1);
      await assert.rejects(registry.models.registerVersion('huge', big, {}, { actor: 'test' }), (err: { status?: number }) => err.status === 413);
    });

    test('10 parallel uploads get versions 1..10, each once', async () => {
      const bytes = classifierOnnx();
      const results = await Promise.all(Array.from({ length: 10 }, () => upload('parallel', bytes)));
      for (const r of results) assert.equal(r.statusCode, 201, r.body);
      const numbers = results.map((r) => r.json<VersionBody>().version).sort((a, b) => a - b);
      assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual((await versionRows('parallel')).map((r) => r.version), numbers);
    });

    test('read keys cannot upload; train keys cannot enter Production', async () => {
      assert.equal((await upload('roles', regressorOnnx())).statusCode, 201);
      const byReader = await upload('roles', regressorOnnx(), 'read');
      assert.equal(byReader.statusCode, 403);
      assert.equal(byReader.json<{ error: string }>().error, 'forbidden');

      const toProd = await transition('roles', 1, 'Production', 'train');
      assert.equal(toProd.statusCode, 403);
      assert.match(toProd.json<{ details: string }>().details, /needs role 'admin'/);
      assert.equal((await transition('roles', 1, 'Archived', 'train')).statusCode, 403);
      assert.equal((await transition('roles', 1, 'Staging', 'train')).statusCode, 200);
      assert.equal((await transition('roles', 1, 'Production', 'admin')).statusCode, 200);
      // Leaving Production is an admin decision too.
      assert.equal((await transition('roles', 1, 'Staging', 'train')).statusCode, 403);
      const v = await t.app.inject({ method: 'GET', url: '/models/roles/versions/1', headers: t.headers('read') });
      assert.equal(v.json<VersionBody>().stage, 'Production');
    });

    test('transitions with archive_existing_versions archive the other versions of the target stage', async () => {
      const name = 'staged';
      for (let i = 0; i < 3; i++) assert.equal((await upload(name, regressorOnnx())).statusCode, 201);
      assert.equal((await transition(name, 1, 'Production', 'admin')).statusCode, 200);
      assert.equal((await transition(name, 2, 'Production', 'admin')).statusCode, 200);
      const res = await transition(name, 3, 'Production', 'admin', true);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json<{ archived_versions: number[] }>().archived_versions, [1, 2]);
      const model = await t.app.inject({ method: 'GET', url: `/models/${name}`, headers: t.headers('read') });
      const stages = model.json<{ versions: { version: number; stage: string }[] }>().versions.map((v) => [v.version, v.stage]);
      assert.deepEqual(stages, [
        [1, 'Archived'],
        [2, 'Archived'],
        [3, 'Production'],
      ]);

      const bad = await transition(name, 1, 'None', 'admin', true);
      assert.equal(bad.statusCode, 400);
      assert.match(bad.json<{ details: string }>().details, /archive_existing_versions/);
      assert.equal((await transition(name, 1, 'Gold', 'admin')).statusCode, 400);
      assert.equal((await transition(name, 99, 'Staging', 'admin')).statusCode, 404);
      assert.equal((await transition('nope', 1, 'Staging', 'admin')).statusCode, 404);
    });

    test('aliases follow MLflow rules: reserved names, moves, deletes, resolution', async () => {
      const name = 'aliased';
      for (let i = 0; i < 2; i++) assert.equal((await upload(name, classifierOnnx())).statusCode, 201);
      const put = (alias: string, version: number, role: 'train' | 'admin' = 'admin') =>
        t.app.inject({ method: 'PUT', url: `/models/${name}/aliases/${alias}`, payload: { version }, headers: t.headers(role) });
      const get = (alias: string) => t.app.inject({ method: 'GET', url: `/models/${name}/aliases/${alias}`, headers: t.headers('read') });

      for (const reserved of ['latest', 'LATEST', 'v1', 'V12', 'bad.name']) {
        const res = await put(reserved, 1);
        assert.equal(res.statusCode, 400, reserved);
      }
      // Longer than the router's URL parameter limit, so checked on the service.
      await assert.rejects(t.services.registry.lifecycle.setAlias(name, 'x'.repeat(256), 1, 'test'), (err: { status?: number }) => err.status === 400);
      assert.equal((await put('champion', 1, 'train')).statusCode, 403);
      assert.equal((await put('champion', 7)).statusCode, 404);

      assert.equal((await put('champion', 1)).statusCode, 200);
      assert.equal((await get('champion')).json<{ version: number }>().version, 1);
      assert.equal((await put('champion', 2)).statusCode, 200, 'moving an alias is allowed');
      const moved = await get('champion');
      assert.equal(moved.json<{ version: number }>().version, 2);
      assert.deepEqual(moved.json<{ model_version: VersionBody }>().model_version.aliases, ['champion']);
      assert.equal((await get('latest')).json<{ version: number }>().version, 2);
      assert.equal((await get('v1')).json<{ version: number }>().version, 1);

      const listed = await t.app.inject({ method: 'GET', url: `/models/${name}`, headers: t.headers('read') });
      assert.deepEqual(listed.json<{ aliases: Record<string, number> }>().aliases, { champion: 2 });

      assert.equal((await t.app.inject({ method: 'DELETE', url: `/models/${name}/aliases/champion`, headers: t.headers('admin') })).statusCode, 200);
      assert.equal((await get('champion')).statusCode, 404);
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/models/${name}/aliases/champion`, headers: t.headers('admin') })).statusCode, 404);
    });

    test('delete is refused while a version is in Production or aliased; numbers are never reused', async () => {
      const name = 'deletable';
      for (let i = 0; i < 3; i++) assert.equal((await upload(name, regressorOnnx())).statusCode, 201);
      assert.equal((await transition(name, 1, 'Production', 'admin')).statusCode, 200);
      const del = (v: number, role: 'train' | 'admin' = 'admin') =>
        t.app.inject({ method: 'DELETE', url: `/models/${name}/versions/${v}`, headers: t.headers(role) });
      const refused = await del(1);
      assert.equal(refused.statusCode, 409);
      assert.match(refused.json<{ details: string }>().details, /Production/);
      assert.equal((await t.app.inject({ method: 'PUT', url: `/models/${name}/aliases/keep`, payload: { version: 2 }, headers: t.headers('admin') })).statusCode, 200);
      assert.equal((await del(2)).statusCode, 409);
      assert.equal((await del(3, 'train')).statusCode, 403);
      assert.equal((await del(3)).statusCode, 200);
      assert.equal((await del(3)).statusCode, 404);
      assert.deepEqual(await t.backends.artifacts.list(`models/${name}/3/`), []);
      assert.equal((await upload(name, regressorOnnx())).json<VersionBody>().version, 4);
    });

    test('history records every stage, alias and traffic change with the acting key', async () => {
      const name = 'audited';
      for (let i = 0; i < 2; i++) assert.equal((await upload(name, classifierOnnx())).statusCode, 201);
      assert.equal((await transition(name, 1, 'Staging', 'train')).statusCode, 200);
      assert.equal((await transition(name, 1, 'Production', 'admin')).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'PUT', url: `/models/${name}/aliases/best`, payload: { version: 1 }, headers: t.headers('admin') })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'PUT', url: `/models/${name}/aliases/best`, payload: { version: 2 }, headers: t.headers('admin') })).statusCode, 200);
      const traffic = await t.app.inject({
        method: 'PUT',
        url: `/models/${name}/traffic`,
        payload: { routes: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] },
        headers: t.headers('admin'),
      });
      assert.equal(traffic.statusCode, 200, traffic.body);

      const res = await t.app.inject({ method: 'GET', url: `/models/${name}/history`, headers: t.headers('read') });
      assert.equal(res.statusCode, 200);
      const entries = res.json<{ history: { action: string; actor: string; version: number | null; alias: string | null; from: string | null; to: string | null; at: string }[] }>().history;
      const compact = entries.map((e) => [e.action, e.actor, e.version, e.alias, e.from, e.to]);
      assert.deepEqual(compact, [
        ['traffic', keyIds['admin'], null, null, null, '{"routes":[{"version":1,"weight":90},{"version":2,"weight":10}],"shadow":[]}'],
        ['alias', keyIds['admin'], 2, 'best', '1', '2'],
        ['alias', keyIds['admin'], 1, 'best', null, '1'],
        ['stage', keyIds['admin'], 1, null, 'Staging', 'Production'],
        ['stage', keyIds['train'], 1, null, 'None', 'Staging'],
        ['version.create', keyIds['train'], 2, null, null, 'upload'],
        ['version.create', keyIds['train'], 1, null, null, 'upload'],
        ['model.create', keyIds['train'], null, null, null, null],
      ]);
      assert.ok(entries.every((e) => !Number.isNaN(Date.parse(e.at))));

      const paged = await t.app.inject({ method: 'GET', url: `/models/${name}/history?limit=3`, headers: t.headers('read') });
      const first = paged.json<{ history: unknown[]; next_page_token?: string }>();
      assert.equal(first.history.length, 3);
      assert.ok(first.next_page_token);
    });

    test('traffic splits are validated and visible to the reader', async () => {
      const name = 'split';
      for (let i = 0; i < 3; i++) assert.equal((await upload(name, regressorOnnx())).statusCode, 201);
      const put = (payload: Record<string, unknown>, role: 'train' | 'admin' = 'admin') =>
        t.app.inject({ method: 'PUT', url: `/models/${name}/traffic`, payload, headers: t.headers(role) });
      assert.equal((await put({ routes: [{ version: 1, weight: 50 }, { version: 2, weight: 40 }] })).statusCode, 400, 'sum 90');
      assert.equal((await put({ routes: [{ version: 1, weight: 0 }, { version: 2, weight: 100 }] })).statusCode, 400, 'zero weight');
      assert.equal((await put({ routes: [{ version: 1, weight: 50 }, { version: 9, weight: 50 }] })).statusCode, 400, 'unknown version');
      assert.equal((await put({ routes: [{ version: 1, weight: 50 }, { version: 1, weight: 50 }] })).statusCode, 400, 'duplicate');
      assert.equal((await put({ routes: [{ version: 1, weight: 100 }] }, 'train')).statusCode, 403);

      const ok = await put({ routes: [{ version: 2, weight: 25 }, { version: 1, weight: 75 }], shadow: [3] });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.deepEqual(ok.json<{ routes: unknown[] }>().routes, [
        { version: 1, weight: 75 },
        { version: 2, weight: 25 },
      ]);
      const registry = t.services.registry;
      assert.deepEqual(await registry.reader.traffic(name), { routes: [{ version: 1, weight: 75 }, { version: 2, weight: 25 }], shadow: [3] });
      // A version in the split cannot be deleted.
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/models/${name}/versions/3`, headers: t.headers('admin') })).statusCode, 409);

      const cleared = await put({ routes: [], shadow: [] });
      assert.equal(cleared.statusCode, 200);
      assert.equal(cleared.json<{ updated_at: string | null }>().updated_at, null);
      assert.equal(await registry.reader.traffic(name), undefined);
    });

    test('GET /models paginates and shows the latest version per stage and aliases', async () => {
      const names = ['page-a', 'page-b', 'page-c', 'page-d', 'page-e'];
      for (const n of names) {
        const res = await t.app.inject({ method: 'POST', url: '/models', payload: { name: n, description: `model ${n}`, tags: { k: n } }, headers: t.headers('train') });
        assert.equal(res.statusCode, 201, res.body);
      }
      const dup = await t.app.inject({ method: 'POST', url: '/models', payload: { name: 'page-a' }, headers: t.headers('train') });
      assert.equal(dup.statusCode, 409);
      assert.equal((await t.app.inject({ method: 'POST', url: '/models', payload: { name: '../evil' }, headers: t.headers('train') })).statusCode, 400);
      for (let i = 0; i < 2; i++) assert.equal((await upload('page-b', regressorOnnx())).statusCode, 201);
      assert.equal((await transition('page-b', 1, 'Staging', 'train')).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'PUT', url: '/models/page-b/aliases/prod', payload: { version: 1 }, headers: t.headers('admin') })).statusCode, 200);

      const seen: { name: string; latest_versions: unknown[]; aliases: Record<string, number>; latest_version: number | null }[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const url = `/models?limit=2${token === undefined ? '' : `&page_token=${token}`}`;
        const res = await t.app.inject({ method: 'GET', url, headers: t.headers('read') });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json<{ models: typeof seen; next_page_token?: string }>();
        assert.ok(body.models.length <= 2);
        seen.push(...body.models);
        token = body.next_page_token;
        pages++;
      } while (token !== undefined && pages < 100);
      const all = seen.map((m) => m.name);
      assert.deepEqual(all, [...all].sort());
      assert.equal(new Set(all).size, all.length);
      for (const n of names) assert.ok(all.includes(n), n);
      const b = seen.find((m) => m.name === 'page-b')!;
      assert.equal(b.latest_version, 2);
      assert.deepEqual(b.latest_versions, [
        { stage: 'Staging', version: 1 },
        { stage: 'None', version: 2 },
      ]);
      assert.deepEqual(b.aliases, { prod: 1 });
      assert.equal((await t.app.inject({ method: 'GET', url: '/models?page_token=garbage', headers: t.headers('read') })).statusCode, 400);
    });

    test('PATCH merges tags and sets descriptions', async () => {
      assert.equal((await upload('patched', regressorOnnx(), 'train', { tags: '{"a":"1","b":"2"}' })).statusCode, 201);
      const res = await t.app.inject({
        method: 'PATCH',
        url: '/models/patched/versions/1',
        payload: { description: 'better', tags: { a: null, c: '3' } },
        headers: t.headers('train'),
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json<VersionBody>().tags, { b: '2', c: '3' });
      assert.equal(res.json<VersionBody>().description, 'better');
      const m = await t.app.inject({ method: 'PATCH', url: '/models/patched', payload: { description: 'the model' }, headers: t.headers('train') });
      assert.equal(m.json<{ description: string }>().description, 'the model');
      assert.equal((await t.app.inject({ method: 'PATCH', url: '/models/patched/versions/9', payload: {}, headers: t.headers('train') })).statusCode, 404);
    });

    test('registers a file a run logged from runs:/<run_id>/<path>', async () => {
      await t.backends.artifacts.put('runs/run42/artifacts/model/model.onnx', Buffer.from(classifierOnnx()));
      const res = await t.app.inject({
        method: 'POST',
        url: '/models/from-run/versions',
        payload: { source: 'runs:/run42/model', description: 'from a run' },
        headers: t.headers('train'),
      });
      assert.equal(res.statusCode, 201, res.body);
      const v = res.json<VersionBody & { source: string }>();
      assert.equal(v.run_id, 'run42');
      assert.equal(v.source, 'runs:/run42/model');
      const missing = await t.app.inject({
        method: 'POST',
        url: '/models/from-run/versions',
        payload: { source: 'runs:/run42/nothing.onnx' },
        headers: t.headers('train'),
      });
      assert.equal(missing.statusCode, 400);
      const escape = await t.app.inject({
        method: 'POST',
        url: '/models/from-run/versions',
        payload: { source: 'runs:/run42/../../models/x/1/model.onnx' },
        headers: t.headers('train'),
      });
      assert.equal(escape.statusCode, 400);
      const wrongType = await t.app.inject({
        method: 'POST',
        url: '/models/from-run/versions',
        payload: 'hello',
        headers: { 'content-type': 'text/plain', ...t.headers('train') },
      });
      assert.equal(wrongType.statusCode, 415);
    });

    test('the reader resolves versions, stages, aliases and latest, and reports changes', async () => {
      const registry = t.services.registry;
      const name = 'readable';
      const changes: string[] = [];
      const stop = registry.reader.onChange((m) => changes.push(m));
      const g0 = await registry.reader.generation();
      for (let i = 0; i < 3; i++) assert.equal((await upload(name, classifierOnnx())).statusCode, 201);
      assert.equal((await transition(name, 2, 'Production', 'admin')).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'PUT', url: `/models/${name}/aliases/canary`, payload: { version: 1 }, headers: t.headers('admin') })).statusCode, 200);
      const g1 = await registry.reader.generation();
      assert.ok(g1 >= g0 + 5, `generation ${g0} -> ${g1}`);
      assert.deepEqual(changes.filter((c) => c === name).length, 5);
      stop();

      assert.equal((await registry.reader.resolve(name, {}))?.version, 3);
      assert.equal((await registry.reader.resolve(name, { stage: 'Production' }))?.version, 2);
      assert.equal(await registry.reader.resolve(name, { stage: 'Staging' }), undefined);
      const canary = await registry.reader.resolve(name, { alias: 'canary' });
      assert.equal(canary?.version, 1);
      assert.deepEqual(canary?.aliases, ['canary']);
      assert.equal((await registry.reader.resolve(name, { alias: 'latest' }))?.version, 3);
      assert.equal((await registry.reader.resolve(name, { version: 2 }))?.stage, 'Production');
      assert.equal(await registry.reader.resolve(name, { version: 9 }), undefined);
      assert.equal(await registry.reader.resolve('no-such-model', {}), undefined);
      const v = (await registry.reader.resolve(name, { version: 1 }))!;
      assert.equal(v.artifactKey, `models/${name}/1/model.onnx`);
      assert.deepEqual(v.signature.classLabels, ['no', 'yes']);
      assert.ok(!Number.isNaN(Date.parse(v.createdAt)));
      assert.ok((await t.backends.artifacts.stat(v.artifactKey)) !== undefined);
      await assert.rejects(registry.reader.resolve(name, { version: 1, stage: 'Production' }), /at most one/);
    });

    test('programmatic registration records metrics, lineage and reference.json', async () => {
      const registry = t.services.registry;
      const v = await registry.models.registerVersion('trained', classifierOnnx(), {}, {
        actor: 'job-1',
        metrics: { accuracy: 0.93 },
        runId: 'run-7',
        dataset: { name: 'iris', version: 2 },
        reference: { columns: { a: { mean: 1 } } },
        source: 'training',
      });
      assert.equal(v.version, 1);
      assert.deepEqual(v.metrics, { accuracy: 0.93 });
      assert.ok(v.hasReference);
      assert.deepEqual(await registry.models.getReference('trained', 1), { columns: { a: { mean: 1 } } });
      const keys = (await t.backends.artifacts.list('models/trained/1/')).map((a) => a.key.split('/').at(-1));
      assert.deepEqual(keys, ['model.onnx', 'reference.json', 'signature.json']);
      await assert.rejects(registry.models.registerVersion('trained', classifierOnnx(), {}, { actor: 'x', metrics: { loss: Number.NaN } }), /finite/);
      const servable = await registry.reader.resolve('trained', {});
      assert.deepEqual(servable?.metrics, { accuracy: 0.93 });
      assert.equal(servable?.runId, 'run-7');
    });
  });
}

describe('upload size limit', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ env: { BODY_LIMIT_BYTES: '1024' } });
  });
  after(async () => {
    await t.close();
  });

  test('files over BODY_LIMIT_BYTES are 413s, multipart or raw, and store nothing', async () => {
    const big = new Uint8Array(4096).fill(7);
    const form = multipart({}, { bytes: big });
    const viaForm = await t.app.inject({ method: 'POST', url: '/models/big/versions', payload: form.payload, headers: { ...form.headers, ...t.headers('train') } });
    assert.equal(viaForm.statusCode, 413, viaForm.body);
    const viaRaw = await t.app.inject({
      method: 'POST',
      url: '/models/big/versions',
      payload: Buffer.from(big),
      headers: { 'content-type': 'application/octet-stream', ...t.headers('train') },
    });
    assert.equal(viaRaw.statusCode, 413, viaRaw.body);
    assert.equal(viaRaw.json<{ error: string }>().error, 'payload_too_large');
    assert.deepEqual(await t.backends.artifacts.list('models/'), []);
    assert.equal((await t.app.inject({ method: 'GET', url: '/models/big', headers: t.headers('read') })).statusCode, 404);
  });
});
