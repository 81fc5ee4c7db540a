/**
 * The training HTTP surface on a full app (embedded queue, one worker thread): up-front
 * validation, 202 and status shape, the real pipeline end to end on the built-in iris dataset,
 * listing, logs, cancellation (409 once finished), metrics and the /info section.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JobCatalogue } from '../../src/training/handlers.ts';
import { buildTestApp, type TestApp } from '../helper.ts';

/** `train` jobs run the real pipeline, or sleep when tagged `test.sleep_ms` (see the fixture). */
const CATALOGUE = new JobCatalogue([{ kind: 'train', module: new URL('./fixtures/train-or-sleep.ts', import.meta.url).href }]);

async function pollStatus(t: TestApp, id: string, done: (body: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let body: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    const res = await t.app.inject({ method: 'GET', url: `/train/status/${id}`, headers: t.headers('read') });
    assert.equal(res.statusCode, 200);
    body = res.json();
    if (done(body)) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`job ${id} did not reach the expected state; last ${JSON.stringify(body)}`);
}

const isFinished = (b: Record<string, unknown>): boolean => ['succeeded', 'failed', 'cancelled'].includes(b['status'] as string);

describe('training routes', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp({ env: { TRAINING_WORKERS: '1' }, backends: { catalogue: CATALOGUE } });
  });
  after(async () => {
    await t.close();
  });

  test('POST /train validates up front: 404 unknown dataset, 400 unknown target or bad body', async () => {
    const post = (body: unknown) => t.app.inject({ method: 'POST', url: '/train', headers: t.headers('train'), payload: body as object });
    assert.equal((await post({ dataset: { name: 'no-such-dataset' }, target: 'y', algorithm: 'decision_tree' })).statusCode, 404);
    const badTarget = await post({ dataset: { name: 'iris' }, target: 'nope', algorithm: 'decision_tree' });
    assert.equal(badTarget.statusCode, 400);
    assert.match(badTarget.json().details, /nope/);
    assert.equal((await post({ dataset: { name: 'iris' }, target: 'target', algorithm: 'svm' })).statusCode, 400);
    const readOnly = await t.app.inject({ method: 'POST', url: '/train', headers: t.headers('read'), payload: { dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' } });
    assert.equal(readOnly.statusCode, 403);
  });

  test('a real training job runs end to end and is listed with its logs', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/train',
      headers: t.headers('train'),
      payload: { dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree', params: { max_depth: 3 }, register_as: 'iris-jobs', experiment_name: 'jobs-test' },
    });
    assert.equal(res.statusCode, 202, res.body);
    const { job_id, status, status_url } = res.json();
    assert.equal(status, 'queued');
    assert.equal(status_url, `/train/status/${job_id}`);
    const body = await pollStatus(t, job_id, isFinished, 60_000);
    assert.equal(body['status'], 'succeeded', JSON.stringify(body));
    assert.deepEqual(Object.keys(body).slice(0, 11), ['job_id', 'status', 'progress', 'run_id', 'experiment_name', 'model', 'metrics', 'error', 'created_at', 'started_at', 'finished_at']);
    assert.equal((body['progress'] as { percent: number }).percent, 100);
    assert.equal(body['experiment_name'], 'jobs-test');
    assert.equal((body['model'] as { name: string }).name, 'iris-jobs');
    assert.ok(typeof (body['metrics'] as Record<string, number>)['accuracy'] === 'number');
    assert.ok(typeof body['run_id'] === 'string');

    const list = await t.app.inject({ method: 'GET', url: '/train/jobs?status=succeeded', headers: t.headers('read') });
    assert.equal(list.statusCode, 200);
    assert.ok(list.json().jobs.some((j: { job_id: string }) => j.job_id === job_id));

    const logs = await t.app.inject({ method: 'GET', url: `/train/${job_id}/logs`, headers: t.headers('read') });
    assert.equal(logs.statusCode, 200);
    const lines = logs.json().lines as Array<{ at: string; line: string }>;
    assert.ok(lines.length >= 2);
    assert.ok(lines.some((l) => l.line === 'job succeeded'));
    assert.ok(!Number.isNaN(Date.parse(lines[0]!.at)));

    const cancel = await t.app.inject({ method: 'POST', url: `/train/${job_id}/cancel`, headers: t.headers('train') });
    assert.equal(cancel.statusCode, 409);
  });

  test('cancel a running job, 404 for unknown jobs, list paging, metrics and /info', async () => {
    // A stand-in for the pipeline that sleeps, so cancellation is observable.
    {
      const payload = { dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree', tags: { 'test.sleep_ms': '20000' } };
      const res = await t.app.inject({ method: 'POST', url: '/train', headers: t.headers('train'), payload });
      assert.equal(res.statusCode, 202);
      const id = res.json().job_id as string;
      await pollStatus(t, id, (b) => (b['progress'] as { stage: string }).stage === 'fit');
      const cancel = await t.app.inject({ method: 'POST', url: `/train/${id}/cancel`, headers: t.headers('train') });
      assert.equal(cancel.statusCode, 200);
      assert.equal(cancel.json().cancel_requested, true);
      const done = await pollStatus(t, id, isFinished);
      assert.equal(done['status'], 'cancelled');
    }
    const unknown = '00000000-0000-4000-8000-000000000000';
    assert.equal((await t.app.inject({ method: 'GET', url: `/train/status/${unknown}`, headers: t.headers('read') })).statusCode, 404);
    assert.equal((await t.app.inject({ method: 'POST', url: `/train/${unknown}/cancel`, headers: t.headers('train') })).statusCode, 404);
    assert.equal((await t.app.inject({ method: 'GET', url: `/train/${unknown}/logs`, headers: t.headers('read') })).statusCode, 404);

    const page1 = await t.app.inject({ method: 'GET', url: '/train/jobs?limit=1', headers: t.headers('read') });
    const p1 = page1.json();
    assert.equal(p1.jobs.length, 1);
    assert.ok(typeof p1.next_page_token === 'string');
    const page2 = await t.app.inject({ method: 'GET', url: `/train/jobs?limit=1&page_token=${p1.next_page_token}`, headers: t.headers('read') });
    assert.equal(page2.json().jobs.length, 1);
    assert.notEqual(page2.json().jobs[0].job_id, p1.jobs[0].job_id);
    // Newest first.
    assert.ok(Date.parse(p1.jobs[0].created_at) >= Date.parse(page2.json().jobs[0].created_at));

    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /training_jobs\{status="cancelled"\} 1/);
    assert.match(metrics.body, /training_job_duration_seconds_count\{status="succeeded"\} 1/);
    assert.match(metrics.body, /^training_worker_resident_memory_bytes \d+$/m);

    const info = await t.app.inject({ method: 'GET', url: '/info', headers: t.headers('read') });
    const training = info.json().training;
    assert.equal(training.queue.backend, 'embedded');
    assert.equal(training.queue.workers, 1);
    assert.equal(typeof training.queue.worker_processes, 'number');
  });
});
