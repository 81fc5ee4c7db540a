/**
 * The MLflow surface's speed on the embedded default (SQLite, local artifacts), over real HTTP
 * against the compiled server, as an MLflow client drives it:
 *   1. 100,000 metrics logged through 100 `runs/log-batch` calls of 1,000 (target < 2 s);
 *   2. runs created per second through `runs/create`, one client and 8 concurrent (target > 500/s);
 *   3. a filtered, ordered `runs/search` over 10,000 runs (target < 20 ms).
 * The figures for the real MLflow 2.12 tracking server (SQLite backend, gunicorn, 4
 * workers), measured elsewhere, are printed beside them: 13-33 s, about 13 runs/s, 174-401 ms.
 *
 *   node --import tsx bench/mlflow.ts [--runs 10000]
 *
 * Starts its own server on a free port with a fresh data directory (building dist/ when stale).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ROOT, SERVE_NODE_FLAGS, ensureCompiledBuild } from './compiled-server.ts';
import { freePort } from './common.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10000' }, searches: { type: 'string', default: '50' } } });
const SEARCH_RUNS = Number(values.runs);
const SEARCHES = Number(values.searches);
const API_KEY = 'bench-mlflow-admin-key-0123456789';

const port = await freePort();
const base = `http://127.0.0.1:${port}/api/2.0/mlflow`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-bench-mlflow-'));
const main = ensureCompiledBuild();
// The embedded default: no database, Redis or S3 settings inherited from the shell.
const env: Record<string, string | undefined> = { ...process.env, NODE_ENV: 'production', API_KEY, LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '0' };
for (const name of ['DATABASE_URL', 'REDIS_URL', 'REDIS_HOST', 'ARTIFACT_ROOT']) delete env[name];
const server = spawn(process.execPath, [...SERVE_NODE_FLAGS, main, 'serve', '--port', String(port), '--data-dir', dataDir], {
  cwd: ROOT,
  env,
  stdio: ['ignore', 'inherit', 'inherit'],
});

/** One MLflow call as the Python client makes it: JSON body, Bearer token. */
async function post(endpoint: string, message: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${base}/${endpoint}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(message),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${endpoint}: ${r.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function waitReady(): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/ready`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the server did not become ready in 180 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * CPU seconds the server process has used (user + system, from /proc): on a shared machine the
 * wall time also counts waiting for a core, so each figure is reported with the server's CPU.
 */
function serverCpuSeconds(): number {
  try {
    const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

const runIdOf = (created: Record<string, unknown>): string => ((created['run'] as { info: { run_id: string } }).info.run_id);
const ms = (x: number): string => `${x.toFixed(1)} ms`;
const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Runs `total` creations with `concurrency` clients; returns runs per second. */
async function createRuns(experimentId: string, total: number, concurrency: number, onRun?: (id: string, i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) {
        const id = runIdOf(await post('runs/create', { experiment_id: experimentId, start_time: Date.now(), tags: [{ key: 'bench', value: 'yes' }] }));
        if (onRun !== undefined) await onRun(id, i);
      }
    }),
  );
  return total / ((performance.now() - start) / 1000);
}

try {
  await waitReady();
  const rows: [string, string, string, string][] = [];

  // 1. 100,000 metrics in 100 log-batch calls.
  const batchExp = (await post('experiments/create', { name: 'bench-log-batch' }))['experiment_id'] as string;
  const runId = runIdOf(await post('runs/create', { experiment_id: batchExp }));
  const t0 = Date.now();
  const batches = Array.from({ length: 100 }, (_, b) => ({
    run_id: runId,
    metrics: Array.from({ length: 1000 }, (_, i) => ({ key: `m${i % 10}`, value: Math.random(), timestamp: t0 + b * 1000 + i, step: b * 100 + Math.floor(i / 10) })),
  }));
  const logStart = performance.now();
  const logCpu = serverCpuSeconds();
  for (const batch of batches) await post('runs/log-batch', batch);
  const logMs = performance.now() - logStart;
  rows.push(['100,000 metrics, 100 log-batch calls', `${(logMs / 1000).toFixed(2)} s (server CPU ${(serverCpuSeconds() - logCpu).toFixed(2)} s)`, '< 2 s', '13-33 s']);

  // 2. Runs created per second.
  const createExp = (await post('experiments/create', { name: 'bench-create' }))['experiment_id'] as string;
  let cpu = serverCpuSeconds();
  const sequential = await createRuns(createExp, 2000, 1);
  const sequentialCpu = (serverCpuSeconds() - cpu) / 2000;
  cpu = serverCpuSeconds();
  const concurrent = await createRuns(createExp, 4000, 8);
  const concurrentCpu = (serverCpuSeconds() - cpu) / 4000;
  rows.push(['runs/create, 1 client', `${sequential.toFixed(0)} runs/s (server CPU ${(sequentialCpu * 1000).toFixed(2)} ms/run = ${(1 / sequentialCpu).toFixed(0)} runs/CPU-s)`, '> 500/s', '~13 runs/s']);
  rows.push(['runs/create, 8 concurrent clients', `${concurrent.toFixed(0)} runs/s (server CPU ${(concurrentCpu * 1000).toFixed(2)} ms/run = ${(1 / concurrentCpu).toFixed(0)} runs/CPU-s)`, '> 500/s', '~13 runs/s']);

  // 3. A filtered, ordered search over 10,000 runs, each with two metrics and a param.
  const searchExp = (await post('experiments/create', { name: 'bench-search' }))['experiment_id'] as string;
  const fillStart = performance.now();
  await createRuns(searchExp, SEARCH_RUNS, 8, async (id, i) => {
    await post('runs/log-batch', {
      run_id: id,
      metrics: [
        { key: 'accuracy', value: (i * 7919) % 10_000 / 10_000, timestamp: t0, step: 0 },
        { key: 'loss', value: ((i * 104_729) % 10_000) / 10_000, timestamp: t0, step: 0 },
      ],
      params: [{ key: 'max_depth', value: String(2 + (i % 8)) }],
    });
  });
  const fillS = (performance.now() - fillStart) / 1000;
  const search = { experiment_ids: [searchExp], filter: "metrics.accuracy > 0.5 and params.max_depth = '8'", order_by: ['metrics.accuracy DESC'], max_results: 100 };
  const first = await post('runs/search', search);
  const found = (first['runs'] as unknown[] | undefined)?.length ?? 0;
  const times: number[] = [];
  const searchCpu = serverCpuSeconds();
  for (let i = 0; i < SEARCHES; i++) {
    const s = performance.now();
    await post('runs/search', search);
    times.push(performance.now() - s);
  }
  const cpuPerSearch = ((serverCpuSeconds() - searchCpu) / SEARCHES) * 1000;
  times.sort((a, b) => a - b);
  rows.push([`runs/search over ${SEARCH_RUNS} runs (filter + order, ${found} returned), median`, `${ms(quantile(times, 0.5))} (server CPU ${ms(cpuPerSearch)} per search)`, '< 20 ms', '174-401 ms']);
  rows.push([`  p95 of ${SEARCHES}`, ms(quantile(times, 0.95)), '', '']);

  console.log(`\nMLflow surface, embedded default (SQLite), compiled server, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(1)} (${SEARCH_RUNS} runs filled in ${fillS.toFixed(1)} s)`);
  console.log(['measure', 'modelplane', 'target', 'MLflow 2.12 (issue)'].join(' | '));
  for (const r of rows) console.log(r.join(' | '));
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}
