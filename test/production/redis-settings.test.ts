/**
 * REDIS_COMMAND_TIMEOUT_MS and REDIS_CONNECT_TIMEOUT_MS reach the shared Redis connection: a
 * command to a Redis that stopped answering (SIGSTOP: the connection stays open) fails with a
 * timeout instead of waiting for it, and `/ready` says Redis is not usable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';
import { PrivateRedis } from './faults.ts';

describe('the Redis timeout settings', { timeout: 120_000 }, () => {
  let redis: PrivateRedis;
  let t: TestApp;

  before(async () => {
    redis = await PrivateRedis.start();
    t = await buildTestApp({ env: { REDIS_URL: redis.url, TRAINING_WORKERS: '0', REDIS_COMMAND_TIMEOUT_MS: '200', REDIS_CONNECT_TIMEOUT_MS: '2500' } });
  });

  after(async () => {
    redis?.resume();
    await t?.close();
    await redis?.stop();
  });

  test('the shared connection is opened with them', () => {
    const options = t.backends.redis!.options;
    assert.equal(options.commandTimeout, 200);
    assert.equal(options.connectTimeout, 2500);
  });

  test('a command to a frozen Redis times out; /ready answers 503 naming redis', async () => {
    assert.equal(await t.backends.redis!.ping(), 'PONG');
    redis.pause();
    try {
      await assert.rejects(t.backends.redis!.ping(), /timed out/i);
      const ready = await t.app.inject({ url: '/ready' });
      assert.equal(ready.statusCode, 503);
      assert.match(ready.body, /redis/);
    } finally {
      redis.resume();
    }
  });
});
