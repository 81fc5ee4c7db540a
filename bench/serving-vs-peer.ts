/**
 * Serving benchmark: modelplane against the reference peer (FastAPI + scikit-learn, the design it
 * replaces) and a bare Fastify JSON echo (the ceiling), side by side, same machine, same load
 * generator (wrk), one run. modelplane serves exactly the peer's trees: the peer exports its forest
 * (`app.py --export-onnx`), which is given feature names `feature_1..feature_30` and served with
 * auth, metrics, validation and the prediction cache on. The rate limiter is off
 * (RATE_LIMIT_PER_MINUTE=0): the peer has none, and its default budget would throttle a load test.
 *
 *   node --import tsx bench/serving-vs-peer.ts [--duration 10] [--connections 16] [--million [--slice-requests 100000]]
 *
 * Needs Debian's python3-fastapi python3-uvicorn python3-sklearn python3-onnx and wrk
 * (`apt-get install -y python3-fastapi python3-uvicorn python3-sklearn python3-onnx wrk`).
 *
 * The modelplane server under test is the product as deployed: the compiled build, run as the
 * Dockerfile runs it (`node --max-semi-space-size=8 dist/main.js serve`), not src/main.ts through
 * tsx, which adds start-up work and the transpiler's memory to the process. The script runs
 * `npm run build` first when dist/main.js is missing or older than any file under src/. It serves
 * the exported file in single-file mode (MODEL_PATH).
 *
 * The prediction cache must never answer, or the figures would measure the cache, not the model:
 * single rows are all distinct, and batches cycle through 256 distinct 1000-row bodies (the two wrk
 * threads start half-way round from each other, so a row comes back only after 128 000 others:
 * far beyond the cache's 10 000 entries and its admission table, so cycling misses). The cache is cleared before
 * every modelplane run and the cache hits each run caused are printed (they should be ~0).
 *
 * `--million` adds one million single predictions right after the single-row runs (before any
 * batch is sent), in 10 slices of ~100 000 requests (slice length from the measured single req/s),
 * sampling the server's RSS (/proc) and V8 heap (/health/system) after each slice; it prints the
 * series, the total non-2xx and the RSS slope over the last five slices in MB per 100 000 requests.
 * `--slice-requests N` changes the slice size (a quick check of the series with fewer requests).
 * The run ends with a table of issue #5's speed targets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRng } from '../src/util/random.ts';
import { ROOT, ensureCompiledBuild, startCompiledServer } from './compiled-server.ts';
import { FEATURE_NAMES, N_FEATURES, PEER_DIR, PYTHON, exportPeerForest } from './peer-forest.ts';
import { type WrkResult, WRK_THREADS, runWrk, writeCyclingBodiesScript, writeSingleRowScript } from './wrk.ts';
import { arg, print } from './common.ts';

const API_KEY = 'bench-key-0123456789abcdef';
const PEER = 'http://127.0.0.1:8601';
const ECHO = 'http://127.0.0.1:8602';
const MODELPLANE = 'http://127.0.0.1:8603';
/** Distinct 1000-row batch bodies cycled through. */
const BATCH_BODIES = 256;
const BATCH_ROWS = 1000;

// ------------------------------------------------------------------ processes

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Math.round(Number(m[1]) / 1024);
}

/**
 * Runs `work` while sampling the process's RSS every 200 ms; resolves with its result and the
 * highest RSS seen (the figure after a run can miss a peak the collector has already cut).
 */
async function withPeakRss<T>(pid: number | undefined, work: () => Promise<T>): Promise<{ value: T; peakRssMb: number }> {
  let peak = rssMb(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 200);
  try {
    const value = await work();
    return { value, peakRssMb: Math.max(peak, rssMb(pid)) };
  } finally {
    clearInterval(timer);
  }
}

async function waitFor(url: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not come up`);
}

function start(cmd: string, args: string[], cwd = ROOT): ChildProcess {
  return spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
}

// ------------------------------------------------------------------ modelplane probes

async function modelplane(method: 'GET' | 'DELETE', urlPath: string): Promise<any> {
  const res = await fetch(`${MODELPLANE}${urlPath}`, { method, headers: { 'x-api-key': API_KEY } });
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Rows the default model has answered from the prediction cache so far. */
async function cacheHits(): Promise<number> {
  const health = await modelplane('GET', '/health/model');
  return Number(health.default?.cache_hits ?? Number.NaN);
}

/** V8 heap in use by the server, from /health/system. */
async function heapUsedMb(): Promise<number> {
  const system = await modelplane('GET', '/health/system');
  return Math.round(Number(system.memory.process_heap_used_bytes) / 2 ** 20);
}

// ------------------------------------------------------------------ bodies

/** The same `count` bodies of BATCH_ROWS random rows, as named records and as features_list. */
function batchBodies(count: number): { records: string[]; lists: string[] } {
  // Seeded, so every run sends the same rows.
  const rng = createRng(7);
  const random = (): number => rng.next();
  const records: string[] = [];
  const lists: string[] = [];
  for (let b = 0; b < count; b++) {
    const rows = Array.from({ length: BATCH_ROWS }, () => FEATURE_NAMES.map(() => Math.round(random() * 5000) / 100));
    records.push(JSON.stringify({ records: rows.map((values) => Object.fromEntries(FEATURE_NAMES.map((n, j) => [n, values[j]]))) }));
    lists.push(JSON.stringify({ features_list: rows }));
  }
  return { records, lists };
}

/** Rows per second JSON.parse alone reaches on `body` (one core): the ceiling for a batch endpoint. */
function parseRowsPerSecond(body: string): number {
  for (let i = 0; i < 20; i++) JSON.parse(body);
  const n = 200;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) JSON.parse(body);
  return (n * BATCH_ROWS) / ((performance.now() - t0) / 1000);
}

// ------------------------------------------------------------------ runs

interface Row {
  label: string;
  result: WrkResult;
  rowsPerRequest: number;
  /** Server CPU microseconds per request: robust where the machine is shared with other work. */
  cpuUs: number;
  rssMb: number;
  /** Highest RSS sampled during the run. */
  peakRssMb: number;
  /** Prediction-cache hits during the run (modelplane only). */
  cacheHits?: number;
}

async function measure(label: string, url: string, pid: number | undefined, script: string, connections: number, duration: number, rowsPerRequest: number): Promise<Row> {
  const isModelplane = url === MODELPLANE;
  if (isModelplane) await modelplane('DELETE', '/predict/cache');
  const hits0 = isModelplane ? await cacheHits() : 0;
  const c0 = cpuSeconds(pid);
  const { value: result, peakRssMb } = await withPeakRss(pid, () => runWrk(url, script, connections, duration));
  const cpuUs = ((cpuSeconds(pid) - c0) * 1e6) / result.requests;
  const row: Row = { label, result, rowsPerRequest, cpuUs, rssMb: rssMb(pid), peakRssMb };
  if (isModelplane) row.cacheHits = (await cacheHits()) - hits0;
  return row;
}

function printRows(rows: Row[]): void {
  const pad = (s: string, n: number): string => s.padEnd(n);
  print(`${pad('run', 48)}${pad('req/s', 10)}${pad('rows/s', 12)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('non-2xx', 9)}${pad('errors', 8)}${pad('cpu us/req', 12)}${pad('RSS MB', 8)}${pad('peak MB', 9)}cache hits`);
  for (const { label, result: r, rowsPerRequest, cpuUs, rssMb: rss, peakRssMb: peak, cacheHits: hits } of rows) {
    print(
      `${pad(label, 48)}${pad(r.rps.toFixed(0), 10)}${pad((r.rps * rowsPerRequest).toFixed(0), 12)}${pad(r.p50.toFixed(2), 9)}${pad(r.p99.toFixed(2), 9)}${pad(String(r.non2xx), 9)}${pad(String(r.errors), 8)}${pad(cpuUs.toFixed(0), 12)}${pad(String(rss), 8)}${pad(String(peak), 9)}${hits ?? '-'}`,
    );
  }
}

// ------------------------------------------------------------------ million

interface Slice {
  requests: number;
  total: number;
  rps: number;
  non2xx: number;
  errors: number;
  rssMb: number;
  /** Highest RSS sampled during the slice. */
  peakRssMb: number;
  heapMb: number;
}

/** Least-squares slope of y over x, and the standard deviation of the residuals around the line. */
function linearFit(xs: number[], ys: number[]): { slope: number; residualSd: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const ss = xs.reduce((acc, x, i) => acc + (ys[i]! - (my + slope * (x - mx))) ** 2, 0);
  return { slope, residualSd: n > 2 ? Math.sqrt(ss / (n - 2)) : 0 };
}

interface MillionReport {
  slices: Slice[];
  slopeMbPer100k: number;
  residualSdMb: number;
  non2xx: number;
  errors: number;
}

/** Slices of ~`sliceRequests` single predictions (10, or more until 10 x `sliceRequests`: a million by default), with RSS and heap after each. */
async function runMillion(pid: number | undefined, script: string, connections: number, singleRps: number, sliceRequests: number): Promise<MillionReport> {
  const sliceSeconds = Math.max(1, Math.round(sliceRequests / (singleRps > 0 ? singleRps : 10_000)));
  print(`million: slices of ${sliceSeconds}s (~${sliceRequests} requests each at ${singleRps.toFixed(0)} req/s); RSS before ${rssMb(pid)} MB, heap ${await heapUsedMb()} MB`);
  print(`${'slice'.padEnd(7)}${'requests'.padEnd(10)}${'total'.padEnd(10)}${'req/s'.padEnd(9)}${'non-2xx'.padEnd(9)}${'errors'.padEnd(8)}${'RSS MB'.padEnd(8)}${'peak MB'.padEnd(9)}heap MB`);
  const slices: Slice[] = [];
  let total = 0;
  // At least 10 slices, and more until 10 x sliceRequests requests are done (the rate under a long
  // run is a little below the short run's that sized the slices).
  for (let i = 1; i <= 10 || total < 10 * sliceRequests; i++) {
    const { value: r, peakRssMb } = await withPeakRss(pid, () => runWrk(MODELPLANE, script, connections, sliceSeconds));
    total += r.requests;
    const slice: Slice = { requests: r.requests, total, rps: r.rps, non2xx: r.non2xx, errors: r.errors, rssMb: rssMb(pid), peakRssMb, heapMb: await heapUsedMb() };
    slices.push(slice);
    print(`${String(i).padEnd(7)}${String(slice.requests).padEnd(10)}${String(total).padEnd(10)}${slice.rps.toFixed(0).padEnd(9)}${String(slice.non2xx).padEnd(9)}${String(slice.errors).padEnd(8)}${String(slice.rssMb).padEnd(8)}${String(slice.peakRssMb).padEnd(9)}${slice.heapMb}`);
  }
  const last = slices.slice(-5);
  const { slope, residualSd } = linearFit(
    last.map((s) => s.total / 100_000),
    last.map((s) => s.rssMb),
  );
  const heapFit = linearFit(
    last.map((s) => s.total / 100_000),
    last.map((s) => s.heapMb),
  );
  const non2xx = slices.reduce((a, s) => a + s.non2xx, 0);
  const errors = slices.reduce((a, s) => a + s.errors, 0);
  print(
    `million: ${total} requests, non-2xx ${non2xx}, socket errors ${errors}; last 5 slices: RSS slope ${slope.toFixed(2)} MB per 100k requests (residual sd ${residualSd.toFixed(2)} MB), heap slope ${heapFit.slope.toFixed(2)} MB per 100k (residual sd ${heapFit.residualSd.toFixed(2)} MB)\n`,
  );
  return { slices, slopeMbPer100k: slope, residualSdMb: residualSd, non2xx, errors };
}

// ------------------------------------------------------------------ summary

function printSummary(targets: [string, string, boolean | null][]): void {
  const width = Math.max(...targets.map((t) => t[0].length)) + 2;
  const mwidth = Math.max(...targets.map((t) => t[1].length)) + 2;
  print(`\n${'issue #5 target'.padEnd(width)}${'measured'.padEnd(mwidth)}met`);
  for (const [target, measured, met] of targets) print(`${target.padEnd(width)}${measured.padEnd(mwidth)}${met === null ? 'not judged' : met ? 'yes' : 'NO'}`);
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const duration = arg('--duration', 10);
  const connections = arg('--connections', 16);
  const million = process.argv.includes('--million');
  const sliceRequests = arg('--slice-requests', 100_000);
  // Build before anything else runs, so compiling does not compete with the servers for the CPU.
  ensureCompiledBuild((line) => print(line));
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'modelplane-bench-'));
  const children: ChildProcess[] = [];
  const stopAll = (): void => {
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('exit', stopAll);
  try {
    // 1. The peer's forest as ONNX, with feature names so named requests work.
    const onnxFile = path.join(tmp, 'cancer.onnx');
    exportPeerForest(onnxFile);

    // 2. Servers.
    const peer = start(PYTHON, ['app.py', '--port', '8601'], PEER_DIR);
    children.push(peer);
    const echo = start(process.execPath, ['--import', 'tsx', 'bench/fastify-echo.ts', '8602']);
    children.push(echo);
    const mp = startCompiledServer({
      API_PORT: '8603',
      API_KEY,
      DATA_DIR: path.join(tmp, 'data'),
      MODEL_PATH: onnxFile,
      MODEL_NAME: 'cancer',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    children.push(mp);
    await Promise.all([waitFor(`${PEER}/health`), waitFor(`${ECHO}/health`), waitFor(`${MODELPLANE}/ready`)]);

    // Correctness first: same trees, same answer.
    const row = Object.fromEntries(FEATURE_NAMES.map((n, i) => [n, (i * 7.3) % 40]));
    const post = async (url: string): Promise<{ prediction: number; probability: number[] }> =>
      (await fetch(`${url}/predict`, { method: 'POST', body: JSON.stringify(row), headers: { 'content-type': 'application/json', 'x-api-key': API_KEY } })).json() as Promise<{ prediction: number; probability: number[] }>;
    const peerAnswer = await post(PEER);
    const mpAnswer = await post(MODELPLANE);
    const diff = Math.max(...peerAnswer.probability.map((p, k) => Math.abs(p - mpAnswer.probability[k]!)));
    print(`same row: peer ${peerAnswer.prediction} ${JSON.stringify(peerAnswer.probability)}, modelplane ${mpAnswer.prediction} ${JSON.stringify(mpAnswer.probability)} (max |diff| ${diff.toExponential(1)})`);

    // 3. Load scripts and bodies.
    const singleLua = path.join(tmp, 'single.lua');
    writeSingleRowScript(singleLua, { apiKey: API_KEY, urlPath: '/predict' }, N_FEATURES);
    const bodies = batchBodies(BATCH_BODIES);
    const recordsFile = path.join(tmp, 'records.jsonl');
    const listFile = path.join(tmp, 'list.jsonl');
    writeFileSync(recordsFile, `${bodies.records.join('\n')}\n`);
    writeFileSync(listFile, `${bodies.lists.join('\n')}\n`);
    const recordsLua = path.join(tmp, 'records.lua');
    const listLua = path.join(tmp, 'list.lua');
    writeCyclingBodiesScript(recordsLua, { apiKey: API_KEY, urlPath: '/batch-predict' }, recordsFile);
    writeCyclingBodiesScript(listLua, { apiKey: API_KEY, urlPath: '/predict/batch' }, listFile);
    print(`batch bodies: ${BATCH_BODIES} distinct x ${BATCH_ROWS} rows (records ${(bodies.records[0]!.length / 1024).toFixed(0)} KiB, features_list ${(bodies.lists[0]!.length / 1024).toFixed(0)} KiB each), cycled by ${WRK_THREADS} wrk threads\n`);

    // 4. Measured runs, each kind after a warm-up so the JIT settles. Singles run before any batch
    // has been sent, so the RSS after them is that of single-row serving alone.
    await runWrk(MODELPLANE, singleLua, connections, 2);
    await runWrk(ECHO, singleLua, connections, 2);
    const batchConnections = Math.min(connections, 8);
    const rows: Row[] = [];
    const add = async (...a: Parameters<typeof measure>): Promise<Row> => {
      const r = await measure(...a);
      rows.push(r);
      return r;
    };
    const peerSingle = await add('peer /predict', PEER, peer.pid, singleLua, connections, duration, 1);
    const echoSingle = await add('fastify echo /predict', ECHO, echo.pid, singleLua, connections, duration, 1);
    const mpSingle = await add('modelplane /predict', MODELPLANE, mp.pid, singleLua, connections, duration, 1);
    // The million, when asked for, also before any batch: its RSS series is single-row serving alone.
    const report = million ? await runMillion(mp.pid, singleLua, connections, mpSingle.result.rps, sliceRequests) : null;
    await runWrk(MODELPLANE, recordsLua, 4, 2);
    const peerBatch = await add('peer /batch-predict records x1000', PEER, peer.pid, recordsLua, batchConnections, duration, BATCH_ROWS);
    const mpBatch = await add('modelplane /batch-predict records x1000', MODELPLANE, mp.pid, recordsLua, batchConnections, duration, BATCH_ROWS);
    const mpList = await add('modelplane /predict/batch features_list x1000', MODELPLANE, mp.pid, listLua, batchConnections, duration, BATCH_ROWS);

    // JSON.parse alone on one body: the ceiling for a 1000-row body on one core.
    const parseRecords = parseRowsPerSecond(bodies.records[0]!);
    const parseList = parseRowsPerSecond(bodies.lists[0]!);

    printRows(rows);
    print();
    const singleVsPeer = mpSingle.result.rps / peerSingle.result.rps;
    const singleVsEcho = (100 * mpSingle.result.rps) / echoSingle.result.rps;
    const batchVsPeer = mpBatch.result.rps / peerBatch.result.rps;
    print(
      `server CPU per single request: modelplane ${mpSingle.cpuUs.toFixed(0)} us, echo ${echoSingle.cpuUs.toFixed(0)} us, peer ${peerSingle.cpuUs.toFixed(0)} us -> CPU-bound throughput ratios: vs peer ${(peerSingle.cpuUs / mpSingle.cpuUs).toFixed(0)}x, vs echo ${((100 * echoSingle.cpuUs) / mpSingle.cpuUs).toFixed(0)}%`,
    );
    print(`single: modelplane / peer = ${singleVsPeer.toFixed(1)}x; modelplane / echo = ${singleVsEcho.toFixed(0)}%; p99 ${mpSingle.result.p99.toFixed(2)} ms`);
    print(`batch (records): modelplane / peer = ${batchVsPeer.toFixed(1)}x rows/s; features_list: ${(mpList.result.rps * BATCH_ROWS).toFixed(0)} rows/s`);
    print(
      `JSON.parse alone, one core: records body ${parseRecords.toFixed(0)} rows/s (endpoint reaches ${((100 * mpBatch.result.rps * BATCH_ROWS) / parseRecords).toFixed(0)}%), features_list body ${parseList.toFixed(0)} rows/s (endpoint reaches ${((100 * mpList.result.rps * BATCH_ROWS) / parseList).toFixed(0)}%)`,
    );
    print(`prediction-cache hits during the modelplane runs: singles ${mpSingle.cacheHits}, records ${mpBatch.cacheHits}, features_list ${mpList.cacheHits} (of ${mpSingle.result.requests} / ${mpBatch.result.requests * BATCH_ROWS} / ${mpList.result.requests * BATCH_ROWS} rows)`);
    print(`cores: ${os.cpus().length} shared by the servers and wrk (${WRK_THREADS} threads)`);

    const mpRuns = rows.filter((r) => r.label.startsWith('modelplane'));
    const failures = mpRuns.reduce((a, r) => a + r.result.non2xx + r.result.errors, 0);
    const targets: [string, string, boolean | null][] = [
      ['single req/s >= 100x peer', `${singleVsPeer.toFixed(1)}x (${mpSingle.result.rps.toFixed(0)} vs ${peerSingle.result.rps.toFixed(0)})`, singleVsPeer >= 100],
      ['single req/s >= 70% of echo', `${singleVsEcho.toFixed(0)}% (${mpSingle.result.rps.toFixed(0)} vs ${echoSingle.result.rps.toFixed(0)})`, singleVsEcho >= 70],
      [`single p99 < 5 ms (${connections} connections)`, `${mpSingle.result.p99.toFixed(2)} ms`, mpSingle.result.p99 < 5],
      ['batch rows/s >= 10x peer (1000 records)', `${batchVsPeer.toFixed(1)}x (${(mpBatch.result.rps * BATCH_ROWS).toFixed(0)} vs ${(peerBatch.result.rps * BATCH_ROWS).toFixed(0)})`, batchVsPeer >= 10],
      ['RSS < 200 MB after single load, one model', `${mpSingle.rssMb} MB`, mpSingle.rssMb < 200],
      ['RSS < 200 MB at its peak during single load', `${mpSingle.peakRssMb} MB`, mpSingle.peakRssMb < 200],
      ['RSS < 200 MB after the 1000-row batch runs too', `${mpList.rssMb} MB`, mpList.rssMb < 200],
      ['RSS < 200 MB at its peak during the batch runs', `${Math.max(mpBatch.peakRssMb, mpList.peakRssMb)} MB`, Math.max(mpBatch.peakRssMb, mpList.peakRssMb) < 200],
      ['modelplane runs: non-2xx + socket errors = 0', String(failures), failures === 0],
    ];
    if (report !== null) {
      targets.push(['million: non-2xx + socket errors = 0', String(report.non2xx + report.errors), report.non2xx + report.errors === 0]);
      targets.push([`million: RSS after ${report.slices.at(-1)!.total} requests < 200 MB`, `${report.slices.at(-1)!.rssMb} MB`, report.slices.at(-1)!.rssMb < 200]);
      const peak = Math.max(...report.slices.map((s) => s.peakRssMb));
      targets.push(['million: RSS at its peak < 200 MB', `${peak} MB`, peak < 200]);
      targets.push(['million: no RSS growth trend (last 5 slices)', `${report.slopeMbPer100k.toFixed(2)} MB/100k (sd ${report.residualSdMb.toFixed(2)} MB)`, null]);
    }
    printSummary(targets);
  } finally {
    stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
