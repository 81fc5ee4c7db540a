/**
 * The training issue's "done when", over HTTP alone: upload breast_cancer.csv, train every
 * algorithm, find the runs under /experiments, promote a model and predict with it. Optionally
 * keeps /health and /predict under a steady probe while gradient boosting trains on California
 * housing, and reports their latency percentiles.
 *
 *   node --import tsx bench/e2e-http.ts                      # SQLite, embedded queue
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379 \
 *     node --import tsx bench/e2e-http.ts                    # PostgreSQL + BullMQ
 *
 * Starts its own server on a free port with a fresh data directory; needs ../shared/datasets.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from './common.ts';

const root = path.resolve(import.meta.dirname, '..');
const datasets = path.resolve(root, '../shared/datasets');
const API_KEY = 'e2e-admin-key-0123456789abcdef';

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-e2e-'));
const server = spawn(process.execPath, [path.join(root, 'bin/modelplane.js'), 'serve', '--port', String(port), '--data-dir', dataDir], {
  env: { ...process.env, API_KEY, LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '0', MODEL_NAME: 'breast-cancer' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const headers = { 'x-api-key': API_KEY };

async function call(method: string, url: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> {
  const r = await fetch(`${base}${url}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': contentType }) },
    body: body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body),
  });
  const text = await r.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, json };
}

function expect(cond: boolean, what: string, detail?: unknown): void {
  if (!cond) {
    console.error(`FAILED: ${what}`, detail === undefined ? '' : JSON.stringify(detail).slice(0, 800));
    server.kill('SIGTERM');
    process.exit(1);
  }
  console.log(`ok  ${what}`);
}

async function waitForJob(jobId: string): Promise<any> {
  for (;;) {
    const s = await call('GET', `/train/status/${jobId}`);
    if (['succeeded', 'failed', 'cancelled'].includes(s.json.status)) return s.json;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {
      if (i > 300) throw new Error('server did not start');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const info = await call('GET', '/info');
  console.log(`server: store ${info.json.backends.store}, training ${JSON.stringify(info.json.training?.backend ?? info.json.training?.queue ?? '')}`);

  const csv = readFileSync(path.join(datasets, 'breast_cancer.csv'));
  const up = await call('POST', '/datasets/breast_cancer', csv, 'text/csv');
  expect(up.status === 201, 'upload breast_cancer.csv', up.json);

  const algorithms = ['logistic_regression', 'decision_tree', 'random_forest', 'gradient_boosting'] as const;
  const results: Record<string, any> = {};
  for (const algorithm of algorithms) {
    const t0 = performance.now();
    const sub = await call('POST', '/train', {
      experiment_name: 'breast-cancer',
      dataset: { name: 'breast_cancer' },
      target: 'target',
      algorithm,
      register_as: 'breast-cancer',
    });
    expect(sub.status === 202, `submit ${algorithm}`, sub.json);
    const done = await waitForJob(sub.json.job_id);
    expect(done.status === 'succeeded', `${algorithm} succeeded in ${Math.round(performance.now() - t0)} ms: accuracy ${done.metrics?.accuracy}`, done);
    results[algorithm] = done;
  }
  // linear_regression is a regression algorithm: train it on the same file as a regression of a numeric column.
  const lin = await call('POST', '/train', { experiment_name: 'breast-cancer', dataset: { name: 'breast_cancer' }, target: 'mean radius', task: 'regression', algorithm: 'linear_regression' });
  expect(lin.status === 202, 'submit linear_regression (regression of mean radius)', lin.json);
  const linDone = await waitForJob(lin.json.job_id);
  expect(linDone.status === 'succeeded', `linear_regression succeeded: r2 ${linDone.metrics?.r2}`, linDone);

  const runs = await call('GET', '/experiments/breast-cancer/runs?order_by=' + encodeURIComponent('metrics.accuracy DESC'));
  expect(runs.status === 200 && runs.json.runs?.length === 5, `five runs listed under /experiments/breast-cancer (got ${runs.json.runs?.length})`, Object.keys(runs.json));
  const best = runs.json.runs[0];
  expect(best.metrics?.accuracy !== undefined || best.data !== undefined, 'runs carry metrics and params', best);

  const bestVersion = results['gradient_boosting'].model.version;
  const promote = await call('POST', '/models/transition', { name: 'breast-cancer', version: bestVersion, stage: 'Production', archive_existing_versions: true });
  expect(promote.status === 200, `promote version ${bestVersion} to Production`, promote.json);

  const row = Object.fromEntries(
    readFileSync(path.join(datasets, 'breast_cancer.csv'), 'utf8')
      .split('\n')[0]!
      .split(',')
      .filter((c) => c !== 'target')
      .map((c, i) => [c.replace(/^"|"$/g, ''), Number(readFileSync(path.join(datasets, 'breast_cancer.csv'), 'utf8').split('\n')[1]!.split(',')[i])]),
  );
  let pred = { status: 0, json: {} as any };
  for (let i = 0; i < 50; i++) {
    pred = await call('POST', '/predict', row);
    if (pred.status === 200 && pred.json.model_version === String(bestVersion)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(pred.status === 200, `/predict answers from the Production version: ${JSON.stringify(pred.json).slice(0, 200)}`, pred.json);

  if (process.argv.includes('--no-load')) process.exit(0);

  // Latency of /health and /predict while gradient boosting trains on California housing.
  const cal = await call('POST', '/datasets/california', readFileSync(path.join(datasets, 'california_housing.csv')), 'text/csv');
  expect(cal.status === 201, 'upload california_housing.csv', cal.json);
  const job = await call('POST', '/train', { dataset: { name: 'california' }, target: 'median_house_value', algorithm: 'gradient_boosting', params: { max_iter: 300, early_stopping: false } });
  expect(job.status === 202, 'submit gradient boosting on California housing', job.json);
  const health: number[] = [];
  const predict: number[] = [];
  let running = true;
  const started = performance.now();
  const finished = waitForJob(job.json.job_id).then((j) => {
    running = false;
    return j;
  });
  while (running) {
    let t = performance.now();
    await fetch(`${base}/health`).then((r) => r.text());
    health.push(performance.now() - t);
    t = performance.now();
    await fetch(`${base}/predict`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(row) }).then((r) => r.text());
    predict.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 10));
  }
  const trained = await finished;
  health.sort((a, b) => a - b);
  predict.sort((a, b) => a - b);
  console.log(
    `while training (${Math.round(performance.now() - started)} ms, job ${trained.status}, r2 ${trained.metrics?.r2}): ` +
      `/health p50 ${percentile(health, 50).toFixed(2)} ms p99 ${percentile(health, 99).toFixed(2)} ms max ${health.at(-1)!.toFixed(2)} ms (n=${health.length}); ` +
      `/predict p50 ${percentile(predict, 50).toFixed(2)} ms p99 ${percentile(predict, 99).toFixed(2)} ms max ${predict.at(-1)!.toFixed(2)} ms (n=${predict.length})`,
  );
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}
