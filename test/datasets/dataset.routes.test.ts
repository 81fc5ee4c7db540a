import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';

const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

function multipartBody(fields: Record<string, string>, file: { field: string; name: string; content: string }): { payload: Buffer; contentType: string } {
  const boundary = '----modelplane-test-boundary';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  }
  parts.push(
    `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.name}"\r\nContent-Type: text/csv\r\n\r\n${file.content}\r\n`,
  );
  parts.push(`--${boundary}--\r\n`);
  return { payload: Buffer.from(parts.join('')), contentType: `multipart/form-data; boundary=${boundary}` };
}

interface VersionBody {
  name: string;
  version: number;
  sha256: string;
  rows: number;
  columns: number;
  delimiter: string;
  source: string;
  schema: { columns: { name: string; type: string; stats: Record<string, unknown> }[] };
}

for (const backend of await storeBackends()) {
  void describe(`dataset routes (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ backend, env: { DATASET_MAX_BYTES: '4096' } });
    });
    after(async () => {
      await t.close();
    });

    const postCsv = (name: string, csv: string | Readable, role: 'train' | 'read' = 'train', query = '') =>
      t.app.inject({ method: 'POST', url: `/datasets/${name}${query}`, headers: { ...t.headers(role), 'content-type': 'text/csv' }, payload: csv });

    void test('a ;-delimited CSV upload becomes version 1 with schema, stats, rows and sha256; the next is version 2', async () => {
      const csv = 'a;b;label\n1.5;x;yes\n2.5;y;no\n;x;yes\n';
      const res = await postCsv('semi', csv);
      assert.equal(res.statusCode, 201, res.body);
      const v = res.json<VersionBody>();
      assert.equal(v.name, 'semi');
      assert.equal(v.version, 1);
      assert.equal(v.delimiter, ';');
      assert.equal(v.rows, 3);
      assert.equal(v.columns, 3);
      assert.equal(v.sha256, sha256(csv));
      assert.equal(v.source, 'upload');
      assert.deepEqual(
        v.schema.columns.map((c) => [c.name, c.type]),
        [
          ['a', 'numeric'],
          ['b', 'categorical'],
          ['label', 'boolean'],
        ],
      );
      assert.equal(v.schema.columns[0]!.stats['missing'], 1);
      assert.equal(v.schema.columns[0]!.stats['mean'], 2);
      // The exact uploaded bytes are stored under datasets/<name>/<version>/data.csv.
      assert.equal((await t.backends.artifacts.getBuffer('datasets/semi/1/data.csv')).toString(), csv);

      const second = await postCsv('semi', 'a;b;label\n3;z;no\n');
      assert.equal(second.statusCode, 201);
      assert.equal(second.json<VersionBody>().version, 2);

      const detail = await t.app.inject({ method: 'GET', url: '/datasets/semi', headers: t.headers('read') });
      assert.equal(detail.statusCode, 200);
      const d = detail.json<{ version_count: number; latest_version: number; versions: { version: number }[]; latest: VersionBody; builtin: boolean }>();
      assert.equal(d.version_count, 2);
      assert.equal(d.latest_version, 2);
      assert.equal(d.builtin, false);
      assert.deepEqual(
        d.versions.map((x) => x.version),
        [2, 1],
      );
      assert.equal(d.latest.rows, 1);

      const one = await t.app.inject({ method: 'GET', url: '/datasets/semi/versions/1', headers: t.headers('read') });
      assert.equal(one.statusCode, 200);
      assert.equal(one.json<VersionBody>().sha256, sha256(csv));
      const missing = await t.app.inject({ method: 'GET', url: '/datasets/semi/versions/9', headers: t.headers('read') });
      assert.equal(missing.statusCode, 404);
      assert.match(missing.json<{ details: string }>().details, /no version 9/);
    });

    void test('a streamed CSV body is accepted, and ?delimiter= overrides sniffing', async () => {
      const res = await postCsv('streamed', Readable.from([Buffer.from('x|y\n'), Buffer.from('1|2\n3|4\n')]), 'train', '?delimiter=%7C');
      assert.equal(res.statusCode, 201, res.body);
      const v = res.json<VersionBody>();
      assert.equal(v.delimiter, '|');
      assert.equal(v.rows, 2);
    });

    void test('multipart upload (field file) and JSON rows', async () => {
      const csv = 'x,y\n1,a\n2,b\n';
      const { payload, contentType } = multipartBody({}, { field: 'file', name: 'data.csv', content: csv });
      const res = await t.app.inject({ method: 'POST', url: '/datasets/multi', headers: { ...t.headers('train'), 'content-type': contentType }, payload });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json<VersionBody>().rows, 2);
      assert.equal(res.json<VersionBody>().sha256, sha256(csv));

      const wrongField = multipartBody({}, { field: 'data', name: 'data.csv', content: csv });
      const bad = await t.app.inject({
        method: 'POST',
        url: '/datasets/multi',
        headers: { ...t.headers('train'), 'content-type': wrongField.contentType },
        payload: wrongField.payload,
      });
      assert.equal(bad.statusCode, 400);

      const json = await t.app.inject({
        method: 'POST',
        url: '/datasets/jsonrows',
        headers: t.headers('train'),
        payload: { rows: [{ f: 1, g: 'a' }, { f: 2.5, g: 'b' }, { f: null, g: 'a' }] },
      });
      assert.equal(json.statusCode, 201, json.body);
      const v = json.json<VersionBody>();
      assert.equal(v.source, 'json');
      assert.equal(v.rows, 3);
      assert.deepEqual(
        v.schema.columns.map((c) => c.type),
        ['numeric', 'categorical'],
      );
      const table = await t.services.datasets.loadTable('jsonrows', 1);
      assert.equal(table.table.rowCount, 3);

      const badRows = await t.app.inject({
        method: 'POST',
        url: '/datasets/jsonrows',
        headers: t.headers('train'),
        payload: { rows: [{ f: 1 }, { f: { nested: true } }] },
      });
      assert.equal(badRows.statusCode, 400);
      assert.equal(badRows.json<{ errors: { path: string }[] }>().errors[0]!.path, '/body/rows/1/f');
    });

    void test('a ragged row is a 400 naming the line, and leaves no version and no file behind', async () => {
      const ok = await postCsv('ragged', 'a,b\n1,2\n');
      assert.equal(ok.statusCode, 201);
      const res = await postCsv('ragged', 'a,b\n1,2\n3,4\n5,6,7\n');
      assert.equal(res.statusCode, 400);
      const body = res.json<{ error: string; details: string }>();
      assert.equal(body.error, 'invalid_dataset');
      assert.match(body.details, /line 4/);
      assert.deepEqual(
        (await t.backends.artifacts.list('datasets/ragged/')).map((a) => a.key),
        ['datasets/ragged/1/data.csv'],
      );
      const d = await t.app.inject({ method: 'GET', url: '/datasets/ragged', headers: t.headers('read') });
      assert.equal(d.json<{ version_count: number }>().version_count, 1);
      // The failed upload's number is free again.
      const next = await postCsv('ragged', 'a,b\n7,8\n');
      assert.equal(next.json<VersionBody>().version, 2);
    });

    void test('a body over DATASET_MAX_BYTES is a 413 and leaves nothing behind', async () => {
      const big = `a,b\n${'1,2\n'.repeat(2000)}`;
      const res = await postCsv('big', big);
      assert.equal(res.statusCode, 413);
      assert.equal(res.json<{ error: string }>().error, 'payload_too_large');
      assert.deepEqual(await t.backends.artifacts.list('datasets/big/'), []);
      const d = await t.app.inject({ method: 'GET', url: '/datasets/big', headers: t.headers('read') });
      assert.equal(d.statusCode, 404);
    });

    void test('names are checked, unsupported types are 415, and uploads need the train role', async () => {
      const badName = await postCsv('bad%20name', 'a\n1\n');
      assert.equal(badName.statusCode, 400);
      const text = await t.app.inject({
        method: 'POST',
        url: '/datasets/plain',
        headers: { ...t.headers('train'), 'content-type': 'application/xml' },
        payload: '<a/>',
      });
      assert.equal(text.statusCode, 415);
      const read = await postCsv('byreader', 'a\n1\n', 'read');
      assert.equal(read.statusCode, 403);
      const anon = await t.app.inject({ method: 'GET', url: '/datasets' });
      assert.equal(anon.statusCode, 401);
    });

    void test('built-ins are listed as available, stored as version 1 on first use, and their names are reserved', async () => {
      const list = await t.app.inject({ method: 'GET', url: '/datasets?limit=1000', headers: t.headers('read') });
      assert.equal(list.statusCode, 200);
      const items = list.json<{ datasets: { name: string; builtin: boolean; version_count: number }[] }>().datasets;
      const iris = items.find((d) => d.name === 'iris');
      assert.ok(iris);
      assert.equal(iris.builtin, true);
      assert.ok(items.some((d) => d.name === 'synthetic_regression'));
      assert.ok(items.some((d) => d.name === 'semi' && !d.builtin));

      const [a, b] = await Promise.all([
        t.app.inject({ method: 'GET', url: '/datasets/iris', headers: t.headers('read') }),
        t.app.inject({ method: 'GET', url: '/datasets/iris/versions/1', headers: t.headers('read') }),
      ]);
      assert.equal(a.statusCode, 200, a.body);
      assert.equal(b.statusCode, 200, b.body);
      const d = a.json<{ version_count: number; latest: VersionBody }>();
      assert.equal(d.version_count, 1);
      assert.equal(d.latest.rows, 150);
      assert.equal(d.latest.source, 'builtin');
      assert.equal(d.latest.sha256, b.json<VersionBody>().sha256);

      const up = await postCsv('iris', 'a\n1\n');
      assert.equal(up.statusCode, 409);

      const paged = await t.app.inject({ method: 'GET', url: '/datasets?limit=2', headers: t.headers('read') });
      const page = paged.json<{ datasets: unknown[]; next_page_token?: string }>();
      assert.equal(page.datasets.length, 2);
      assert.ok(page.next_page_token);
    });
  });
}
