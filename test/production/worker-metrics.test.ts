/**
 * A real `modelplane worker` process serves its own metrics (issue 11): with PROMETHEUS_PORT set it
 * listens for `/metrics` and `/health`, and a job it ran shows in its `training_job_duration_seconds`.
 * The API (a test app with TRAINING_WORKERS=0, so it only enqueues) and the worker share a SQLite
 * data folder and a private redis-server. The worker asks for METRICS_REQUIRE_AUTH, so the scrape
 * needs a key, which the worker checks against the shared store.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from '../helper.ts';
import { PrivateRedis, waitFor } from './faults.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The sum of a metric's samples (every label set) in Prometheus text; 0 when absent. */
function sampleSum(text: string, name: string, labels = ''): number {
  const pattern = new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} (\\S+)$`, 'gm');
  return [...text.matchAll(pattern)].reduce((n, m) => n + Number(m[1]), 0);
}

describe('modelplane worker serves /metrics and /health', { timeout: 280_000 }, () => {
  let redis: PrivateRedis;
  let t: TestApp;
  let worker: ChildProcess | undefined;
  let output = '';
  let metricsBase = '';

  before(async () => {
    redis = await PrivateRedis.start();
    t = await buildTestApp({ env: { REDIS_URL: redis.url, TRAINING_WORKERS: '0' } });
    worker = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts'), 'worker', '--concurrency', '1'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATA_DIR: t.dataDir,
        REDIS_URL: redis.url,
        DATABASE_URL: '',
        API_HOST: '127.0.0.1',
        // 0: the system picks a free port, which the worker logs.
        PROMETHEUS_PORT: '0',
        METRICS_REQUIRE_AUTH: 'true',
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<never>((_resolve, reject) => worker!.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready:\n${output}`))));
    const ready = waitFor('the worker to log "training worker ready"', () => (output.includes('"msg":"training worker ready"') ? true : undefined), 180_000, 100);
    await Promise.race([ready, exited]);
    const line = output.split('\n').find((l) => l.includes('"msg":"metrics listener ready"'));
    const address = line === undefined ? undefined : (JSON.parse(line) as { address?: string }).address;
    assert.ok(address !== undefined, `no metrics listener in the worker's log:\n${output}`);
    metricsBase = address.replace(/\/metrics$/, '');
  });

  after(async () => {
    if (worker !== undefined && worker.exitCode === null) {
      const gone = new Promise((resolve) => worker!.once('exit', resolve));
      worker.kill('SIGKILL');
      await gone;
    }
    await t?.close();
    await redis?.stop();
  });

  test('/health answers 200 without a key; other paths 404', async () => {
    const health = await fetch(`${metricsBase}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    assert.equal((await fetch(`${metricsBase}/train`)).status, 404);
  });

  test('/metrics needs a key (METRICS_REQUIRE_AUTH): 401 without one or with an unknown one', async () => {
    assert.equal((await fetch(`${metricsBase}/metrics`)).status, 401);
    assert.equal((await fetch(`${metricsBase}/metrics`, { headers: { 'x-api-key': 'mp_not-a-key-of-this-store' } })).status, 401);
  });

  test('a job the worker ran is counted in its training_job_duration_seconds', async () => {
    const submitted = await t.app.inject({
      method: 'POST',
      url: '/train',
      headers: t.headers('train'),
      payload: { experiment_name: 'worker-metrics', dataset: { name: 'iris' }, target: 'target', algorithm: 'decision_tree' },
    });
    assert.equal(submitted.statusCode, 202, submitted.body);
    const id = submitted.json<{ job_id: string }>().job_id;
    const job = await waitFor(
      `job ${id} to finish`,
      async () => {
        const status = (await t.app.inject({ url: `/train/status/${id}`, headers: t.headers('read') })).json<{ status: string; error?: string | null }>();
        return ['succeeded', 'failed', 'cancelled'].includes(status.status) ? status : undefined;
      },
      180_000,
      200,
    );
    assert.equal(job.status, 'succeeded', `${job.error ?? ''}\n${output}`);
    // The row is written before the histogram is observed: wait for the sample, not a fixed time.
    const text = await waitFor(
      'training_job_duration_seconds_count{status="succeeded"} on the worker',
      async () => {
        const res = await fetch(`${metricsBase}/metrics`, { headers: t.headers('read') });
        assert.equal(res.status, 200);
        const body = await res.text();
        return sampleSum(body, 'training_job_duration_seconds_count', 'status="succeeded"') >= 1 ? body : undefined;
      },
      30_000,
      100,
    );
    assert.equal(sampleSum(text, 'training_job_duration_seconds_count', 'status="succeeded"'), 1);
    assert.ok(sampleSum(text, 'training_job_duration_seconds_sum', 'status="succeeded"') > 0);
    // The process metrics of the worker itself, and none of the API's.
    assert.match(text, /^process_cpu_user_seconds_total \S+$/m);
    assert.match(text, /^nodejs_eventloop_lag_seconds \S+$/m);
    assert.doesNotMatch(text, /^api_requests_total/m);
    // The API's registry has the histogram too, but this job did not end there.
    const apiText = (await t.app.inject({ url: '/metrics' })).body;
    assert.equal(sampleSum(apiText, 'training_job_duration_seconds_count'), 0);
  });

  test('SIGTERM: the worker exits 0 and its listener is gone', async () => {
    const exited = new Promise<number | null>((resolve) => worker!.once('exit', (code) => resolve(code)));
    worker!.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    await assert.rejects(fetch(`${metricsBase}/health`));
  });
});
