/**
 * Redis going away under a running API (issue 11), on a private redis-server the test kills and
 * restarts empty: rate-limited requests keep answering (the limiter counts locally), `/ready`
 * reports Redis at once, `redis_degraded` is 1, job submissions answer 503 quickly; once Redis is
 * back all of it recovers by itself, and a queued job whose BullMQ entry died with Redis is
 * enqueued again from the jobs table.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { buildTestApp, type TestApp } from '../helper.ts';
import { PrivateRedis, waitFor } from './faults.ts';

describe('Redis outage under a running API', { timeout: 240_000 }, () => {
  let redis: PrivateRedis;
  let t: TestApp;
  const queueName = `faults-${randomBytes(4).toString('hex')}`;

  before(async () => {
    redis = await PrivateRedis.start();
    t = await buildTestApp({
      env: { REDIS_URL: redis.url, TRAINING_WORKERS: '0', RATE_LIMIT_PER_MINUTE: '1000' },
      backends: { queue: { queueName, sweepIntervalMs: 200, lostEntryGraceMs: 0 } },
    });
  });

  after(async () => {
    await redis.restart();
    await t?.close();
    await redis.stop();
  });

  const gauge = async (): Promise<number> => Number(/^redis_degraded (\d+)/m.exec((await t.app.inject({ url: '/metrics' })).body)?.[1]);
  const submit = () =>
    t.app.inject({
      method: 'POST',
      url: '/train',
      headers: { ...t.headers('train'), 'content-type': 'application/json' },
      payload: { experiment_name: 'faults', dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' },
    });

  test('while Redis is down: requests answer, /ready and redis_degraded report it, submissions 503; then it recovers', async () => {
    const info = await t.app.inject({ url: '/info', headers: t.headers('read') });
    assert.equal(info.statusCode, 200);
    const budget = Number(info.headers['x-ratelimit-remaining']);
    assert.ok(Number.isFinite(budget));
    assert.equal(await gauge(), 0);

    await redis.stop();
    await waitFor('the client to notice', () => (t.backends.redis!.status === 'ready' ? undefined : true), 10_000, 20);

    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      const r = await t.app.inject({ url: '/info', headers: t.headers('read') });
      assert.equal(r.statusCode, 200, r.body);
      assert.ok(r.headers['x-ratelimit-remaining'] !== undefined, 'the local limiter still counts');
    }
    // Twenty requests without waiting on Redis: far below one command timeout each.
    assert.ok(Date.now() - t0 < 20 * 500, `took ${Date.now() - t0} ms`);

    const ready = await t.app.inject({ url: '/ready' });
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().checks.redis.ok, false);
    assert.equal(await gauge(), 1);

    const sub = await submit();
    assert.equal(sub.statusCode, 503, sub.body);
    assert.equal(sub.json().error, 'service_unavailable');
    assert.match(sub.json().details, /Redis/);

    await redis.restart();
    await waitFor('/ready 200 after Redis returned', async () => ((await t.app.inject({ url: '/ready' })).statusCode === 200 ? true : undefined), 30_000, 200);
    await waitFor('redis_degraded back to 0', async () => ((await gauge()) === 0 ? true : undefined), 30_000, 200);
    const again = await waitFor('a submission accepted again', async () => {
      const r = await submit();
      return r.statusCode === 202 ? r : undefined;
    }, 30_000, 250);
    assert.ok(again.json().job_id);
  });

  test('a queued job whose queue entry died with Redis is enqueued again from the jobs table', async () => {
    const sub = await submit();
    assert.equal(sub.statusCode, 202, sub.body);
    const id = sub.json().job_id as string;
    const inspect = async (): Promise<boolean> => {
      const q = new Queue(queueName, { connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null } });
      try {
        return (await q.getJob(id)) !== undefined;
      } finally {
        await q.close();
      }
    };
    assert.equal(await inspect(), true);

    // Restarted empty (the sweep may put the entry back at once: the log line below proves it was lost).
    await redis.stop();
    await redis.restart();

    await waitFor('the sweep to re-enqueue the job', async () => ((await inspect()) ? true : undefined), 60_000, 250);
    const status = await t.app.inject({ url: `/train/status/${id}`, headers: t.headers('read') });
    assert.equal(status.json().status, 'queued');
    const logs = await t.app.inject({ url: `/train/${id}/logs`, headers: t.headers('read') });
    assert.match(logs.body, /enqueued again/);
  });
});
