/**
 * Roles (#12): serving tunables of a serving model, deletes and other keys' training jobs are
 * an admin's, as API.md says.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';
import { classifierOnnx, multipart } from '../registry/fixtures.ts';

describe('roles (#12)', { timeout: 300_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_PER_MINUTE: '0' } });
    for (const name of ['served', 'idle']) {
      const mp = multipart({}, { bytes: classifierOnnx() });
      const up = await t.app.inject({ method: 'POST', url: `/models/${name}/versions`, headers: { ...t.headers('admin'), ...mp.headers }, payload: mp.payload });
      assert.equal(up.statusCode, 201, up.body);
    }
    const prod = await t.app.inject({ method: 'POST', url: '/models/transition', headers: t.headers('admin'), payload: { name: 'served', version: 1, stage: 'Production' } });
    assert.equal(prod.statusCode, 200, prod.body);
  });
  after(async () => {
    await t?.close();
  });

  const patch = (name: string, role: 'train' | 'admin', tags: Record<string, string>) =>
    t.app.inject({ method: 'PATCH', url: `/models/${name}`, headers: t.headers(role), payload: { tags } });

  it('serving tunables of a model serving Production or an alias are admin-only', async () => {
    const denied = await patch('served', 'train', { 'modelplane.max_queue_delay_us': '10000000' });
    assert.equal(denied.statusCode, 403, denied.body);
    assert.match(denied.body, /modelplane\.max_queue_delay_us/);
    assert.equal((await patch('served', 'train', { team: 'a' })).statusCode, 200, 'other tags stay a train key\'s');
    assert.equal((await patch('served', 'admin', { 'modelplane.max_batch_size': '64' })).statusCode, 200);
    assert.equal((await patch('idle', 'train', { 'modelplane.max_batch_size': '64' })).statusCode, 200, 'a model that serves nothing');
    const alias = await t.app.inject({ method: 'PUT', url: '/models/idle/aliases/champion', headers: t.headers('admin'), payload: { version: 1 } });
    assert.equal(alias.statusCode, 200, alias.body);
    assert.equal((await patch('idle', 'train', { 'modelplane.max_batch_size': '8' })).statusCode, 403, 'an alias serves');
  });

  it('deleting an experiment or a run needs admin (API.md)', async () => {
    const run = await t.app.inject({ method: 'POST', url: '/experiments/gone/runs', headers: t.headers('train'), payload: { create_experiment: true } });
    const runId = run.json<{ run_id: string }>().run_id;
    assert.equal((await t.app.inject({ method: 'DELETE', url: `/runs/${runId}`, headers: t.headers('train') })).statusCode, 403);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/experiments/gone', headers: t.headers('train') })).statusCode, 403);
    assert.equal((await t.app.inject({ method: 'DELETE', url: `/runs/${runId}`, headers: t.headers('admin') })).statusCode, 200);
    assert.equal((await t.app.inject({ method: 'DELETE', url: '/experiments/gone', headers: t.headers('admin') })).statusCode, 200);
  });

  it("a train key cannot cancel another key's job unless admin", async () => {
    const body = { dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' };
    const adminJob = await t.app.inject({ method: 'POST', url: '/train', headers: t.headers('admin'), payload: body });
    assert.equal(adminJob.statusCode, 202, adminJob.body);
    const adminJobId = adminJob.json<{ job_id: string }>().job_id;
    const denied = await t.app.inject({ method: 'POST', url: `/train/${adminJobId}/cancel`, headers: t.headers('train') });
    assert.equal(denied.statusCode, 403, denied.body);
    const own = await t.app.inject({ method: 'POST', url: '/train', headers: t.headers('train'), payload: body });
    const ownId = own.json<{ job_id: string }>().job_id;
    const mine = await t.app.inject({ method: 'POST', url: `/train/${ownId}/cancel`, headers: t.headers('train') });
    assert.ok([200, 409].includes(mine.statusCode), mine.body);
    const byAdmin = await t.app.inject({ method: 'POST', url: `/train/${ownId}/cancel`, headers: t.headers('admin') });
    assert.ok([200, 409].includes(byAdmin.statusCode), byAdmin.body);
  });
});
