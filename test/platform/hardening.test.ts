/**
 * Issue #12, one test per defect: bad input answers 4xx naming the field, never a 5xx, and
 * JSON bodies are taken with the types they carry.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';
import { classifierOnnx, multipart } from '../registry/fixtures.ts';

const CSV = 'a,b,y\n1,2,no\n3,4,yes\n5,6,no\n7,8,yes\n';

describe('bad input (#12)', { timeout: 300_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
    const mp = multipart({}, { bytes: classifierOnnx() });
    const up = await t.app.inject({ method: 'POST', url: '/models/m/versions', headers: { ...t.headers('admin'), ...mp.headers }, payload: mp.payload });
    assert.equal(up.statusCode, 201, up.body);
    const ds = await t.app.inject({ method: 'POST', url: '/datasets/d', headers: { ...t.headers('admin'), 'content-type': 'text/csv' }, payload: CSV });
    assert.equal(ds.statusCode, 201, ds.body);
  });
  after(async () => {
    await t?.close();
  });

  it('refuses a non-finite or out-of-range page size on every list route, naming limit', async () => {
    const lists = ['/models', '/models/m/history', '/datasets', '/datasets/d', '/train/jobs', '/experiments', '/keys', '/drift/m/history', '/predictions'];
    for (const url of lists) {
      for (const v of ['1e309', 'Infinity', '1e400', '-Infinity', '-1', '0', '100000']) {
        const res = await t.app.inject({ url: `${url}?limit=${v}`, headers: t.headers('admin') });
        if (url === '/keys' && res.statusCode === 200) continue; // no pagination there
        if (url === '/predictions' && v === '100000') continue; // exports take up to 10,000,000 rows
        assert.equal(res.statusCode, 400, `${url}?limit=${v}: ${res.body}`);
        assert.match(res.json<{ details: string }>().details, /limit/, `${url}?limit=${v}`);
      }
    }
  });

  it('answers 400 to a multipart body without a boundary, with an over-long one, or cut off', async () => {
    const truncated = '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\na,b\n1,2\n3';
    for (const url of ['/datasets/d2', '/models/m2/versions']) {
      for (const ct of ['multipart/form-data', 'multipart/form-data; boundary=XyZ', `multipart/form-data; boundary=${'b'.repeat(300)}`]) {
        const res = await t.app.inject({ method: 'POST', url, headers: { ...t.headers('admin'), 'content-type': ct }, payload: truncated });
        assert.equal(res.statusCode, 400, `${url} ${ct}: ${res.body}`);
        assert.match(res.json<{ details: string }>().details, /multipart/);
      }
    }
  });

  it('takes JSON bodies with their own types: no coercion of booleans, numbers or strings', async () => {
    const h = t.headers('admin');
    const moved = await t.app.inject({ method: 'POST', url: '/models/transition', headers: h, payload: { name: 'm', version: true, stage: 'Staging' } });
    assert.equal(moved.statusCode, 400, moved.body);
    assert.match(moved.body, /\/version/);
    const asString = await t.app.inject({ method: 'POST', url: '/models/transition', headers: h, payload: { name: 'm', version: '1', stage: 'Staging' } });
    assert.equal(asString.statusCode, 400, asString.body);
    const v = await t.app.inject({ url: '/models/m/versions/1', headers: h });
    assert.equal(v.json<{ stage: string }>().stage, 'None');
    const named = await t.app.inject({ method: 'POST', url: '/experiments', headers: h, payload: { name: 5 } });
    assert.equal(named.statusCode, 400, named.body);
    // Query strings and path parameters are text on the wire and still coerced.
    const byPath = await t.app.inject({ url: '/models/m/versions/1', headers: h });
    assert.equal(byPath.statusCode, 200);
    const byQuery = await t.app.inject({ url: '/models?limit=5', headers: h });
    assert.equal(byQuery.statusCode, 200);
  });
});

describe('dangling lineage on version upload (#12)', { timeout: 300_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => {
    await t?.close();
  });

  it('refuses a run_id or reference_dataset that names nothing, naming the field', async () => {
    const h = t.headers('admin');
    const cases: [string, Record<string, string>, RegExp][] = [
      ['?run_id=deadbeef', {}, /\/querystring\/run_id/],
      ['?reference_dataset=nope:9', {}, /\/querystring\/reference_dataset/],
      ['', { run_id: 'deadbeef' }, /\/body\/run_id/],
      ['', { reference_dataset: 'nope' }, /\/body\/reference_dataset/],
    ];
    for (const [query, fields, field] of cases) {
      const mp = multipart(fields, { bytes: classifierOnnx() });
      const res = await t.app.inject({ method: 'POST', url: `/models/lin/versions${query}`, headers: { ...h, ...mp.headers }, payload: mp.payload });
      assert.equal(res.statusCode, 400, `${query} ${JSON.stringify(fields)}: ${res.body}`);
      assert.match(res.json<{ details: string }>().details, field);
    }
    const none = await t.app.inject({ url: '/models/lin', headers: h });
    assert.equal(none.statusCode, 404, 'no version and no model was created');
    // Existing references are taken: a run and a built-in dataset.
    const run = await t.app.inject({ method: 'POST', url: '/experiments/e/runs', headers: h, payload: { create_experiment: true } });
    const runId = run.json<{ run_id: string }>().run_id;
    const mp = multipart({}, { bytes: classifierOnnx() });
    const ok = await t.app.inject({ method: 'POST', url: `/models/lin/versions?run_id=${runId}&reference_dataset=iris`, headers: { ...h, ...mp.headers }, payload: mp.payload });
    assert.equal(ok.statusCode, 201, ok.body);
  });
});

describe('start-up sweeps what a crash mid-upload left (#12)', { timeout: 300_000 }, () => {
  it('removes stale uploading rows, their files and temporary files; keeps fresh ones', async () => {
    const old = Date.now() - 3 * 3600_000;
    let dataDir = '';
    const t = await buildTestApp({
      beforeBuild: async (ctx) => {
        dataDir = ctx.config.dataDir;
        const row = { status: 'uploading', source: 'upload', sha256: null, bytes: null, row_count: null, column_count: null, delimiter: null, schema: null, created_by: 'k' } as const;
        await ctx.backends.store.db
          .insertInto('dataset_versions')
          .values([
            { ...row, name: 'crashed', version: 1, artifact_key: 'datasets/crashed/1/data.csv', created_at: old },
            { ...row, name: 'live', version: 1, artifact_key: 'datasets/live/1/data.csv', created_at: Date.now() },
          ])
          .execute();
        const dir = path.join(dataDir, 'artifacts', 'datasets', 'crashed', '1');
        mkdirSync(dir, { recursive: true });
        const tmp = path.join(dir, '.abc.modelplane-tmp');
        writeFileSync(tmp, 'a,b\n1,2\n');
        utimesSync(tmp, old / 1000, old / 1000);
      },
    });
    try {
      const rows = await t.backends.store.db.selectFrom('dataset_versions').select(['name', 'status']).execute();
      // Spread: node:sqlite (the store's driver on Node 24) returns rows without a prototype.
      assert.deepEqual(rows.map((r) => ({ ...r })), [{ name: 'live', status: 'uploading' }]);
      assert.equal(existsSync(path.join(dataDir, 'artifacts', 'datasets', 'crashed')), false);
      // The number is free again: the next upload is version 1.
      const up = await t.app.inject({ method: 'POST', url: '/datasets/crashed', headers: { ...t.headers('admin'), 'content-type': 'text/csv' }, payload: CSV });
      assert.equal(up.json<{ version: number }>().version, 1, up.body);
    } finally {
      await t.close();
    }
  });
});

describe('error messages (#12)', { timeout: 300_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => {
    await t?.close();
  });

  it('a bad enum value lists the allowed values, once', async () => {
    const h = t.headers('admin');
    const bad = await t.app.inject({ method: 'POST', url: '/train', headers: h, payload: { dataset: { name: 'iris' }, target: 'target', algorithm: 'nope' } });
    assert.equal(bad.statusCode, 400);
    const body = bad.json<{ details: string; errors: { path: string; message: string }[] }>();
    assert.deepEqual(
      body.errors.map((e) => e.path),
      ['/algorithm'],
    );
    assert.match(body.details, /must be one of .*"decision_tree"/);
    assert.doesNotMatch(bad.body, /equal to constant/);
    const stage = await t.app.inject({ method: 'POST', url: '/models/transition', headers: h, payload: { name: 'x', version: 1, stage: 'Nope' } });
    assert.match(stage.json<{ details: string }>().details, /\/stage must be one of "None", "Staging", "Production", "Archived"$/);
  });

  it('415 names the content types the route accepts', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/datasets/x', headers: { ...t.headers('admin'), 'content-type': 'application/xml' }, payload: '<x/>' });
    assert.equal(res.statusCode, 415);
    assert.match(res.json<{ details: string }>().details, /application\/xml.*accepts application\/json, text\/csv, multipart\/form-data/);
  });
});
