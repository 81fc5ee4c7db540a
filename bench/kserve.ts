/**
 * Open Inference Protocol benchmark (issue #14's KServe speed targets), side by side in one run on
 * one server: binary FP32 batches of 1000 rows on `/v2/models/{name}/infer` against the native
 * `/predict/batch` `features_list` JSON form (rows/s, target >= 3x), and single JSON infers
 * against `/predict` (req/s, target within 10%). Same load generator (wrk), served by the compiled
 * build in single-file mode with auth, metrics and the prediction cache on, the rate limiter off.
 * Two models, one server each: the reference peer's forest (bench/peer-forest.ts), whose own run
 * costs about 1.9 ms of CPU per 1000 rows (which bounds the batch ratio whatever the body form),
 * and a logistic regression over the same 30 features, whose run costs next to nothing (so the
 * ratio shows what the body forms cost).
 *
 *   node --import tsx bench/kserve.ts [--duration 10] [--connections 16]
 *
 * Needs wrk and Debian's python3-sklearn python3-onnx (to export the forest).
 *
 * The prediction cache must not answer: single rows are all distinct, batches cycle through 256
 * distinct 1000-row bodies (the same rows in both forms), and the cache is cleared before every run;
 * the hits each run caused are printed (they should be ~0). The binary bodies are what
 * tritonclient.http sends: the JSON header, then the raw little-endian float32 rows, with
 * `Inference-Header-Content-Length` and `binary_data_output`.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LinearModel, Preprocessing } from '../src/ml/types.ts';
import { exportModel } from '../src/onnx/export.ts';
import { createRng } from '../src/util/random.ts';
import { startCompiledServer } from './compiled-server.ts';
import { FEATURE_NAMES, N_FEATURES, exportPeerForest } from './peer-forest.ts';
import { type WrkResult, WRK_THREADS, runWrk, writeCyclingBodiesScript, writeSingleRowScript } from './wrk.ts';
import { arg, print } from './common.ts';

const API_KEY = 'bench-key-0123456789abcdef';
const PORT = 8613;
const BASE = `http://127.0.0.1:${PORT}`;
const MODEL = 'cancer';
const BATCH_BODIES = 256;
const BATCH_ROWS = 1000;

async function api(method: 'GET' | 'DELETE', urlPath: string): Promise<any> {
  const res = await fetch(`${BASE}${urlPath}`, { method, headers: { 'x-api-key': API_KEY } });
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function waitReady(timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if ((await fetch(`${BASE}/v2/health/ready`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('the server did not become ready');
}

/**
 * A logistic regression over the same 30 features, from the project's exporter: a model whose run
 * costs next to nothing, so the figures show what the protocol and the body forms cost.
 */
function logisticModel(): Uint8Array {
  const rng = createRng(5);
  const model: LinearModel = {
    kind: 'linear',
    task: 'classification',
    nFeatures: N_FEATURES,
    nTargets: 1,
    coefficients: Float64Array.from(FEATURE_NAMES, () => rng.next() * 0.2 - 0.1),
    intercepts: Float64Array.of(0),
    postTransform: 'logistic',
    nClasses: 2,
  };
  const pre: Preprocessing = { columns: FEATURE_NAMES.map((name) => ({ name, kind: 'numeric' as const, fill: Number.NaN, offset: 0, scale: 1, categories: [], oneHot: false })) };
  return exportModel(model, pre, { featureNames: FEATURE_NAMES, classLabels: [0, 1], producerVersion: 'bench' });
}

/** The JSON header every binary batch body starts with (the same for every body). */
function binaryHeader(): string {
  return JSON.stringify({
    inputs: [{ name: 'input', shape: [BATCH_ROWS, N_FEATURES], datatype: 'FP32', parameters: { binary_data_size: BATCH_ROWS * N_FEATURES * 4 } }],
    parameters: { binary_data_output: true },
  });
}

/** The same `count` distinct bodies of 1000 rows as features_list JSON lines and as binary FP32 tensors. */
function batchBodies(count: number): { lists: string[]; binary: Buffer[] } {
  const rng = createRng(11);
  const lists: string[] = [];
  const binary: Buffer[] = [];
  for (let b = 0; b < count; b++) {
    const rows = Array.from({ length: BATCH_ROWS }, () => FEATURE_NAMES.map(() => Math.round(rng.next() * 5000) / 100));
    lists.push(JSON.stringify({ features_list: rows }));
    binary.push(Buffer.from(new Float32Array(rows.flat()).buffer));
  }
  return { lists, binary };
}

/** wrk script posting single rows as Open Inference Protocol JSON, every row distinct. */
function writeSingleInferScript(file: string): void {
  writeFileSync(
    file,
    `
local prefixes = {}
math.randomseed(42)
for i = 1, 1000 do
  local parts = {}
  for j = 1, ${N_FEATURES - 1} do parts[#parts + 1] = string.format('%.4f', math.random() * 50) end
  prefixes[i] = '{"inputs":[{"name":"input","shape":[1,${N_FEATURES}],"datatype":"FP32","data":[' .. table.concat(parts, ',') .. ','
end
local counter = 0
local id = 0
setup = function(thread) id = id + 1; thread:set("tid", id) end
init = function() counter = tid * 100000000 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "${API_KEY}"
request = function()
  counter = counter + 1
  return wrk.format(nil, "/v2/models/${MODEL}/infer", nil, prefixes[(counter % 1000) + 1] .. (counter % 1000003) * 0.001 .. ']}]}')
end
`,
  );
}

/**
 * wrk script posting the binary bodies of `file` (all `bodyBytes` long, back to back) in turn, as
 * tritonclient.http does: no Content-Type, `Inference-Header-Content-Length`.
 */
function writeBinaryScript(file: string, bodiesFile: string, bodyBytes: number, headerBytes: number): void {
  writeFileSync(
    file,
    `
local id = 0
setup = function(thread) id = id + 1; thread:set("tid", id) end
local bodies = {}
local next_body = 1
init = function()
  local f = io.open("${bodiesFile}", "rb")
  local all = f:read("*a")
  f:close()
  for at = 1, #all, ${bodyBytes} do bodies[#bodies + 1] = string.sub(all, at, at + ${bodyBytes} - 1) end
  next_body = ((tid - 1) * math.floor(#bodies / ${WRK_THREADS})) % #bodies + 1
end
wrk.method = "POST"
wrk.headers["X-API-Key"] = "${API_KEY}"
wrk.headers["Inference-Header-Content-Length"] = "${headerBytes}"
request = function()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format(nil, "/v2/models/${MODEL}/infer", nil, body)
end
`,
  );
}

interface Run {
  label: string;
  result: WrkResult;
  rowsPerRequest: number;
  cacheHits: number;
  /** Server CPU microseconds per request: the robust figure where other work shares the machine. */
  cpuUs: number;
}

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function cacheHits(): Promise<number> {
  const health = await api('GET', '/health/model');
  return Number(health.default?.cache_hits ?? Number.NaN);
}

async function measure(pid: number | undefined, label: string, script: string, connections: number, duration: number, rowsPerRequest: number): Promise<Run> {
  await api('DELETE', '/predict/cache');
  const hits0 = await cacheHits();
  const c0 = cpuSeconds(pid);
  const result = await runWrk(BASE, script, connections, duration);
  const cpuUs = ((cpuSeconds(pid) - c0) * 1e6) / result.requests;
  return { label, result, rowsPerRequest, cacheHits: (await cacheHits()) - hits0, cpuUs };
}

async function checkSameAnswer(binary: Buffer, list: string): Promise<void> {
  const header = binaryHeader();
  const kserve = await fetch(`${BASE}/v2/models/${MODEL}/infer`, {
    method: 'POST',
    headers: { 'x-api-key': API_KEY, 'inference-header-content-length': String(Buffer.byteLength(header)) },
    body: Buffer.concat([Buffer.from(header), binary]),
  });
  const bytes = Buffer.from(await kserve.arrayBuffer());
  if (kserve.status !== 200) throw new Error(`binary infer: ${kserve.status} ${bytes.toString()}`);
  const n = Number(kserve.headers.get('inference-header-content-length'));
  const outputs = (JSON.parse(bytes.subarray(0, n).toString()) as { outputs: { name: string; parameters: { binary_data_size: number } }[] }).outputs;
  const labels = new BigInt64Array(bytes.buffer.slice(bytes.byteOffset + n, bytes.byteOffset + n + outputs[0]!.parameters.binary_data_size));
  const native = await fetch(`${BASE}/predict/batch`, { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: list });
  const predictions = ((await native.json()) as { predictions: { prediction: number }[] }).predictions;
  const differ = predictions.filter((p, i) => BigInt(p.prediction) !== labels[i]).length;
  print(`same 1000 rows: binary /v2 infer and /predict/batch labels differ on ${differ} rows`);
  if (differ > 0) throw new Error('the two surfaces disagree');
}

/**
 * Every run against one model file served by a fresh server: the four kinds of request, each
 * twice in alternating order, then the table and the targets.
 */
async function benchModel(name: string, onnxFile: string, tmp: string, duration: number, connections: number, started: ChildProcess[]): Promise<void> {
  print(`\n=== ${name}`);
  const server = startCompiledServer({
    API_PORT: String(PORT),
    API_KEY,
    DATA_DIR: path.join(tmp, `data-${path.basename(onnxFile, '.onnx')}`),
    MODEL_PATH: onnxFile,
    MODEL_NAME: MODEL,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
  });
  started.push(server);
  try {
    await waitReady();

    const bodies = batchBodies(BATCH_BODIES);
    const listFile = path.join(tmp, 'list.jsonl');
    writeFileSync(listFile, `${bodies.lists.join('\n')}\n`);
    const header = Buffer.from(binaryHeader());
    const binaryFile = path.join(tmp, 'binary.bin');
    writeFileSync(binaryFile, Buffer.concat(bodies.binary.flatMap((b) => [header, b])));
    await checkSameAnswer(bodies.binary[0]!, bodies.lists[0]!);

    const singleLua = path.join(tmp, 'single.lua');
    writeSingleRowScript(singleLua, { apiKey: API_KEY, urlPath: '/predict' }, N_FEATURES);
    const inferLua = path.join(tmp, 'infer.lua');
    writeSingleInferScript(inferLua);
    const listLua = path.join(tmp, 'list.lua');
    writeCyclingBodiesScript(listLua, { apiKey: API_KEY, urlPath: '/predict/batch' }, listFile);
    const binaryLua = path.join(tmp, 'binary.lua');
    writeBinaryScript(binaryLua, binaryFile, header.length + bodies.binary[0]!.length, header.length);
    print(
      `batch bodies: ${BATCH_BODIES} distinct x ${BATCH_ROWS} rows; features_list ${(bodies.lists[0]!.length / 1024).toFixed(0)} KiB, binary ${((header.length + bodies.binary[0]!.length) / 1024).toFixed(0)} KiB each`,
    );

    // Warm-ups, then the pairs back to back (the order alternates so drift on a shared machine does not favour one side).
    const batchConnections = Math.min(connections, 8);
    for (const script of [singleLua, inferLua]) await runWrk(BASE, script, connections, 2);
    for (const script of [listLua, binaryLua]) await runWrk(BASE, script, 4, 2);
    const runs: Run[] = [];
    const predict1 = await measure(server.pid, '/predict single row (JSON)', singleLua, connections, duration, 1);
    const infer1 = await measure(server.pid, '/v2 infer single row (JSON)', inferLua, connections, duration, 1);
    const infer2 = await measure(server.pid, '/v2 infer single row (JSON), again', inferLua, connections, duration, 1);
    const predict2 = await measure(server.pid, '/predict single row (JSON), again', singleLua, connections, duration, 1);
    const list1 = await measure(server.pid, '/predict/batch features_list x1000', listLua, batchConnections, duration, BATCH_ROWS);
    const bin1 = await measure(server.pid, '/v2 infer binary FP32 x1000', binaryLua, batchConnections, duration, BATCH_ROWS);
    const bin2 = await measure(server.pid, '/v2 infer binary FP32 x1000, again', binaryLua, batchConnections, duration, BATCH_ROWS);
    const list2 = await measure(server.pid, '/predict/batch features_list x1000, again', listLua, batchConnections, duration, BATCH_ROWS);
    runs.push(predict1, infer1, infer2, predict2, list1, bin1, bin2, list2);

    const pad = (s: string, n: number): string => s.padEnd(n);
    print(`\n${pad('run', 44)}${pad('req/s', 10)}${pad('rows/s', 12)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('non-2xx', 9)}${pad('errors', 8)}${pad('cpu us/req', 12)}cache hits`);
    for (const r of runs) {
      const w = r.result;
      print(
        `${pad(r.label, 44)}${pad(w.rps.toFixed(0), 10)}${pad((w.rps * r.rowsPerRequest).toFixed(0), 12)}${pad(w.p50.toFixed(2), 9)}${pad(w.p99.toFixed(2), 9)}${pad(String(w.non2xx), 9)}${pad(String(w.errors), 8)}${pad(r.cpuUs.toFixed(0), 12)}${r.cacheHits}`,
      );
    }
    const mean = (a: Run, b: Run): number => (a.result.rps + b.result.rps) / 2;
    const singleRatio = mean(infer1, infer2) / mean(predict1, predict2);
    const batchRatio = mean(bin1, bin2) / mean(list1, list2);
    const cpu = (a: Run, b: Run): number => (a.cpuUs + b.cpuUs) / 2;
    // Server CPU per request is what a request costs whatever else runs on the machine; its ratio is
    // the throughput ratio the server would reach with a core of its own.
    const singleCpuRatio = cpu(predict1, predict2) / cpu(infer1, infer2);
    const batchCpuRatio = cpu(list1, list2) / cpu(bin1, bin2);
    const failures = runs.reduce((a, r) => a + r.result.non2xx + r.result.errors, 0);
    print(`\ncores: ${os.cpus().length} shared by the server and wrk (${WRK_THREADS} threads); ${connections} connections for singles, ${batchConnections} for batches`);
    print(`${pad('issue #14 target', 52)}${pad('measured', 40)}met`);
    print(`${pad('binary FP32 x1000 rows/s >= 3x features_list JSON', 52)}${pad(`${batchRatio.toFixed(2)}x (${(mean(bin1, bin2) * BATCH_ROWS).toFixed(0)} vs ${(mean(list1, list2) * BATCH_ROWS).toFixed(0)})`, 40)}${batchRatio >= 3 ? 'yes' : 'NO'}`);
    print(`${pad('  same, by server CPU per request (CPU-bound ratio)', 52)}${pad(`${batchCpuRatio.toFixed(2)}x (${cpu(bin1, bin2).toFixed(0)} vs ${cpu(list1, list2).toFixed(0)} us per 1000 rows)`, 40)}${batchCpuRatio >= 3 ? 'yes' : 'NO'}`);
    print(`${pad('single JSON infer req/s within 10% of /predict', 52)}${pad(`${(100 * singleRatio).toFixed(0)}% (${mean(infer1, infer2).toFixed(0)} vs ${mean(predict1, predict2).toFixed(0)})`, 40)}${singleRatio >= 0.9 ? 'yes' : 'NO'}`);
    print(`${pad('  same, by server CPU per request (CPU-bound ratio)', 52)}${pad(`${(100 * singleCpuRatio).toFixed(0)}% (${cpu(infer1, infer2).toFixed(0)} vs ${cpu(predict1, predict2).toFixed(0)} us per row)`, 40)}${singleCpuRatio >= 0.9 ? 'yes' : 'NO'}`);
    print(`${pad('non-2xx + socket errors = 0', 52)}${pad(String(failures), 40)}${failures === 0 ? 'yes' : 'NO'}`);
  } finally {
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    await exited;
  }
}

async function main(): Promise<void> {
  const duration = arg('--duration', 10);
  const connections = arg('--connections', 16);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'modelplane-kserve-bench-'));
  const started: ChildProcess[] = [];
  process.on('exit', () => {
    for (const s of started) s.kill('SIGTERM');
  });
  try {
    const forest = path.join(tmp, 'forest.onnx');
    exportPeerForest(forest);
    const logistic = path.join(tmp, 'logistic.onnx');
    writeFileSync(logistic, logisticModel());
    await benchModel('the peer forest (100 trees, depth 8): the model costs ~1.9 ms of CPU per 1000 rows', forest, tmp, duration, connections, started);
    await benchModel('logistic regression (30 features): the model costs next to nothing', logistic, tmp, duration, connections, started);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
