/**
 * An attempt that dies never leaves its tracking run RUNNING (issue 11): when its worker thread
 * dies the runner ends the run FAILED; when its whole process died (kill -9), recovery of the
 * orphaned job ends the run the job row recorded. Both store dialects.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, describe, test } from 'node:test';
import { JobCatalogue } from '../../src/training/handlers.ts';
import { orphanReason, settleOrphan } from '../../src/training/job.recovery.ts';
import { claimById, getJob, getLogs, insertJob, recordAttemptRun } from '../../src/training/jobs.repository.ts';
import { EmbeddedQueue } from '../../src/training/queue.embedded.ts';
import { queueOptions } from '../../src/training/queue.ts';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';
import type { DyingPayload } from './fixtures/dying-handler.ts';
import { waitFor } from './faults.ts';

const DYING = new JobCatalogue([{ kind: 'dying', module: new URL('./fixtures/dying-handler.ts', import.meta.url).href, maxAttempts: 2 }]);

for (const backend of await storeBackends()) {
  describe(`dead attempts end their tracking run (${backend})`, { timeout: 240_000 }, () => {
    const apps: TestApp[] = [];
    after(async () => {
      for (const t of apps) await t.close();
    });

    const newRun = async (t: TestApp): Promise<string> => (await t.services.tracking.runs.createRun({ experimentName: 'faults', createExperiment: true })).info.runId;
    const runOf = async (t: TestApp, runId: string) => t.backends.store.db.selectFrom('runs').selectAll().where('run_id', '=', runId).executeTakeFirstOrThrow();
    const errorTag = async (t: TestApp, runId: string) =>
      (await t.backends.store.db.selectFrom('tags').select('value').where('run_id', '=', runId).where('key', '=', 'modelplane.error').executeTakeFirst())?.value;

    test('a worker thread that dies: its run FAILED with an end time, the retry succeeds in a run of its own', async () => {
      const t = await buildTestApp({ backend, env: { TRAINING_WORKERS: '0' } });
      apps.push(t);
      const runs = [await newRun(t), await newRun(t)];
      const queue = new EmbeddedQueue(
        { config: t.config, store: t.backends.store, log: t.ctx.log, catalogue: DYING },
        queueOptions(t.config, { workers: 1, pollIntervalMs: 100, sweepIntervalMs: 200, flushIntervalMs: 50, heartbeatIntervalMs: 100, threadHeartbeatMs: 100 }),
      );
      await queue.start();
      try {
        const id = await queue.enqueue({ kind: 'dying', runs } satisfies DyingPayload);
        const done = await waitFor('the job to finish', async () => {
          const row = await getJob(t.backends.store.db, id);
          return row !== undefined && ['succeeded', 'failed', 'cancelled'].includes(row.status) ? row : undefined;
        }, 120_000, 50);
        assert.equal(done.status, 'succeeded', done.error ?? '');
        assert.equal(done.attempts, 2);
        const dead = await runOf(t, runs[0]!);
        assert.equal(dead.status, 'FAILED');
        assert.ok(dead.end_time !== null && dead.end_time > 0);
        assert.match((await errorTag(t, runs[0]!)) ?? '', /worker died/);
        // The second attempt's run is the handler's to end (the real pipeline ends it FINISHED).
        assert.equal((await runOf(t, runs[1]!)).status, 'RUNNING');
      } finally {
        await queue.close();
      }
    });

    test('a process killed mid-attempt: recovery ends the recorded run FAILED and re-queues the job', async () => {
      const t = await buildTestApp({ backend, env: { TRAINING_WORKERS: '0' } });
      apps.push(t);
      const db = t.backends.store.db;
      const runId = await newRun(t);
      const id = `dead-${Date.now()}`;
      await insertJob(db, { id, kind: 'dying', payload: '{}', maxAttempts: 2, now: Date.now() });
      // A worker on this host whose process no longer exists (pid far above any live one).
      const deadWorker = `${hostname()}:4194303:0badc0de`;
      const claimed = await claimById(db, id, ['queued'], deadWorker, Date.now());
      assert.ok(claimed !== undefined);
      assert.equal(await recordAttemptRun(db, id, deadWorker, runId), true);
      const row = (await getJob(db, id))!;
      const reason = orphanReason(row, Date.now(), 60_000, true);
      assert.match(reason ?? '', /process 4194303 is gone/);
      assert.equal(await settleOrphan(t.backends.store, row, reason!), 'queued');
      const run = await runOf(t, runId);
      assert.equal(run.status, 'FAILED');
      assert.ok(run.end_time !== null);
      assert.match((await errorTag(t, runId)) ?? '', /process 4194303 is gone/);
      const lines = (await getLogs(db, id, { afterSeq: 0, limit: 100 })).map((l) => l.line);
      assert.ok(lines.some((l) => l.includes(`tracking run ${runId} of the dead attempt marked FAILED`)), lines.join('\n'));
      assert.equal((await getJob(db, id))?.status, 'queued');
    });
  });
}
