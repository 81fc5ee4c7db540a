/**
 * PostgreSQL going away under a running API (issue 11): the test puts a TCP proxy it controls
 * between the app and the shared PostgreSQL and cuts it. Dropped pool connections must not end
 * the process, writes answer 503 with the native error body, `/ready` names the store within its
 * timeout, `/metrics` keeps answering, and everything works again once the proxy is restored. A
 * store opened while the database is unreachable waits for it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openConfiguredStore } from '../../src/backends.ts';
import { loadConfig } from '../../src/config.ts';
import { isStoreUnavailable, openStore } from '../../src/store/database.ts';
import { createLogger } from '../../src/platform/logging.ts';
import { buildTestApp, postgresAvailable, TEST_DATABASE_URL, uniqueSchema, dropSchema, type TestApp } from '../helper.ts';
import { TcpProxy, waitFor } from './faults.ts';

const HAS_PG = await postgresAvailable();

describe('PostgreSQL outage under a running API', { skip: !HAS_PG && 'PostgreSQL not reachable', timeout: 240_000 }, () => {
  let proxy: TcpProxy;
  let t: TestApp;
  let proxiedUrl: string;

  before(async () => {
    const target = new URL(TEST_DATABASE_URL);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    const u = new URL(TEST_DATABASE_URL);
    u.host = `127.0.0.1:${proxy.port}`;
    proxiedUrl = u.toString();
    t = await buildTestApp({ backend: 'postgres', env: { DATABASE_URL: proxiedUrl, TRAINING_WORKERS: '0' } });
  });

  after(async () => {
    await proxy.restore();
    await t?.close();
    await proxy.close();
  });

  const createModel = (name: string) =>
    t.app.inject({ method: 'POST', url: '/models', headers: { ...t.headers('admin'), 'content-type': 'application/json' }, payload: { name } });

  test('connections cut: the process stays up, writes 503, /ready names the store, /metrics answers; then it recovers', async () => {
    // Several pooled connections, idle when the proxy cuts them (the pool's 'error' event).
    await Promise.all([1, 2, 3].map((i) => createModel(`before-${i}`)));
    assert.equal((await t.app.inject({ url: '/ready' })).statusCode, 200);

    await proxy.cut();
    // Let the pool notice its dropped connections (the unhandled-error crash happened here).
    await new Promise((r) => setTimeout(r, 200));

    const t0 = Date.now();
    const write = await createModel('during');
    assert.equal(write.statusCode, 503, write.body);
    const body = write.json();
    assert.equal(body.error, 'service_unavailable');
    assert.match(body.details, /metadata store/);
    assert.equal(write.headers['retry-after'], '5');
    assert.ok(Date.now() - t0 < 10_000);

    const ready = await t.app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().checks.store.ok, false);

    const metrics = await t.app.inject({ url: '/metrics' });
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /training_jobs/);

    const read = await t.app.inject({ url: '/models/before-1', headers: t.headers('read') });
    assert.equal(read.statusCode, 503, read.body);

    await proxy.restore();
    await waitFor('a write after the restore', async () => ((await createModel('after')).statusCode === 201 ? true : undefined), 30_000, 250);
    await waitFor('/ready 200 after the restore', async () => ((await t.app.inject({ url: '/ready' })).statusCode === 200 ? true : undefined), 30_000, 250);
    const names = await Promise.all(['before-1', 'before-2', 'before-3', 'after'].map(async (n) => (await t.app.inject({ url: `/models/${n}`, headers: t.headers('read') })).statusCode));
    assert.deepEqual(names, [200, 200, 200, 200]);
  });

  test('a store opened while the database is unreachable waits for it, then opens', async () => {
    await proxy.cut();
    const schema = uniqueSchema('wait');
    const config = loadConfig({ DATA_DIR: '/tmp', LOG_LEVEL: 'silent', DATABASE_URL: proxiedUrl });
    const log = createLogger(config, { pretty: false });
    let opened = false;
    const opening = openConfiguredStore(config, { waitForStore: true, log, pgSchema: schema }).then((store) => {
      opened = true;
      return store;
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(opened, false, 'opened while the database was unreachable');
    await proxy.restore();
    const store = await opening;
    try {
      await store.ping();
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });

  test('a connection dropped while a transaction holds it: reported, the transaction fails as unavailable, the process stays up', async () => {
    const errors: Error[] = [];
    const store = await openStore({ dataDir: '/tmp', databaseUrl: proxiedUrl, onConnectionError: (err) => errors.push(err) });
    try {
      const held = store.db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        // Between two statements the connection is checked out with no query running: the
        // client's own 'error' event (unhandled, it ended the process in the cluster harness).
        await proxy.cut();
        await waitFor('the held connection to report its loss', () => (errors.length > 0 ? true : undefined), 10_000, 20);
        await sql`select 1`.execute(trx);
      });
      await assert.rejects(held, (err: unknown) => isStoreUnavailable(err));
      await proxy.restore();
      await waitFor('the store to answer again', () => store.ping().then(() => true, () => undefined), 30_000, 100);
    } finally {
      await proxy.restore();
      await store.close();
    }
  });

  test('without waiting, an unreachable database is reported as unavailable', async () => {
    await proxy.cut();
    const config = loadConfig({ DATA_DIR: '/tmp', LOG_LEVEL: 'silent', DATABASE_URL: proxiedUrl });
    await assert.rejects(openConfiguredStore(config, { migrate: false }), (err: unknown) => isStoreUnavailable(err));
    await proxy.restore();
  });
});
