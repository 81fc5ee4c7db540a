/**
 * Drift monitoring's quality and speed (issue 13), in one run:
 *
 * 1. Quality: 30 numeric features; a reference from the training distribution (small, 800 rows:
 *    KS tests; large, 5000 rows: normalised Wasserstein). Calm 1000-row windows drawn from the
 *    same distribution, and windows where 5 features move by 1.5 standard deviations, over 20
 *    seeds each: how many features are flagged (target: calm <= 3 of 30 (10%); shifted >= 4 of the
 *    5 with <= 3 false alarms).
 * 2. Speed of a drift check over 10,000 logged rows x 30 features: the steps of GET /drift/{model}
 *    (read the window and its schema from the store's prediction log, decode it, test every feature) on SQLite,
 *    median of 7 runs (target < 100 ms).
 * 3. Cost of prediction logging: two servers with the same 30-feature model (MODEL_PATH), one with
 *    PREDICTION_LOG_SAMPLE_RATE=1 and one with 0, single-row POST /predict under wrk, alternated
 *    A B B A ... so drift in the machine's load hits both alike (target: < 5% fewer requests/s).
 *    DRIFT_BENCH_SECONDS (default 5) sets each run's length, DRIFT_BENCH_ROUNDS (default 4) the
 *    number of A B B A rounds: on a shared machine the runs' spread is larger than 5%, so the
 *    comparison needs many alternations (and CPU time per request, which other load moves less).
 *
 * DRIFT_BENCH_LOG_DIR=<dir> keeps the servers' logs there (one file per port).
 *
 *   node --import tsx bench/drift.ts            # all three
 *   node --import tsx bench/drift.ts quality speed
 *
 * Needs wrk on PATH for part 3. Servers run from src/ through tsx on free ports, fresh data dirs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findSchema, insertBlocks, upsertSchema } from '../src/drift/drift.repository.ts';
import { liveFromLog, readWindow } from '../src/drift/drift.service.ts';
import { LogRows } from '../src/drift/log-batch.ts';
import { parseSchema } from '../src/drift/log-codec.ts';
import { compareFeatures, type DriftReference } from '../src/drift/report.ts';
import { openStore } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { numericReference } from '../src/training/pipeline-reference.ts';
import { runWrk, writeSingleRowScript } from './wrk.ts';
import { freePort } from './common.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const F = 30;
const SHIFTED = 5;
const print = (line: string): void => void process.stdout.write(`${line}\n`);

/** Seeded standard normals (mulberry32 + Box-Muller). */
function normals(seed: number): () => number {
  let s = seed >>> 0;
  const u = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** Feature j ~ N(j / 3, (1 + j / 10)^2); the first `shifted` features move by `by` of their std. */
function columns(n: number, seed: number, shifted = 0, by = 0): Float64Array[] {
  const z = normals(seed);
  return Array.from({ length: F }, (_, j) => {
    const sd = 1 + j / 10;
    return Float64Array.from({ length: n }, () => j / 3 + sd * (z() + (j < shifted ? by : 0)));
  });
}

function referenceOf(n: number, seed: number): DriftReference {
  const cols = columns(n, seed);
  const names = cols.map((_, j) => `f${j}`);
  return { rows: n, feature_names: names, features: Object.fromEntries(cols.map((c, j) => [`f${j}`, numericReference(c)])) };
}

function flagged(reference: DriftReference, cols: Float64Array[]): boolean[] {
  const live = new Map(cols.map((c, j) => [`f${j}`, { type: 'numeric' as const, values: c }]));
  return compareFeatures(reference, live, cols[0]!.length, { shareThreshold: 0.5 }).features.map((f) => f.drifted);
}

function quality(): void {
  print('## 1. quality: 30 features, 1000-row windows, 20 seeds each');
  for (const refRows of [800, 5000]) {
    const reference = referenceOf(refRows, 1);
    const calm: number[] = [];
    const hits: number[] = [];
    const falseAlarms: number[] = [];
    for (let seed = 100; seed < 120; seed++) {
      calm.push(flagged(reference, columns(1000, seed)).filter(Boolean).length);
      const d = flagged(reference, columns(1000, seed + 1000, SHIFTED, 1.5));
      hits.push(d.slice(0, SHIFTED).filter(Boolean).length);
      falseAlarms.push(d.slice(SHIFTED).filter(Boolean).length);
    }
    const method = refRows <= 1000 ? 'KS (p < 0.05)' : 'Wasserstein / std (>= 0.1)';
    const stats = (xs: number[]): string => `mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2)}, max ${Math.max(...xs)}, min ${Math.min(...xs)}`;
    print(`reference ${refRows} rows, ${method}:`);
    print(`  calm windows: features flagged of 30: ${stats(calm)}  (target max <= 3)`);
    print(`  5 features shifted by 1.5 std: shifted flagged of 5: ${stats(hits)} (target min >= 4); false alarms of 25: ${stats(falseAlarms)} (target max <= 3)`);
  }
}

async function speed(): Promise<void> {
  print('## 2. drift check over 10,000 logged rows x 30 features (SQLite)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'drift-bench-'));
  const store = await openStore({ dataDir: dir });
  try {
    await migrateToLatest(store);
    const cols = columns(10_000, 7, SHIFTED, 1.5);
    // Rows as the prediction log stores them: the model's float32 input rows, in blocks of 1000
    // rows (a flush's worth at 4000 predictions a second).
    const input = new Float32Array(10_000 * F);
    for (let i = 0; i < 10_000; i++) for (let j = 0; j < F; j++) input[i * F + j] = cols[j]![i]!;
    await upsertSchema(store.db, { model: 'bench', version: '1', element_type: 'float32', features: JSON.stringify(cols.map((_, j) => `f${j}`)), categories: JSON.stringify(cols.map(() => null)) });
    for (let k = 0; k < 10; k++) {
      const rows = new LogRows(1000);
      for (let i = k * 1000; i < (k + 1) * 1000; i++) rows.append(0, 'single', Date.now(), 0.1, null, '"prediction":1', input, i * F, F);
      await insertBlocks(store.db, rows.blocks(['bench', '1']));
    }
    for (const refRows of [800, 5000]) {
      const reference = referenceOf(refRows, 1);
      const times: number[] = [];
      const cpuMs: number[] = [];
      let drifted = 0;
      for (let run = 0; run < 7; run++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const ranges = await readWindow(store.db, 'bench', '1', 10_000);
        const schema = parseSchema((await findSchema(store.db, 'bench', '1'))!);
        let n = 0;
        for (const r of ranges) n += r.to - r.from;
        const report = compareFeatures(reference, liveFromLog(reference, schema, ranges), n, { shareThreshold: 0.5 });
        times.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpuMs.push((c.user + c.system) / 1000);
        drifted = report.drifted_features;
      }
      times.sort((a, b) => a - b);
      cpuMs.sort((a, b) => a - b);
      print(
        `reference ${refRows} rows (${refRows <= 1000 ? 'KS' : 'Wasserstein'}): wall median ${times[3]!.toFixed(1)} ms (min ${times[0]!.toFixed(1)}, max ${times[6]!.toFixed(1)}), ` +
          `CPU median ${cpuMs[3]!.toFixed(1)} ms (min ${cpuMs[0]!.toFixed(1)}); ${drifted} features drifted (target < 100 ms)`,
      );
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const API_KEY = 'drift-bench-admin-key-0123456789';

/**
 * CPU seconds (user + system) a process has used, all its threads, or (`eventLoop`) only its main
 * thread, whose thread id is the process id. From /proc (Linux; clock ticks of 1/100 s).
 */
function cpuSeconds(pid: number, eventLoop = false): number {
  const fields = readFileSync(eventLoop ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Starts a server; its log (warnings and errors) goes to `DRIFT_BENCH_LOG_DIR/<port>.log` when that is set. */
function serve(env: Record<string, string>): ChildProcess {
  const dir = process.env['DRIFT_BENCH_LOG_DIR'];
  return spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env: { ...process.env, API_KEY, LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: '0', DATABASE_URL: '', REDIS_URL: '', ...env },
    stdio: ['ignore', dir === undefined ? 'ignore' : openSync(path.join(dir, `${env['API_PORT'] ?? 'server'}.log`), 'a'), 'inherit'],
  });
}

async function waitFor(url: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not come up`);
}

async function call(base: string, method: string, urlPath: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}${urlPath}`, { method, headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${await res.text()}`);
  return res.headers.get('content-type')?.includes('json') ? res.json() : Buffer.from(await res.arrayBuffer());
}

async function loggingCost(): Promise<void> {
  print('## 3. prediction logging cost: single-row POST /predict, logging at 1.0 vs 0');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'drift-bench-'));
  const children: ChildProcess[] = [];
  try {
    // A 30-feature logistic regression trained by modelplane itself, exported as ONNX.
    const setupPort = await freePort();
    const setup = serve({ API_PORT: String(setupPort), DATA_DIR: path.join(tmp, 'setup'), TRAINING_WORKERS: '1' });
    children.push(setup);
    const base = `http://127.0.0.1:${setupPort}`;
    await waitFor(`${base}/health`);
    const cols = columns(2000, 3);
    // Named as wrk.ts's single-row script names them.
    const trainRows = Array.from({ length: 2000 }, (_, i) => ({ ...Object.fromEntries(cols.map((c, j) => [`feature_${j + 1}`, c[i]])), y: cols[0]![i]! + cols[1]![i]! > 1 ? 1 : 0 }));
    await call(base, 'POST', '/datasets/bench', { rows: trainRows });
    const job = await call(base, 'POST', '/train', { dataset: { name: 'bench' }, target: 'y', algorithm: 'logistic_regression', register_as: 'bench' });
    for (;;) {
      const s = await call(base, 'GET', `/train/status/${job.job_id}`);
      if (s.status === 'succeeded') break;
      if (s.status === 'failed' || s.status === 'cancelled') throw new Error(`training ${s.status}: ${s.error}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const onnxFile = path.join(tmp, 'bench.onnx');
    writeFileSync(onnxFile, (await call(base, 'GET', '/models/bench/versions/1/artifact')) as Buffer);
    setup.kill('SIGTERM');

    const ports = [await freePort(), await freePort()];
    const rates = ['1', '0'];
    const servers: ChildProcess[] = [];
    for (let k = 0; k < 2; k++) {
      servers[k] = serve({ API_PORT: String(ports[k]), DATA_DIR: path.join(tmp, `s${k}`), MODEL_PATH: onnxFile, PREDICTION_LOG_SAMPLE_RATE: rates[k]!, DRIFT_CHECK_INTERVAL: '0' });
      children.push(servers[k]!);
    }
    await Promise.all(ports.map((p) => waitFor(`http://127.0.0.1:${p}/ready`)));
    const script = path.join(tmp, 'single.lua');
    writeSingleRowScript(script, { apiKey: API_KEY, urlPath: '/predict' }, F);
    const seconds = Number(process.env['DRIFT_BENCH_SECONDS'] ?? 5);
    const connections = 16;
    for (const p of ports) await runWrk(`http://127.0.0.1:${p}`, script, connections, 2); // warm-up
    const rounds = Number(process.env['DRIFT_BENCH_ROUNDS'] ?? 4);
    const order = Array.from({ length: rounds }, () => [0, 1, 1, 0]).flat();
    const rps: number[][] = [[], []];
    const p99: number[][] = [[], []];
    // CPU time per request of each server: unlike requests/s, barely moved by other load on the machine.
    const cpu = [0, 0];
    // The event-loop thread's part of it (onnxruntime and libuv have threads of their own).
    const loopCpu = [0, 0];
    const requests = [0, 0];
    for (const k of order) {
      const before = cpuSeconds(servers[k]!.pid!);
      const loopBefore = cpuSeconds(servers[k]!.pid!, true);
      const r = await runWrk(`http://127.0.0.1:${ports[k]}`, script, connections, seconds);
      // The logging server's last writes of the run are part of its cost.
      await new Promise((done) => setTimeout(done, 500));
      cpu[k]! += cpuSeconds(servers[k]!.pid!) - before;
      loopCpu[k]! += cpuSeconds(servers[k]!.pid!, true) - loopBefore;
      requests[k]! += r.requests;
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`wrk saw ${r.non2xx} non-2xx and ${r.errors} socket errors`);
      rps[k]!.push(r.rps);
      p99[k]!.push(r.p99);
    }
    const usOn = (cpu[0]! / requests[0]!) * 1e6;
    const usOff = (cpu[1]! / requests[1]!) * 1e6;
    const loopOn = (loopCpu[0]! / requests[0]!) * 1e6;
    const loopOff = (loopCpu[1]! / requests[1]!) * 1e6;
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    const logged = `http://127.0.0.1:${ports[0]}`;
    const metrics = String(await (await fetch(`${logged}/metrics`)).text());
    const written = Number(/^prediction_log_written_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    const dropped = Number(/^prediction_log_dropped_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    print(`logging on : rps per run ${rps[0]!.map((x) => x.toFixed(0)).join(' ')}  (median ${median(rps[0]!).toFixed(0)}, p99 median ${median(p99[0]!).toFixed(2)} ms)`);
    print(`logging off: rps per run ${rps[1]!.map((x) => x.toFixed(0)).join(' ')}  (median ${median(rps[1]!).toFixed(0)}, p99 median ${median(p99[1]!).toFixed(2)} ms)`);
    print(`cost of logging: ${((1 - sum(rps[0]!) / sum(rps[1]!)) * 100).toFixed(1)}% of throughput (total requests), ${((1 - median(rps[0]!) / median(rps[1]!)) * 100).toFixed(1)}% by medians (target < 5%)`);
    print(`server CPU per request: logging on ${usOn.toFixed(1)} us, off ${usOff.toFixed(1)} us: logging costs ${((usOn / usOff - 1) * 100).toFixed(1)}% more CPU per prediction (target < 5%)`);
    print(`  of which the event-loop thread: logging on ${loopOn.toFixed(1)} us, off ${loopOff.toFixed(1)} us (${((loopOn / loopOff - 1) * 100).toFixed(1)}%)`);
    print(`rows written by the logging server: ${written}, dropped: ${dropped}`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    rmSync(tmp, { recursive: true, force: true });
  }
}

const parts = process.argv.slice(2);
const want = (name: string): boolean => parts.length === 0 || parts.includes(name);
if (want('quality')) quality();
if (want('speed')) await speed();
if (want('logging')) await loggingCost();
