import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';

describe('GET /whoami', { timeout: 60_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => {
    await t.close();
  });

  test('names the presented key and its roles, for every role', async () => {
    const expected = { read: ['read'], predict: ['read', 'predict'], train: ['read', 'predict', 'train'], admin: ['read', 'predict', 'train', 'admin'] };
    for (const role of ['read', 'predict', 'train', 'admin'] as const) {
      const r = await t.app.inject({ url: '/whoami', headers: t.headers(role) });
      assert.equal(r.statusCode, 200, role);
      const body = r.json();
      assert.equal(body.role, role);
      assert.equal(body.name, `test-${role}`);
      assert.equal(typeof body.key_id, 'string');
      assert.deepEqual(body.roles, expected[role]);
      assert.equal(JSON.stringify(body).includes(t.keys[role]), false, 'the key itself is never echoed');
    }
  });

  test('401 with the native body without a key or with an unknown one', async () => {
    for (const headers of [{}, { 'x-api-key': 'mp_unknown-key' }]) {
      const r = await t.app.inject({ url: '/whoami', headers });
      assert.equal(r.statusCode, 401);
      assert.equal(r.json().error, 'unauthorized');
    }
  });

  test('an API_KEY from the environment is the admin key "env"', async () => {
    const env = await buildTestApp({ env: { API_KEY: 'an-admin-key-from-env-0123456789' } });
    try {
      const r = await env.app.inject({ url: '/whoami', headers: { authorization: 'Bearer an-admin-key-from-env-0123456789' } });
      assert.equal(r.statusCode, 200);
      assert.deepEqual({ key_id: r.json().key_id, role: r.json().role }, { key_id: 'env', role: 'admin' });
    } finally {
      await env.close();
    }
  });
});
