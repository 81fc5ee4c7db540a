/**
 * Training at scale over HTTP (issue 15): a training job run by the compiled server (upload,
 * train, export, onnxruntime check, register, serve), with scikit-learn fitting the same model on
 * the same split in the same run. By default scikit-learn's default random forest (100 fully grown
 * trees) on California housing; `--synthetic N` trains on a seeded N x `--features` regression
 * instead (the issue's 1,000,000 x 20 case).
 *
 *   npm run build && node --import tsx bench/train-at-scale.ts [--jobs 10] [--allocator trim|arena2-trim|glibc|jemalloc]
 *     [--dataset FILE --target COL | --synthetic ROWS [--features 20]]
 *     [--algorithm random_forest|gradient_boosting] [--params JSON]
 *
 * Reports: the server's RSS (VmRSS from /proc every 100 ms, with its training worker processes) idle, while the dataset uploads, at its
 * peak during the job (and the peak within each stage the job reported) and 2 s after it, and after
 * each of `--jobs` jobs in a row; fit / export+check / register times from the job's log; /predict
 * p50/p99 (wrk, on a small probe model) while the first job runs; and for the trained model: the
 * file size, what one onnxruntime session of it adds to this process's RSS, load time and
 * single-row latency over HTTP next to onnxruntime-node's own figures for the same file.
 * scikit-learn's side (Debian's /usr/bin/python3 with python3-sklearn; PYTHON overrides) gives
 * fit time, R2 and its process's peak RSS (ru_maxrss): `RandomForestRegressor(n_jobs=2)` or
 * `HistGradientBoostingRegressor` (which `gradient_boosting` follows), with `--params` passed to
 * both sides. The server runs with its default limits: a trained model registers from the run's
 * checked file (`registerChecked`), which no HTTP body limit applies to, and a 1,000,000 x 20 CSV
 * at four decimals (about 170 MB) is within the default DATASET_MAX_BYTES (200 MiB).
 *
 * `--allocator`: onnxruntime builds a tree ensemble's kernel from many small heap blocks, and
 * glibc keeps freed blocks in its arenas, so RSS after a job depends on the C allocator: `trim`
 * (default, as deployed: MALLOC_TRIM_THRESHOLD_=65536), `arena2-trim` (the same plus
 * MALLOC_ARENA_MAX=2), `glibc` (glibc's defaults) or `jemalloc` (LD_PRELOAD of Debian's
 * libjemalloc2). Both variables are removed from the environment the server inherits, so each
 * choice runs with exactly its own settings.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openAsBlob, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { trainTestSplit } from '../src/ml/split.ts';
import { createRng } from '../src/util/random.ts';
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
const SYNTHETIC_ROWS = Number(arg('synthetic', '0'));
const SYNTHETIC_FEATURES = Number(arg('features', '20'));
const DATASET = arg('dataset', path.join(datasetsDir, 'california_housing_sklearn_layout.csv'));
const TARGET = SYNTHETIC_ROWS > 0 ? 'target' : arg('target', 'MedHouseVal');
const ALGORITHM = arg('algorithm', 'random_forest');
const PARAMS = JSON.parse(arg('params', '{}')) as Record<string, unknown>;
if (ALGORITHM !== 'random_forest' && ALGORITHM !== 'gradient_boosting') throw new Error('--algorithm is random_forest or gradient_boosting');
const ALLOCATOR = arg('allocator', 'trim');
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const ALLOCATORS: Record<string, Record<string, string>> = {
  trim: { MALLOC_TRIM_THRESHOLD_: '65536' },
  'arena2-trim': { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '65536' },
  glibc: {},
  jemalloc: { LD_PRELOAD: JEMALLOC },
};
const ALLOCATOR_ENV = ALLOCATORS[ALLOCATOR];
if (ALLOCATOR_ENV === undefined) throw new Error(`--allocator is one of ${Object.keys(ALLOCATORS).join(', ')}`);
if (ALLOCATOR === 'jemalloc' && !existsSync(JEMALLOC)) throw new Error(`${JEMALLOC} is missing (apt-get install libjemalloc2)`);
// The server inherits this process's environment.
for (const name of ['MALLOC_ARENA_MAX', 'MALLOC_TRIM_THRESHOLD_', 'LD_PRELOAD']) delete process.env[name];
const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const MODEL = 'scale-model';

const mib = (kb: number): string => (kb / 1024).toFixed(0);

/** The process and every process below it (the server's training worker processes). */
function processTree(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/PID/stat is the parent; the command name before it may hold spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(parents.get(out[i]!) ?? []));
  return out;
}

/**
 * Samples the VmRSS (kB) of a process and its descendants (the server runs training jobs in child
 * processes), summed, every 100 ms; also the peak within each labelled stretch (a job's stage).
 * The sum counts pages the processes share (the node binary's, onnxruntime's library) once per
 * process, so it is an upper bound of what they hold together; `pssPeak` is the peak of their
 * summed PSS (shared pages divided among the processes that map them), what they hold together.
 */
class RssSampler {
  peak = 0;
  pssPeak = 0;
  last = 0;
  /** Label the samples are counted under now, and the peak seen under each label. */
  stage = '';
  readonly stagePeaks = new Map<string, number>();
  private timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 100);
  }
  sample(): number {
    try {
      let total = 0;
      let pss = 0;
      const tree = processTree(this.pid);
      for (const pid of tree) {
        try {
          total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
          // Only while there is more than one process: PSS is slower to read, and alone it equals RSS
          // but for pages shared with unrelated processes.
          if (tree.length > 1) pss += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
        } catch {
          // A worker that ended meanwhile.
        }
      }
      this.last = total;
      if (this.last > this.peak) this.peak = this.last;
      if ((tree.length > 1 ? pss : total) > this.pssPeak) this.pssPeak = tree.length > 1 ? pss : total;
      if (this.stage !== '' && this.last > (this.stagePeaks.get(this.stage) ?? 0)) this.stagePeaks.set(this.stage, this.last);
    } catch {
      // The process is gone.
    }
    return this.last;
  }
  resetPeak(): void {
    this.stage = '';
    this.stagePeaks.clear();
    this.pssPeak = 0;
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
    body: body === undefined ? undefined : typeof body === 'string' || body instanceof Blob ? body : JSON.stringify(body),
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

/** The benchmark's data: features row-major, the target apart, and the CSV the server is sent. */
interface BenchData {
  readonly name: string;
  readonly featureNames: string[];
  readonly rows: number;
  readonly x: Float64Array;
  readonly y: Float64Array;
  readonly csvFile: string;
}

/** A numeric CSV file with a header; rows without a target are left out. */
function csvData(file: string): BenchData {
  const lines = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const header = lines[0]!.split(',');
  const ti = header.indexOf(TARGET);
  if (ti < 0) throw new Error(`${file} has no column ${TARGET}`);
  const parsed = lines.slice(1).map((l) => l.split(',').map(Number)).filter((r) => !Number.isNaN(r[ti]!));
  const p = header.length - 1;
  const x = new Float64Array(parsed.length * p);
  const y = new Float64Array(parsed.length);
  parsed.forEach((r, i) => {
    let c = 0;
    for (let j = 0; j < header.length; j++) if (j !== ti) x[i * p + c++] = r[j]!;
    y[i] = r[ti]!;
  });
  return { name: path.basename(file), featureNames: header.filter((h) => h !== TARGET), rows: parsed.length, x, y, csvFile: file };
}

/**
 * Seeded n x p regression, the same recipe as bench/train-vs-sklearn.ts: standard normal features,
 * target = 3 x0 - 2 x1 + x2 x3 + 2 [x4 > 0.5] + N(0, 1). Values are rounded to four decimals, so the
 * CSV the server reads holds exactly the numbers scikit-learn gets.
 */
function syntheticData(n: number, p: number, tmp: string): BenchData {
  if (p < 5) throw new Error('--features must be at least 5');
  const rng = createRng(2024);
  const x = new Float64Array(n * p);
  const y = new Float64Array(n);
  const round = (v: number): number => Math.round(v * 1e4) / 1e4;
  for (let i = 0; i < n; i++) {
    const o = i * p;
    for (let j = 0; j < p; j++) x[o + j] = round(rng.normal());
    y[i] = round(3 * x[o]! - 2 * x[o + 1]! + x[o + 2]! * x[o + 3]! + (x[o + 4]! > 0.5 ? 2 : 0) + rng.normal());
  }
  const featureNames = Array.from({ length: p }, (_, j) => `x${j}`);
  const csvFile = path.join(tmp, 'synthetic.csv');
  const fd = openSync(csvFile, 'w');
  try {
    writeSync(fd, `${[...featureNames, TARGET].join(',')}\n`);
    const chunk: string[] = [];
    for (let i = 0; i < n; i++) {
      const cells: string[] = [];
      for (let j = 0; j < p; j++) cells.push(x[i * p + j]!.toFixed(4));
      cells.push(y[i]!.toFixed(4));
      chunk.push(cells.join(','));
      if (chunk.length === 10_000 || i === n - 1) {
        writeSync(fd, `${chunk.join('\n')}\n`);
        chunk.length = 0;
      }
    }
  } finally {
    closeSync(fd);
  }
  return { name: `synthetic ${n} x ${p}`, featureNames, rows: n, x, y, csvFile };
}

/** The first `n` rows as CSV text (the probe model's dataset). */
function headCsv(d: BenchData, n: number): string {
  const p = d.featureNames.length;
  const lines = [[...d.featureNames, TARGET].join(',')];
  for (let i = 0; i < Math.min(n, d.rows); i++) lines.push([...d.x.subarray(i * p, (i + 1) * p), d.y[i]!].join(','));
  return `${lines.join('\n')}\n`;
}

interface SklearnSide {
  readonly label: string;
  readonly fit: number;
  readonly r2: number;
  readonly rssMiB: number;
  readonly nodes: number;
}

/** scikit-learn's model on the server's split: fit seconds, R2, peak RSS (MiB), tree nodes. */
function sklearnSide(d: BenchData, tmp: string): SklearnSide | null {
  const p = d.featureNames.length;
  // The pipeline's split: 20 % hold-out, seed 42, over the rows that have a target.
  const split = trainTestSplit(d.rows, { testSize: 0.2, seed: 42 });
  const dump = (idx: Int32Array, file: string): void => {
    const out = new Float64Array(idx.length * (p + 1));
    idx.forEach((r, i) => {
      out.set(d.x.subarray(r * p, (r + 1) * p), i * (p + 1));
      out[i * (p + 1) + p] = d.y[r]!;
    });
    writeFileSync(file, out);
  };
  dump(split.train, path.join(tmp, 'train.f64'));
  dump(split.test, path.join(tmp, 'test.f64'));
  const script = `
import json, numpy as np, resource, time, sys
from sklearn.ensemble import RandomForestRegressor, HistGradientBoostingRegressor
from sklearn.metrics import r2_score
w = ${p + 1}
params = json.loads(sys.argv[4])
tr = np.fromfile(sys.argv[1]).reshape(-1, w); te = np.fromfile(sys.argv[2]).reshape(-1, w)
if sys.argv[3] == 'random_forest':
    m = RandomForestRegressor(n_jobs=2, random_state=0, **params)
else:
    m = HistGradientBoostingRegressor(random_state=0, **params)
t0 = time.perf_counter(); m.fit(tr[:, :-1], tr[:, -1]); fit = time.perf_counter() - t0
r2 = r2_score(te[:, -1], m.predict(te[:, :-1]))
if sys.argv[3] == 'random_forest':
    nodes = sum(e.tree_.node_count for e in m.estimators_)
else:
    nodes = sum(len(t.nodes) for it in m._predictors for t in it)
print(fit, r2, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, nodes)
`;
  const res = spawnSync(PYTHON, ['-c', script, path.join(tmp, 'train.f64'), path.join(tmp, 'test.f64'), ALGORITHM, JSON.stringify(PARAMS)], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '2' },
  });
  rmSync(path.join(tmp, 'train.f64'));
  rmSync(path.join(tmp, 'test.f64'));
  if (res.status !== 0) {
    process.stderr.write(`scikit-learn side failed: ${res.stderr}\n`);
    return null;
  }
  const [fit, r2, rss, nodes] = res.stdout.trim().split(/\s+/).map(Number);
  const label = ALGORITHM === 'random_forest' ? 'RandomForestRegressor(n_jobs=2)' : 'HistGradientBoostingRegressor (OMP_NUM_THREADS=2)';
  return { label, fit: fit!, r2: r2!, rssMiB: rss! / 1024, nodes: nodes! };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mp-scale-'));
  const dataDir = path.join(tmp, 'data');
  const data = SYNTHETIC_ROWS > 0 ? syntheticData(SYNTHETIC_ROWS, SYNTHETIC_FEATURES, tmp) : csvData(DATASET);
  const { featureNames } = data;
  console.log(
    `dataset ${data.name}: ${data.rows} rows, ${featureNames.length} features; ${ALGORITHM} ${JSON.stringify(PARAMS)}; ` +
      `cores ${os.availableParallelism()}; allocator ${ALLOCATOR}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  );

  const sk = sklearnSide(data, tmp);
  if (sk) console.log(`scikit-learn ${sk.label}: fit ${sk.fit.toFixed(2)} s, R2 ${sk.r2.toFixed(4)}, peak RSS ${sk.rssMiB.toFixed(0)} MiB, ${sk.nodes} nodes`);

  const server: ChildProcess = startCompiledServer({
    API_PORT: String(PORT),
    API_KEY,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    MODEL_NAME: 'scale-probe',
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

    // A small model in Production that /predict hits while the big one trains.
    const probeUp = await call('POST', '/datasets/scale-probe', headCsv(data, 5000), 'text/csv');
    if (probeUp.status !== 201) throw new Error(`probe upload failed: ${JSON.stringify(probeUp.json)}`);
    const probe = await call('POST', '/train', {
      dataset: { name: 'scale-probe' },
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
    await new Promise((r) => setTimeout(r, 2000));
    const beforeUpload = rss.sample();

    rss.resetPeak();
    let t = performance.now();
    const up = await call('POST', '/datasets/scale', await openAsBlob(data.csvFile), 'text/csv');
    if (up.status !== 201) throw new Error(`upload failed: ${JSON.stringify(up.json)}`);
    const uploadSeconds = (performance.now() - t) / 1000;
    const uploadPeak = rss.peak;
    await new Promise((r) => setTimeout(r, 2000));
    const beforeJobs = rss.sample();
    console.log(
      `server RSS: idle ${mib(idle)} MiB, with the probe model loaded ${mib(beforeUpload)} MiB; dataset upload ${uploadSeconds.toFixed(1)} s ` +
        `(peak ${mib(uploadPeak)} MiB), ${mib(beforeJobs)} MiB 2 s after it`,
    );

    const afterEach: number[] = [];
    // Job 1 trains under the /predict load, so fit times are compared on the jobs after it.
    const quietFits: number[] = [];
    let first: { fit: number; peak: number; pssPeak: number; r2: number } | undefined;
    for (let j = 0; j < JOBS; j++) {
      rss.resetPeak();
      const started = performance.now();
      const sub = await call('POST', '/train', {
        dataset: { name: 'scale' },
        target: TARGET,
        algorithm: ALGORITHM,
        params: PARAMS,
        register_as: MODEL,
        ...(j === 0 ? { promote_to: 'Production' } : {}),
      });
      if (sub.status !== 202) throw new Error(`submit failed: ${JSON.stringify(sub.json)}`);
      let running = true;
      const stages: string[] = [];
      const finished = waitForJob(sub.json.job_id, (s) => {
        const st = `${s.progress?.stage ?? s.status}`;
        rss.stage = st;
        if (stages.at(-1) !== st) stages.push(st);
      }).then((s) => {
        running = false;
        return s;
      });
      // Each wrk window with the stages the job went through while it ran.
      const windows: (WrkResult & { stages: string })[] = [];
      if (j === 0) {
        while (running) {
          const from = rss.stage;
          const w = await runWrk(`${BASE}/predict`, wrkScript, 4, 3);
          windows.push({ ...w, stages: from === rss.stage ? from : `${from}..${rss.stage}` });
        }
      }
      const done = await finished;
      const total = (performance.now() - started) / 1000;
      if (done.status !== 'succeeded') throw new Error(`job ${j + 1} ${done.status}: ${done.error}`);
      const logs = ((await call('GET', `/train/${sub.json.job_id}/logs?limit=1000`)).json.lines as { at: string; line: string }[]).map((l) => ({ at: Date.parse(l.at), line: l.line }));
      const text = logs.map((l) => l.line).join('\n');
      const fit = Number(new RegExp(`fitted ${ALGORITHM} in ([\\d.]+) s`).exec(text)?.[1] ?? 'NaN');
      const threads = /tree building on ([^\n]+)/.exec(text)?.[1];
      const exportCheck = between(logs, /^fitted /, /^ONNX export .*checked/);
      const register = between(logs, /^ONNX export .*checked/, /^registered /);
      const stagePeaks = [...rss.stagePeaks].map(([st, kb]) => `${st} ${mib(kb)}`).join(', ');
      rss.stage = '';
      await new Promise((r) => setTimeout(r, 2000));
      afterEach.push(rss.sample());
      if (j === 0) {
        first = { fit, peak: rss.peak, pssPeak: rss.pssPeak, r2: done.metrics?.r2 };
        console.log(
          `job 1: total ${total.toFixed(1)} s, fit ${fit.toFixed(2)} s${threads === undefined ? '' : ` (${threads})`}, ` +
            `fit->export checked ${exportCheck.toFixed(2)} s (evaluate, export, onnxruntime check), check->registered ${register.toFixed(2)} s (log artifacts, register), ` +
            `R2 ${Number(done.metrics?.r2).toFixed(4)}; stages seen: ${stages.join(' > ')}`,
        );
        console.log(`job 1: server peak RSS ${mib(rss.peak)} MiB (summed PSS ${mib(rss.pssPeak)} MiB), ${mib(afterEach[0]!)} MiB 2 s after the job; peak by stage (MiB): ${stagePeaks}`);
        if (windows.length > 0) {
          const p50s = windows.map((w) => w.p50).sort((a, b) => a - b);
          const p99s = windows.map((w) => w.p99).sort((a, b) => a - b);
          const worst = windows.reduce((a, b) => (b.p99 > a.p99 ? b : a));
          console.log(
            `/predict during job 1 (wrk, 4 connections, ${windows.length} windows of 3 s): p50 ${percentile(p50s, 50).toFixed(2)} ms (median window), ` +
              `p99 worst window ${worst.p99.toFixed(2)} ms (stage ${worst.stages}), median window ${percentile(p99s, 50).toFixed(2)} ms, ` +
              `${windows.reduce((s, w) => s + w.requests, 0)} requests, ${windows.reduce((s, w) => s + w.non2xx + w.errors, 0)} errors/non-2xx`,
          );
          console.log(`/predict p99 per window (ms, stage): ${windows.map((w) => `${w.p99.toFixed(1)} ${w.stages}`).join('; ')}`);
        }
      } else {
        quietFits.push(fit);
        console.log(`job ${j + 1}: total ${total.toFixed(1)} s, fit ${fit.toFixed(2)} s, peak ${mib(rss.peak)} MiB (PSS ${mib(rss.pssPeak)}), after ${mib(afterEach[j]!)} MiB; by stage: ${stagePeaks}`);
      }
    }
    console.log(`RSS after each of ${JOBS} jobs (MiB): ${afterEach.map(mib).join(', ')}`);

    // Serving the trained model: load time and single-row latency over HTTP and in onnxruntime.
    const artifact = await fetch(`${BASE}/models/${MODEL}/versions/1/artifact`, { headers: { 'x-api-key': API_KEY } });
    if (!artifact.ok) throw new Error(`GET /models/${MODEL}/versions/1/artifact: ${artifact.status} ${await artifact.text()}`);
    const bytes = new Uint8Array(await artifact.arrayBuffer());
    const row = JSON.parse(rowsForBodies[1]!) as { features: number[] };
    t = performance.now();
    const firstReply = await call('POST', `/predict?model=${MODEL}&stage=Production`, row);
    const httpLoad = performance.now() - t;
    if (firstReply.status !== 200) throw new Error(`predict on ${MODEL} failed: ${JSON.stringify(firstReply.json)}`);
    const http: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const body = JSON.parse(rowsForBodies[(i * 13) % rowsForBodies.length]!) as unknown;
      t = performance.now();
      const r = await fetch(`${BASE}/predict?model=${MODEL}&stage=Production`, { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      await r.text();
      http.push(performance.now() - t);
    }
    http.sort((a, b) => a - b);
    const rssBeforeSession = process.memoryUsage.rss();
    t = performance.now();
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const ortLoad = performance.now() - t;
    const sessionMiB = (process.memoryUsage.rss() - rssBeforeSession) / 1048576;
    const direct: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const x = Float32Array.from((JSON.parse(rowsForBodies[(i * 13) % rowsForBodies.length]!) as { features: number[] }).features);
      t = performance.now();
      await session.run({ input: new ort.Tensor('float32', x, [1, x.length]) });
      direct.push(performance.now() - t);
    }
    direct.sort((a, b) => a - b);
    await session.release();
    console.log(`model file: ${(bytes.length / 1048576).toFixed(1)} MiB; one onnxruntime session of it adds ${sessionMiB.toFixed(0)} MiB to this (bench) process's RSS`);
    console.log(`load: first HTTP /predict on it ${httpLoad.toFixed(0)} ms (load, warm-up, answer); onnxruntime-node InferenceSession.create ${ortLoad.toFixed(0)} ms`);
    console.log(
      `single row: HTTP p50 ${percentile(http, 50).toFixed(2)} ms p99 ${percentile(http, 99).toFixed(2)} ms (distinct rows, cache misses); ` +
        `onnxruntime-node session.run p50 ${percentile(direct, 50).toFixed(3)} ms p99 ${percentile(direct, 99).toFixed(3)} ms`,
    );
    if (sk && first) {
      const fit = quietFits.length > 0 ? [...quietFits].sort((a, b) => a - b)[Math.floor(quietFits.length / 2)]! : first.fit;
      console.log(
        `vs scikit-learn: fit (${quietFits.length > 0 ? 'median of jobs without /predict load' : 'job 1, under /predict load'}) ${fit.toFixed(2)} s / ${sk.fit.toFixed(2)} s = ${(fit / sk.fit).toFixed(2)}, ` +
          `R2 ${Number(first.r2).toFixed(4)} / ${sk.r2.toFixed(4)}, peak RSS ${mib(first.peak)} / ${sk.rssMiB.toFixed(0)} MiB = ${(first.peak / 1024 / sk.rssMiB).toFixed(2)}x ` +
            `(summed PSS ${mib(first.pssPeak)} MiB = ${(first.pssPeak / 1024 / sk.rssMiB).toFixed(2)}x)`,
      );
    }
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
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
