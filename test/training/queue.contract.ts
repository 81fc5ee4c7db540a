/**
 * Behaviour every JobQueue backend must share. Backend test files call `queueContract(name,
 * harness)`; each test gets a fresh store and queue (its own database/schema and queue name) with
 * fast timings, and everything is closed afterwards.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { threadId } from 'node:worker_threads';
import { JobCatalogue } from '../../src/training/handlers.ts';
import { getJob, getLogs, type JobRow } from '../../src/training/jobs.repository.ts';
import type { JobQueue, QueueOptions } from '../../src/training/queue.ts';
import type { Store } from '../../src/store/database.ts';
import type { TestPayload } from './fixtures/test-handler.ts';

export interface QueueEnv {
  readonly queue: JobQueue;
  readonly store: Store;
  /** Leaves a job `running` as a process that died would, before `queue.start()`. */
  leaveOrphan(payload: TestPayload): Promise<string>;
  close(): Promise<void>;
}

export interface QueueHarness {
  /** A fresh store and a queue on it (not started) with `overrides` applied. */
  create(overrides?: Partial<QueueOptions>): Promise<QueueEnv>;
}

/** Timings that make every failure path observable within a second or two. */
export const FAST_TIMINGS: Partial<QueueOptions> = {
  workers: 2,
  pollIntervalMs: 100,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 3000,
  sweepIntervalMs: 200,
  flushIntervalMs: 50,
  stallTimeoutMs: 1500,
  cancelGraceMs: 400,
  threadHeartbeatMs: 100,
  progressThrottleMs: 20,
  lockDurationMs: 1000,
  stalledIntervalMs: 300,
};

export const TEST_HANDLER = new URL('./fixtures/test-handler.ts', import.meta.url).href;

/** The job kinds the queue tests run: `test`, handled by fixtures/test-handler.ts in worker processes. */
export const TEST_CATALOGUE = new JobCatalogue([{ kind: 'test', module: TEST_HANDLER }]);

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export async function waitFor(store: Store, id: string, done: (row: JobRow) => boolean, timeoutMs = 120_000): Promise<JobRow> {
  const deadline = Date.now() + timeoutMs;
  let row: JobRow | undefined;
  while (Date.now() < deadline) {
    row = await getJob(store.db, id);
    if (row !== undefined && done(row)) return row;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`job ${id} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(row)}`);
}

export const finished = (store: Store, id: string, timeoutMs?: number): Promise<JobRow> => waitFor(store, id, (r) => TERMINAL.has(r.status), timeoutMs);

async function lines(store: Store, id: string): Promise<string[]> {
  return (await getLogs(store.db, id, { afterSeq: 0, limit: 1000 })).map((l) => l.line);
}

async function withQueueOf(harness: QueueHarness, fn: (env: QueueEnv) => Promise<void>, overrides: Partial<QueueOptions> = {}): Promise<void> {
  const env = await harness.create({ ...FAST_TIMINGS, ...overrides });
  try {
    await env.queue.start();
    await fn(env);
  } finally {
    await env.close();
  }
}

export function queueContract(name: string, harness: QueueHarness): void {
  // Tests are independent (own store, own queue), so a few run at once to keep the suite short;
  // the event-loop test runs on its own afterwards so other tests' work cannot disturb it.
  describe(`JobQueue contract: ${name}`, { concurrency: 3 }, () => {
    const withQueue = (fn: (env: QueueEnv) => Promise<void>, overrides: Partial<QueueOptions> = {}): Promise<void> => withQueueOf(harness, fn, overrides);

    test('a job runs and succeeds with its result, progress 100 and logs', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'succeed' } satisfies TestPayload);
        const queued = await getJob(store.db, id);
        assert.ok(queued !== undefined);
        const row = await finished(store, id);
        assert.equal(row.status, 'succeeded');
        assert.equal(row.attempts, 1);
        assert.equal(row.progress_percent, 100);
        assert.equal(row.run_id, 'run-1');
        assert.deepEqual(JSON.parse(row.result ?? 'null'), { runId: 'run-1', experimentName: 'tests', model: { name: 'm', version: 1, stage: 'None' }, metrics: { accuracy: 0.9 } });
        assert.ok(row.started_at !== null && row.finished_at !== null && row.finished_at >= row.started_at);
        const log = await lines(store, id);
        const i1 = log.indexOf('hello 1');
        assert.ok(i1 >= 0 && log[i1 + 1] === 'hello 2', log.join('\n'));
        assert.ok(log.some((l) => l.startsWith('attempt 1 of 2 started')));
      }));

    test('progress and stage are visible while the job runs', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'sleep', ms: 120_000 } satisfies TestPayload);
        const row = await waitFor(store, id, (r) => r.status === 'running' && r.stage === 'fit');
        assert.equal(row.progress_percent, 50);
        assert.equal(row.message, 'half way');
        assert.equal(await queue.cancel(id), 'cancel_requested');
        assert.equal((await finished(store, id)).status, 'cancelled');
      }));

    test('a queued job is cancelled at once and never runs', () =>
      withQueue(
        async ({ queue, store }) => {
          const blocker = await queue.enqueue({ kind: 'test', action: 'sleep', ms: 120_000 } satisfies TestPayload);
          await waitFor(store, blocker, (r) => r.status === 'running');
          const id = await queue.enqueue({ kind: 'test', action: 'succeed' } satisfies TestPayload);
          assert.equal(await queue.cancel(id), 'cancelled');
          const row = await getJob(store.db, id);
          assert.equal(row?.status, 'cancelled');
          assert.equal(row?.attempts, 0);
          assert.equal(await queue.cancel(id), 'already_finished');
          assert.equal(await queue.cancel('00000000-0000-0000-0000-000000000000'), 'not_found');
          await queue.cancel(blocker);
          await finished(store, blocker);
          // Give a worker the chance to (wrongly) pick the cancelled job up.
          await new Promise((r) => setTimeout(r, 300));
          assert.equal((await getJob(store.db, id))?.attempts, 0);
        },
        { workers: 1 },
      ));

    test('a running job is cancelled through its AbortSignal', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'sleep', ms: 120_000 } satisfies TestPayload);
        await waitFor(store, id, (r) => r.status === 'running' && r.stage === 'fit');
        assert.equal(await queue.cancel(id), 'cancel_requested');
        const row = await finished(store, id);
        assert.equal(row.status, 'cancelled');
        const log = await lines(store, id);
        assert.ok(log.includes('sleep interrupted by the abort signal'), 'the job stopped through its signal, not by its thread being terminated');
        assert.ok(log.includes('job cancelled'));
        // A long grace period: a busy machine may take a while to deliver the cancellation, and the
        // thread must not be terminated before the job reports how it stopped.
      }, { cancelGraceMs: 60_000 }));

    test('a job that ignores cancellation has its worker process killed and ends cancelled', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'ignore-cancel', ms: 30_000 } satisfies TestPayload);
        await waitFor(store, id, (r) => r.status === 'running' && r.stage === 'fit');
        await queue.cancel(id);
        const row = await finished(store, id);
        assert.equal(row.status, 'cancelled');
        assert.equal(row.attempts, 1);
      }));

    test('a deterministic failure is not retried', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'fail-deterministic' } satisfies TestPayload);
        const row = await finished(store, id);
        assert.equal(row.status, 'failed');
        assert.equal(row.attempts, 1);
        assert.equal(row.error, 'target column has a single class');
      }));

    test('a transient failure is retried and then succeeds', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'fail-transient', failUntilAttempt: 1 } satisfies TestPayload);
        const row = await finished(store, id);
        assert.equal(row.status, 'succeeded');
        assert.equal(row.attempts, 2);
        assert.equal(row.run_id, 'run-2');
        assert.ok((await lines(store, id)).some((l) => l === 'attempt 1 failed: artifact store timed out; retrying'));
      }));

    test('a transient failure on every attempt fails after max attempts', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'fail-transient' } satisfies TestPayload, { maxAttempts: 3 });
        const row = await finished(store, id);
        assert.equal(row.status, 'failed');
        assert.equal(row.attempts, 3);
        assert.equal(row.error, 'artifact store timed out (after 3 attempts)');
      }));

    test('a worker process that dies is detected, the job retried, then succeeds', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'exit', failUntilAttempt: 1 } satisfies TestPayload);
        const row = await finished(store, id);
        assert.equal(row.status, 'succeeded');
        assert.equal(row.attempts, 2);
        assert.ok((await lines(store, id)).some((l) => l.includes("worker died (exit code 1) during stage 'fit'")));
      }));

    test('a worker process that always dies fails the job with the reason', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'exit' } satisfies TestPayload);
        const row = await finished(store, id);
        assert.equal(row.status, 'failed');
        assert.equal(row.attempts, 2);
        assert.match(row.error ?? '', /^worker died \(exit code 1\) during stage 'fit' \(after 2 attempts\)$/);
      }));

    test('a hung worker process is killed after the stall timeout', () =>
      withQueue(async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'hang' } satisfies TestPayload, { maxAttempts: 1 });
        const row = await finished(store, id);
        assert.equal(row.status, 'failed');
        assert.equal(row.attempts, 1);
        assert.match(row.error ?? '', /^worker stopped responding \(no heartbeat for \d+ s\) during stage 'fit'$/);
      }));

    test('a job left running by a previous process is recovered at start', async () => {
      const env = await harness.create(FAST_TIMINGS);
      try {
        const id = await env.leaveOrphan({ kind: 'test', action: 'succeed' });
        assert.equal((await getJob(env.store.db, id))?.status, 'running');
        await env.queue.start();
        const row = await finished(env.store, id);
        assert.equal(row.status, 'succeeded');
        assert.equal(row.attempts, 2);
        assert.ok((await lines(env.store, id)).some((l) => /^attempt 1 failed: worker died .* during stage 'fit'; retrying$/.test(l)));
      } finally {
        await env.close();
      }
    });

    test('closing re-queues running jobs without using up an attempt', async () => {
      const env = await harness.create(FAST_TIMINGS);
      try {
        await env.queue.start();
        const id = await env.queue.enqueue({ kind: 'test', action: 'sleep', ms: 120_000 } satisfies TestPayload);
        await waitFor(env.store, id, (r) => r.status === 'running' && r.stage === 'fit');
        await env.queue.close();
        const row = await getJob(env.store.db, id);
        assert.equal(row?.status, 'queued');
        assert.equal(row?.attempts, 0);
      } finally {
        await env.close();
      }
    });
  });

  describe(`JobQueue contract: ${name}: worker processes`, () => {
    // How long the event loop is held up while such a job runs is measured in bench/queue-event-loop.ts.
    test('a CPU-heavy job runs in a worker process, not on the queue\'s thread', () =>
      withQueueOf(harness, async ({ queue, store }) => {
        const id = await queue.enqueue({ kind: 'test', action: 'busy', ms: 200 } satisfies TestPayload);
        const row = await finished(store, id);
        assert.equal(row.status, 'succeeded');
        const line = (await lines(store, id)).find((l) => l.startsWith('busy on thread '));
        assert.ok(line !== undefined, 'the job logged its thread');
        assert.notEqual(line.slice('busy on thread '.length), `${process.pid}/${threadId}`, 'the job ran on the queue\'s own thread');
      }));

    const busyThread = async (store: Store, id: string): Promise<string> => {
      const row = await finished(store, id);
      assert.equal(row.status, 'succeeded', row.error ?? '');
      const line = (await lines(store, id)).find((l) => l.startsWith('busy on thread '));
      assert.ok(line !== undefined, 'the job logged its thread');
      return line.slice('busy on thread '.length);
    };

    test('a job that follows another reuses its worker process', () =>
      withQueueOf(
        harness,
        async ({ queue, store }) => {
          const first = await busyThread(store, await queue.enqueue({ kind: 'test', action: 'busy', ms: 10 } satisfies TestPayload));
          const second = await busyThread(store, await queue.enqueue({ kind: 'test', action: 'busy', ms: 10 } satisfies TestPayload));
          assert.equal(second, first);
        },
        { workers: 1, threadIdleMs: 60_000 },
      ));

    test('a worker process reports its memory while it lives; 0 once it has ended', () =>
      withQueueOf(
        harness,
        async ({ queue, store }) => {
          assert.equal(queue.workerMemoryBytes(), 0, 'no worker before the first job');
          const id = await queue.enqueue({ kind: 'test', action: 'sleep', ms: 60_000 } satisfies TestPayload);
          await waitFor(store, id, (r) => r.status === 'running' && r.stage === 'fit');
          const deadline = Date.now() + 20_000;
          while (queue.workerMemoryBytes() === 0) {
            assert.ok(Date.now() < deadline, 'the running worker never reported its memory');
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          // A node process with the job's handler loaded holds more than 10 MB.
          assert.ok(queue.workerMemoryBytes() > 10 * 1024 * 1024, `reported ${queue.workerMemoryBytes()} bytes`);
          await queue.cancel(id);
          assert.equal((await finished(store, id)).status, 'cancelled');
          while (queue.describe()['worker_processes'] !== 0) {
            assert.ok(Date.now() < deadline + 20_000, `workers still alive: ${String(queue.describe()['worker_processes'])}`);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          assert.equal(queue.workerMemoryBytes(), 0);
        },
        { workers: 1, threadIdleMs: 100 },
      ));

    test('an idle worker process is ended after threadIdleMs; the next job starts a new one', () =>
      withQueueOf(
        harness,
        async ({ queue, store }) => {
          const first = await busyThread(store, await queue.enqueue({ kind: 'test', action: 'busy', ms: 10 } satisfies TestPayload));
          const deadline = Date.now() + 20_000;
          while (queue.describe()['worker_processes'] !== 0) {
            assert.ok(Date.now() < deadline, `workers still alive: ${String(queue.describe()['worker_processes'])}`);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          const second = await busyThread(store, await queue.enqueue({ kind: 'test', action: 'busy', ms: 10 } satisfies TestPayload));
          assert.notEqual(second, first);
        },
        { workers: 1, threadIdleMs: 100 },
      ));
  });
}
