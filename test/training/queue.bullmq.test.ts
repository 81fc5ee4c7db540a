/**
 * The BullMQ queue against the shared contract: real Redis at TEST_REDIS_URL, a unique queue name
 * per test (obliterated afterwards), the in-process BullMQ worker, and the PostgreSQL store when
 * reachable (else SQLite). Skips when Redis is not reachable outside CI.
 */
import os from 'node:os';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/platform/logging.ts';
import { BullMqQueue } from '../../src/training/queue.bullmq.ts';
import { queueOptions } from '../../src/training/queue.ts';
import { TEST_REDIS_URL, storeBackends } from '../helper.ts';
import { TEST_CATALOGUE, queueContract } from './queue.contract.ts';
import { freshStore, insertOrphan } from './stores.ts';

async function redisAvailable(): Promise<boolean> {
  const r = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch (err) {
    if (process.env['CI'] === 'true') throw new Error(`Redis is required in CI but not reachable at ${TEST_REDIS_URL}`, { cause: err });
    return false;
  } finally {
    r.disconnect();
  }
}

const config = loadConfig({ LOG_LEVEL: 'silent', DATA_DIR: os.tmpdir(), REDIS_URL: TEST_REDIS_URL });
const log = createLogger(config, { pretty: false });

if (await redisAvailable()) {
  const backend = (await storeBackends()).includes('postgres') ? 'postgres' : 'sqlite';
  queueContract(`bullmq (${backend} store)`, {
    async create(overrides) {
      const { store, drop } = await freshStore(backend);
      const queueName = `mp-test-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      const queue = new BullMqQueue({ config, store, log, catalogue: TEST_CATALOGUE }, { ...queueOptions(config, overrides), queueName, redisUrl: TEST_REDIS_URL });
      return {
        queue,
        store,
        // A worker process that died holding the job: the row says running and BullMQ holds it
        // active under a lock that nobody renews.
        async leaveOrphan(payload) {
          const id = await insertOrphan(store, payload, 'gone-host:4242:deadbeef', Date.now());
          await store.db.updateTable('jobs').set({ status: 'queued' }).where('id', '=', id).execute();
          const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
          const q = new Queue(queueName, { connection });
          await q.add(payload.kind, { kind: payload.kind }, { jobId: id, attempts: 12 });
          const dead = new Worker(queueName, null, { connection, lockDuration: 500, autorun: false });
          const job = await dead.getNextJob('dead-worker-token');
          if (job?.id !== id) throw new Error('could not take the orphan job');
          await store.db.updateTable('jobs').set({ status: 'running' }).where('id', '=', id).execute();
          await dead.close(true);
          await q.close();
          await connection.quit();
          return id;
        },
        async close() {
          await queue.close();
          const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
          const q = new Queue(queueName, { connection });
          await q.obliterate({ force: true });
          await q.close();
          await connection.quit();
          await store.close();
          await drop();
        },
      };
    },
  });
}
