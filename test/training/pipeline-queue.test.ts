/**
 * The pipeline as the job system runs it: checked and resolved as the API does, queued, run by
 * the `train` handler in a worker thread that opens its own store and artifact store. SQLite
 * only: the queue's own suites cover the backends, this checks the wiring.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { closeContext, openContext } from '../../src/context.ts';
import { createLogger } from '../../src/platform/logging.ts';
import { getJob, getLogs } from '../../src/training/jobs.repository.ts';
import { EmbeddedQueue } from '../../src/training/queue.embedded.ts';
import { queueOptions } from '../../src/training/queue.ts';
import { trainingCatalogue } from '../../src/training/train-job.ts';
import { parseTrainRequest, validateTrainRequest } from '../../src/training/train-request.ts';
import { FAST_TIMINGS, finished } from './queue.contract.ts';

void test('a train job runs in a worker thread: run logged, model registered, result and logs on the job', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-pipeline-queue-'));
  const config = loadConfig({ LOG_LEVEL: 'silent', DATA_DIR: dataDir });
  const log = createLogger(config, { pretty: false });
  const ctx = await openContext(config, log, { services: { keyRefreshMs: 60_000 } });
  const { services } = ctx;
  const store = ctx.backends.store;
  const queue = new EmbeddedQueue({ config, store, log, catalogue: trainingCatalogue() }, queueOptions(config, { ...FAST_TIMINGS, workers: 1, stallTimeoutMs: 30_000 }));
  try {
    const payload = await validateTrainRequest(
      parseTrainRequest({ dataset: { name: 'iris' }, target: 'target', algorithm: 'gradient_boosting', params: { max_iter: 10 }, register_as: 'queued-iris', promote_to: 'Staging' }),
      services.datasets,
      'key-1',
    );
    await queue.start();
    const id = await queue.enqueue(payload);
    const row = await finished(store, id, 60_000);
    assert.equal(row.status, 'succeeded', row.error ?? '');
    const result = JSON.parse(row.result!) as { runId: string; model: { name: string; version: number; stage: string } };
    assert.deepEqual(result.model, { name: 'queued-iris', version: 1, stage: 'Staging' });
    const run = await services.tracking.runs.getRun(result.runId);
    assert.equal(run.info.status, 'FINISHED');
    assert.equal(run.data.tags.find((t) => t.key === 'modelplane.job_id')?.value, id);
    assert.equal((await services.registry.models.getVersion('queued-iris', 1)).stage, 'Staging');
    assert.equal((await getJob(store.db, id))?.progress_percent, 100);
  } finally {
    await queue.close();
    await closeContext(ctx);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

void test("a forest job builds trees on the queue's thread budget unless its n_jobs says otherwise", async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-pipeline-threads-'));
  const config = loadConfig({ LOG_LEVEL: 'silent', DATA_DIR: dataDir });
  const log = createLogger(config, { pretty: false });
  const ctx = await openContext(config, log, { services: { keyRefreshMs: 60_000 } });
  const store = ctx.backends.store;
  const queue = new EmbeddedQueue({ config, store, log, catalogue: trainingCatalogue() }, queueOptions(config, { ...FAST_TIMINGS, workers: 1, stallTimeoutMs: 30_000, jobThreads: 3 }));
  const forest = async (params: Record<string, unknown>): Promise<string[]> => {
    const payload = await validateTrainRequest(parseTrainRequest({ dataset: { name: 'iris' }, target: 'target', algorithm: 'random_forest', params }), ctx.services.datasets, 'key-1');
    const id = await queue.enqueue(payload);
    const row = await finished(store, id, 60_000);
    assert.equal(row.status, 'succeeded', row.error ?? '');
    return (await getLogs(store.db, id, { afterSeq: 0, limit: 1000 })).map((l) => l.line);
  };
  try {
    await queue.start();
    assert.ok((await forest({ n_estimators: 5 })).includes("tree building on up to 3 threads (the process's default)"));
    assert.ok((await forest({ n_estimators: 5, n_jobs: 2 })).includes('tree building on up to 2 threads (n_jobs)'));
    assert.ok((await forest({ n_estimators: 5, n_jobs: -1 })).includes('tree building on every core (n_jobs -1)'));
  } finally {
    await queue.close();
    await closeContext(ctx);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
