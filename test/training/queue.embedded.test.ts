/**
 * The embedded queue (jobs table + worker threads) against the shared contract, on SQLite and on
 * PostgreSQL when it is reachable, plus recovery cases only the embedded backend decides itself.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/platform/logging.ts';
import { getJob } from '../../src/training/jobs.repository.ts';
import { EmbeddedQueue } from '../../src/training/queue.embedded.ts';
import { queueOptions, type QueueOptions } from '../../src/training/queue.ts';
import { storeBackends, type StoreBackend } from '../helper.ts';
import { FAST_TIMINGS, TEST_CATALOGUE, finished, queueContract, type QueueEnv } from './queue.contract.ts';
import { freshStore, insertOrphan } from './stores.ts';
import type { TestPayload } from './fixtures/test-handler.ts';

const config = loadConfig({ LOG_LEVEL: 'silent', DATA_DIR: os.tmpdir() });
const log = createLogger(config, { pretty: false });

async function embeddedEnv(backend: StoreBackend, overrides: Partial<QueueOptions> = {}): Promise<QueueEnv> {
  const { store, drop } = await freshStore(backend);
  const queue = new EmbeddedQueue({ config, store, log, catalogue: TEST_CATALOGUE }, queueOptions(config, overrides));
  return {
    queue,
    store,
    // A process on this host that no longer exists, with a fresh heartbeat: recognised at once.
    leaveOrphan: (payload) => insertOrphan(store, payload, `${os.hostname()}:${2 ** 22 + 17}:deadbeef`, Date.now()),
    async close() {
      await queue.close();
      await store.close();
      await drop();
    },
  };
}

for (const backend of await storeBackends()) {
  queueContract(`embedded (${backend})`, { create: (overrides) => embeddedEnv(backend, overrides) });

  describe(`embedded queue recovery (${backend})`, { concurrency: true }, () => {

    test('a job on another host is recovered only once its heartbeat is stale', async () => {
      const env = await embeddedEnv(backend, FAST_TIMINGS);
      try {
        const fresh = await insertOrphan(env.store, { kind: 'test', action: 'succeed' }, 'elsewhere:1234:0badf00d', Date.now());
        const stale = await insertOrphan(env.store, { kind: 'test', action: 'succeed' }, 'elsewhere:1234:0badf00d', Date.now() - 60_000);
        await env.queue.start();
        const row = await finished(env.store, stale);
        assert.equal(row.status, 'succeeded');
        assert.equal((await getJob(env.store.db, fresh))?.status, 'running');
        // Once it stops heartbeating it is recovered too.
        const again = await finished(env.store, fresh);
        assert.equal(again.status, 'succeeded');
        assert.equal(again.attempts, 2);
      } finally {
        await env.close();
      }
    });

    test('an orphan with no attempts left is failed with the stage it died in', async () => {
      const env = await embeddedEnv(backend, FAST_TIMINGS);
      try {
        const id = await insertOrphan(env.store, { kind: 'test', action: 'succeed' }, `${os.hostname()}:${2 ** 22 + 17}:deadbeef`, Date.now());
        await env.store.db.updateTable('jobs').set({ max_attempts: 1 }).where('id', '=', id).execute();
        await env.queue.start();
        const row = await finished(env.store, id);
        assert.equal(row.status, 'failed');
        assert.match(row.error ?? '', /^worker died \(process \d+ is gone\) during stage 'fit'$/);
      } finally {
        await env.close();
      }
    });

    test('two queues on one store never run the same job twice', async () => {
      const a = await embeddedEnv(backend, FAST_TIMINGS);
      const b = new EmbeddedQueue({ config, store: a.store, log, catalogue: TEST_CATALOGUE }, queueOptions(config, FAST_TIMINGS));
      try {
        const ids: string[] = [];
        for (let i = 0; i < 6; i++) ids.push(await a.queue.enqueue({ kind: 'test', action: 'succeed' } satisfies TestPayload));
        await Promise.all([a.queue.start(), b.start()]);
        for (const id of ids) {
          const row = await finished(a.store, id);
          assert.equal(row.status, 'succeeded');
          assert.equal(row.attempts, 1);
        }
      } finally {
        await b.close();
        await a.close();
      }
    });
  });
}
