/**
 * Training at scale over HTTP (issue 15): scikit-learn's default random forest (100 fully grown
 * trees) on California housing, trained, exported, registered and served by the compiled server,
 * with scikit-learn fitting the same forest on the same split in the same run.
 *
 *   npm run build && node --import tsx bench/train-at-scale.ts [--jobs 10] [--allocator glibc|tuned|jemalloc]
 *     [--dataset FILE --target COL]
 *
 * Reports: the server's RSS (VmRSS from /proc every 100 ms) idle, at its peak during the job and
 * after it, and after each of `--jobs` jobs in a row; fit / export+check / register times from the
 * job's log; /predict p50/p99 (wrk, on another model) while the job runs; and for the trained
 * forest: load time and single-row latency over HTTP next to onnxruntime-node's own figures for
 * the same file in this process. scikit-learn's side (Debian's /usr/bin/python3 with
 * python3-sklearn; PYTHON overrides) gives fit time, R2 and its process's peak RSS (ru_maxrss).
 * The server runs with BODY_LIMIT_BYTES=2147483647 because the registry still applies the HTTP body
 * limit to models trained inside the server.
 *
 * `--allocator`: onnxruntime builds a tree ensemble's kernel from many small heap blocks (a few
 * hundred bytes per node while loading), and glibc's per-thread arenas keep them after the session
 * is released, so RSS after a job depends on the C allocator: `glibc` (default: as deployed today),
 * `tuned` (MALLOC_ARENA_MAX=2, MALLOC_TRIM_THRESHOLD_=65536) or `jemalloc` (LD_PRELOAD of Debian's
 * libjemalloc2).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { trainTestSplit } from '../src/ml/split.ts';
import { startCompiledServer } from './compiled-server.ts';
import { runWrk, writeCyclingBodiesScript, type WrkResult } from './wrk.ts';

const API_KEY = 'scale-bench-key-0123456789abcdef';
const PORT = 8611;
const BASE = `http://127.0.0.1:${PORT}`;
const datasetsDir = path.resolve(import.meta.dirname, '../../shared/datasets');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}
const JOBS = Number(arg('jobs', '10'));
const DATASET = arg('dataset', path.join(datasetsDir, 'california_housing_sklearn_layout.csv'));
const TARGET = arg('target', 'MedHouseVal');
const ALLOCATOR = arg('allocator', 'glibc');
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const ALLOCATOR_ENV: Record<string, string> =
  ALLOCATOR === 'jemalloc' ? { LD_PRELOAD: JEMALLOC } : ALLOCATOR === 'tuned' ? { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '65536' } : {};
if (ALLOCATOR === 'jemalloc' && !existsSync(JEMALLOC)) throw new Error(`${JEMALLOC} is missing (apt-get install libjemalloc2)`);
const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

const mib = (kb: number): string => (kb / 1024).toFixed(0);

/** Samples a process's VmRSS (kB) every 100 ms. */
class RssSampler {
  peak = 0;
  last = 0;
  private timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 100);
  }
  sample(): number {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      this.last = Number(m?.[1] ?? 0);
      if (this.last > this.peak) this.peak = this.last;
    } catch {
      // The process is gone.
    }
    return this.last;
  }
  resetPeak(): void {
    this.peak = this.sample();
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

async function call(method: string, url: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> {
  const r = await fetch(`${BASE}${url}`, {
    method,
    headers: { 'x-api-key': API_KEY, ...(body === undefined ? {} : { 'content-type': contentType }) },
    body: body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body),
  });
  const text = await r.text();
  try {
    return { status: r.status, json: JSON.parse(text) };
  } catch {
    return { status: r.status, json: text };
  }
}

async function waitForJob(jobId: string, onPoll?: (s: any) => void): Promise<any> {
  for (;;) {
    const s = await call('GET', `/train/status/${jobId}`);
    onPoll?.(s.json);
    if (['succeeded', 'failed', 'cancelled'].includes(s.json.status)) return s.json;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Seconds between the first log lines matching `a` and `b`. */
function between(logs: { at: number; line: string }[], a: RegExp, b: RegExp): number {
  const ta = logs.find((l) => a.test(l.line))?.at;
  const tb = logs.find((l) => b.test(l.line))?.at;
  return ta === undefined || tb === undefined ? Number.NaN : (tb - ta) / 1000;
}

function findFile(dir: string, name: string): string | undefined {
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile() && e.name === name) return path.join(e.parentPath, e.name);
  return undefined;
}

/** scikit-learn's default forest on the server's split: fit seconds, R2, peak RSS (MiB). */
function sklearnSide(csv: string, tmp: string): { fit: number; r2: number; rssMiB: number; nodes: number } | null {
  const lines = csv.trim().split(/\r?\n/);
  const header = lines[0]!.split(',');
  const ti = header.indexOf(TARGET);
  const rows = lines.slice(1).map((l) => l.split(',').map(Number)).filter((r) => !Number.isNaN(r[ti]!));
  // The pipeline's split: 20 % hold-out, seed 42, over the rows that have a target.
  const split = trainTestSplit(rows.length, { testSize: 0.2, seed: 42 });
  const dump = (idx: Int32Array, file: string): void => {
    const out = new Float64Array(idx.length * header.length);
    idx.forEach((r, i) => {
      const row = rows[r]!;
      let c = 0;
      for (let j = 0; j < header.length; j++) if (j !== ti) out[i * header.length + c++] = row[j]!;
      out[i * header.length + c] = row[ti]!;
    });
    writeFileSync(file, out);
  };
  dump(split.train, path.join(tmp, 'train.f64'));
  dump(split.test, path.join(tmp, 'test.f64'));
  const script = `
import numpy as np, resource, time, sys
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
w = ${header.length}
tr = np.fromfile(sys.argv[1]).reshape(-1, w); te = np.fromfile(sys.argv[2]).reshape(-1, w)
m = RandomForestRegressor(n_jobs=2, random_state=0)
t0 = time.perf_counter(); m.fit(tr[:, :-1], tr[:, -1]); fit = time.perf_counter() - t0
r2 = r2_score(te[:, -1], m.predict(te[:, :-1]))
nodes = sum(e.tree_.node_count for e in m.estimators_)
print(fit, r2, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, nodes)
`;
  const res = spawnSync(PYTHON, ['-c', script, path.join(tmp, 'train.f64'), path.join(tmp, 'test.f64')], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
  if (res.status !== 0) {
    process.stderr.write(`scikit-learn side failed: ${res.stderr}\n`);
    return null;
  }
  const [fit, r2, rss, nodes] = res.stdout.trim().split(/\s+/).map(Number);
  return { fit: fit!, r2: r2!, rssMiB: rss! / 1024, nodes: nodes! };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mp-scale-'));
  const dataDir = path.join(tmp, 'data');
  const csv = readFileSync(DATASET, 'utf8');
  const featureNames = csv.slice(0, csv.indexOf('\n')).trim().split(',').filter((c) => c !== TARGET);
  console.log(`dataset ${path.basename(DATASET)}: ${csv.trim().split('\n').length - 1} rows, ${featureNames.length} features; cores ${os.availableParallelism()}; allocator ${ALLOCATOR}`);

  const sk = sklearnSide(csv, tmp);
  if (sk) console.log(`scikit-learn RandomForestRegressor(n_jobs=2): fit ${sk.fit.toFixed(2)} s, R2 ${sk.r2.toFixed(4)}, peak RSS ${sk.rssMiB.toFixed(0)} MiB, ${sk.nodes} nodes`);

  const server: ChildProcess = startCompiledServer({
    API_PORT: String(PORT),
    API_KEY,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    MODEL_NAME: 'scale-probe',
    BODY_LIMIT_BYTES: '2147483647',
    ...ALLOCATOR_ENV,
  });
  const children: ChildProcess[] = [server];
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${BASE}/health`)).ok) break;
      } catch {
        if (i > 600) throw new Error('server did not start');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const rss = new RssSampler(server.pid!);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rss.sample();

    const up = await call('POST', '/datasets/scale', csv, 'text/csv');
    if (up.status !== 201) throw new Error(`upload failed: ${JSON.stringify(up.json)}`);
    // A small model in Production that /predict hits while the forest trains.
    const probe = await call('POST', '/train', {
      dataset: { name: 'scale' },
      target: TARGET,
      algorithm: 'gradient_boosting',
      params: { max_iter: 20 },
      register_as: 'scale-probe',
      promote_to: 'Production',
    });
    const probeDone = await waitForJob(probe.json.job_id);
    if (probeDone.status !== 'succeeded') throw new Error(`probe model failed: ${JSON.stringify(probeDone)}`);
    const bodies = path.join(tmp, 'bodies.txt');
    const rowsForBodies: string[] = [];
    for (let i = 0; i < 5000; i++) rowsForBodies.push(JSON.stringify({ features: featureNames.map((_, j) => Number((Math.sin(i * 7.3 + j) * 3 + 3).toFixed(4))) }));
    writeFileSync(bodies, `${rowsForBodies.join('\n')}\n`);
    const wrkScript = path.join(tmp, 'predict.lua');
    writeCyclingBodiesScript(wrkScript, { apiKey: API_KEY, urlPath: '/predict' }, bodies);
    for (let i = 0; i < 100; i++) if ((await call('POST', '/predict', JSON.parse(rowsForBodies[0]!))).status === 200) break;
    await new Promise((r) => setTimeout(r, 1000));
    const beforeJobs = rss.sample();
    console.log(`server RSS: idle ${mib(idle)} MiB, with the probe model loaded ${mib(beforeJobs)} MiB`);

    const afterEach: number[] = [];
    // Job 1 trains under the /predict load, so fit times are compared on the jobs after it.
    const quietFits: number[] = [];
    let first: { fit: number; exportCheck: number; register: number; total: number; peak: number; r2: number; p99s: number[]; p50s: number[]; stages: string[] } | undefined;
    for (let j = 0; j < JOBS; j++) {
      rss.resetPeak();
      const started = performance.now();
      const sub = await call('POST', '/train', {
        dataset: { name: 'scale' },
        target: TARGET,
        algorithm: 'random_forest',
        register_as: 'scale-rf',
        ...(j === 0 ? { promote_to: 'Production' } : {}),
      });
      if (sub.status !== 202) throw new Error(`submit failed: ${JSON.stringify(sub.json)}`);
      let running = true;
      const stages: string[] = [];
      const finished = waitForJob(sub.json.job_id, (s) => {
        const st = `${s.progress?.stage ?? s.status}`;
        if (stages.at(-1) !== st) stages.push(st);
      }).then((s) => {
        running = false;
        return s;
      });
      const windows: WrkResult[] = [];
      if (j === 0) {
        while (running) windows.push(await runWrk(`${BASE}/predict`, wrkScript, 4, 3));
      }
      const done = await finished;
      const total = (performance.now() - started) / 1000;
      if (done.status !== 'succeeded') throw new Error(`job ${j + 1} ${done.status}: ${done.error}`);
      const logs = ((await call('GET', `/train/${sub.json.job_id}/logs`)).json.lines as { at: string; line: string }[]).map((l) => ({ at: Date.parse(l.at), line: l.line }));
      const fit = Number(/fitted random_forest in ([\d.]+) s/.exec(logs.map((l) => l.line).join('\n'))?.[1] ?? 'NaN');
      const exportCheck = between(logs, /^fitted /, /^ONNX export checked/);
      const register = between(logs, /^ONNX export checked/, /^registered /);
      await new Promise((r) => setTimeout(r, 2000));
      afterEach.push(rss.sample());
      if (j === 0) {
        first = {
          fit,
          exportCheck,
          register,
          total,
          peak: rss.peak,
          r2: done.metrics?.r2,
          p99s: windows.map((w) => w.p99),
          p50s: windows.map((w) => w.p50),
          stages,
        };
        console.log(
          `job 1: total ${total.toFixed(1)} s, fit ${fit.toFixed(2)} s, fit->export checked ${exportCheck.toFixed(2)} s (evaluate, log, export, onnxruntime check), ` +
            `check->registered ${register.toFixed(2)} s, R2 ${Number(done.metrics?.r2).toFixed(4)}; stages seen: ${stages.join(' > ')}`,
        );
        console.log(`job 1: server peak RSS ${mib(rss.peak)} MiB, ${mib(afterEach[0]!)} MiB 2 s after the job`);
        if (windows.length > 0) {
          console.log(
            `/predict during job 1 (wrk, 4 connections, ${windows.length} windows of 3 s): p50 ${percentile([...first.p50s].sort((a, b) => a - b), 50).toFixed(2)} ms, ` +
              `p99 worst window ${Math.max(...first.p99s).toFixed(2)} ms, median window ${percentile([...first.p99s].sort((a, b) => a - b), 50).toFixed(2)} ms, ` +
              `${windows.reduce((s, w) => s + w.requests, 0)} requests, ${windows.reduce((s, w) => s + w.non2xx + w.errors, 0)} errors/non-2xx`,
          );
        }
      } else {
        quietFits.push(fit);
        console.log(`job ${j + 1}: total ${total.toFixed(1)} s, fit ${fit.toFixed(2)} s, peak ${mib(rss.peak)} MiB, after ${mib(afterEach[j]!)} MiB`);
      }
    }
    console.log(`RSS after each of ${JOBS} jobs (MiB): ${afterEach.map(mib).join(', ')}`);

    // Serving the trained forest: load time and single-row latency over HTTP and in onnxruntime.
    const modelFile = findFile(path.join(dataDir, 'artifacts', 'models', 'scale-rf', '1'), 'model.onnx');
    if (modelFile === undefined) throw new Error('model.onnx of scale-rf version 1 not found');
    const bytes = readFileSync(modelFile);
    const row = JSON.parse(rowsForBodies[1]!) as { features: number[] };
    let t = performance.now();
    const firstReply = await call('POST', '/predict?model=scale-rf&stage=Production', row);
    const httpLoad = performance.now() - t;
    if (firstReply.status !== 200) throw new Error(`predict on scale-rf failed: ${JSON.stringify(firstReply.json)}`);
    const http: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const body = JSON.parse(rowsForBodies[(i * 13) % rowsForBodies.length]!) as unknown;
      t = performance.now();
      const r = await fetch(`${BASE}/predict?model=scale-rf&stage=Production`, { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      await r.text();
      http.push(performance.now() - t);
    }
    http.sort((a, b) => a - b);
    t = performance.now();
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const ortLoad = performance.now() - t;
    const direct: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const x = Float32Array.from((JSON.parse(rowsForBodies[(i * 13) % rowsForBodies.length]!) as { features: number[] }).features);
      t = performance.now();
      await session.run({ input: new ort.Tensor('float32', x, [1, x.length]) });
      direct.push(performance.now() - t);
    }
    direct.sort((a, b) => a - b);
    await session.release();
    console.log(`forest file: ${(bytes.length / 1048576).toFixed(1)} MiB`);
    console.log(`load: first HTTP /predict on it ${httpLoad.toFixed(0)} ms (load, warm-up, answer); onnxruntime-node InferenceSession.create ${ortLoad.toFixed(0)} ms`);
    console.log(
      `single row: HTTP p50 ${percentile(http, 50).toFixed(2)} ms p99 ${percentile(http, 99).toFixed(2)} ms (distinct rows, cache misses); ` +
        `onnxruntime-node session.run p50 ${percentile(direct, 50).toFixed(3)} ms p99 ${percentile(direct, 99).toFixed(3)} ms`,
    );
    if (sk && first) {
      const fit = quietFits.length > 0 ? [...quietFits].sort((a, b) => a - b)[Math.floor(quietFits.length / 2)]! : first.fit;
      console.log(
        `vs scikit-learn: fit (median of jobs without /predict load) ${fit.toFixed(2)} s / ${sk.fit.toFixed(2)} s = ${(fit / sk.fit).toFixed(2)}, R2 ${Number(first.r2).toFixed(4)} / ${sk.r2.toFixed(4)}, ` +
          `peak RSS ${mib(first.peak)} / ${sk.rssMiB.toFixed(0)} MiB = ${(first.peak / 1024 / sk.rssMiB).toFixed(2)}x`,
      );
    }
    rss.stop();
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(tmp, { recursive: true, force: true });
  }
}

// wrk is used for the /predict load during the first job.
if (spawnSync('wrk', ['--version']).error !== undefined) {
  process.stderr.write('wrk is needed (apt-get install wrk)\n');
  process.exit(1);
}
await main();
