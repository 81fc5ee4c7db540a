/**
 * Serving benchmark: modelplane against the reference peer (FastAPI + scikit-learn, the design it
 * replaces) and a bare Fastify JSON echo (the ceiling), side by side, same machine, same load
 * generator (wrk), one run. modelplane serves exactly the peer's trees: the peer exports its forest
 * (`app.py --export-onnx`), which is given feature names `feature_1..feature_30` and served with
 * auth, metrics, validation and the prediction cache on (every benchmark row is distinct, so the
 * cache only ever misses). The rate limiter is off (RATE_LIMIT_PER_MINUTE=0): the peer has none,
 * and its default budget would throttle a load test.
 *
 *   node --import tsx bench/serving-vs-peer.ts [--duration 10] [--connections 16] [--million]
 *
 * Needs Debian's python3-fastapi python3-uvicorn python3-sklearn python3-onnx and wrk
 * (`apt-get install -y python3-fastapi python3-uvicorn python3-sklearn python3-onnx wrk`).
 * `--million` adds a run of one million single predictions and reports RSS before and after.
 * The modelplane server under test is the product itself (`src/main.ts serve`), serving the
 * exported file in single-file mode (MODEL_PATH).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const ROOT = path.resolve(import.meta.dirname, '..');
const PEER_DIR = path.resolve(ROOT, '../shared/peers/fastapi-sklearn');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const N_FEATURES = 30;
const API_KEY = 'bench-key-0123456789abcdef';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

// ------------------------------------------------------------------ orchestration

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  requests: number;
}

function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (m === null) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function wrk(url: string, script: string, connections: number, duration: number): WrkResult {
  const r = spawnSync('wrk', ['-t2', `-c${connections}`, `-d${duration}s`, '--latency', '-s', script, url], { encoding: 'utf8' });
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 'NaN');
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 'NaN');
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = errs === null ? 0 : Number(errs[1]) + Number(errs[2]) + Number(errs[3]) + Number(errs[4]);
  if (Number.isNaN(rps)) process.stderr.write(`wrk output not understood:\n${out}\n${r.stderr}\n`);
  return { rps, p50, p99, non2xx, errors, requests };
}

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

async function waitFor(url: string, headers: Record<string, string> = {}, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const res = await fetch(url, { headers });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not come up`);
}

/** A wrk script posting JSON bodies: single rows made unique per request, or one fixed body. */
function singleScript(file: string, apiKey: string, urlPath: string): void {
  // 1000 prefixes of 29 random named features; feature_30 is a per-request counter, so every row is
  // distinct (no cache hits) and building a body is one concatenation.
  writeFileSync(
    file,
    `
local prefixes = {}
math.randomseed(42)
for i = 1, 1000 do
  local parts = {}
  for j = 1, ${N_FEATURES - 1} do parts[#parts + 1] = string.format('"feature_%d":%.4f', j, math.random() * 50) end
  prefixes[i] = '{' .. table.concat(parts, ',') .. ',"feature_${N_FEATURES}":'
end
local counter = 0
local id = 0
setup = function(thread) id = id + 1; thread:set("tid", id) end
init = function() counter = tid * 100000000 end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "${apiKey}"
request = function()
  counter = counter + 1
  return wrk.format(nil, "${urlPath}", nil, prefixes[(counter % 1000) + 1] .. (counter % 1000003) * 0.001 .. '}')
end
`,
  );
}

function fixedScript(file: string, apiKey: string, urlPath: string, bodyFile: string): void {
  writeFileSync(
    file,
    `
local f = io.open("${bodyFile}", "rb")
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "${apiKey}"
request = function() return wrk.format(nil, "${urlPath}", nil, body) end
`,
  );
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): ChildProcess {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

async function main(): Promise<void> {
  const duration = arg('--duration', 10);
  const connections = arg('--connections', 16);
  const million = process.argv.includes('--million');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'modelplane-bench-'));
  const children: ChildProcess[] = [];
  const stopAll = (): void => {
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('exit', stopAll);
  try {
    // 1. The peer's forest as ONNX, with feature names so named requests work.
    const rawOnnx = path.join(tmp, 'forest.raw.onnx');
    const exp = spawnSync(PYTHON, [path.join(PEER_DIR, 'app.py'), '--export-onnx', rawOnnx], { encoding: 'utf8' });
    if (exp.status !== 0) throw new Error(`peer export failed: ${exp.stderr}`);
    const { parseModel, serializeModel } = await import('../src/onnx/model-file.ts');
    const model = parseModel(readFileSync(rawOnnx));
    const names = Array.from({ length: N_FEATURES }, (_, i) => `feature_${i + 1}`);
    model.metadataProps = [...(model.metadataProps ?? []), { key: 'feature_names', value: JSON.stringify(names) }];
    const onnxFile = path.join(tmp, 'cancer.onnx');
    writeFileSync(onnxFile, serializeModel(model));

    // 2. Servers.
    const peer = start(PYTHON, ['app.py', '--port', '8601'], {}, PEER_DIR);
    const echo = start(process.execPath, ['--import', 'tsx', 'bench/fastify-echo.ts', '8602'], {});
    const mp = start(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
      API_PORT: '8603',
      API_KEY,
      DATA_DIR: path.join(tmp, 'data'),
      MODEL_PATH: onnxFile,
      MODEL_NAME: 'cancer',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    children.push(peer, echo, mp);
    await Promise.all([waitFor('http://127.0.0.1:8601/health'), waitFor('http://127.0.0.1:8602/health'), waitFor('http://127.0.0.1:8603/ready')]);

    // Correctness first: same trees, same answer.
    const row = Object.fromEntries(names.map((n, i) => [n, (i * 7.3) % 40]));
    const peerAnswer = (await (await fetch('http://127.0.0.1:8601/predict', { method: 'POST', body: JSON.stringify(row), headers: { 'content-type': 'application/json' } })).json()) as { prediction: number; probability: number[] };
    const mpAnswer = (await (await fetch('http://127.0.0.1:8603/predict', { method: 'POST', body: JSON.stringify(row), headers: { 'content-type': 'application/json', 'x-api-key': API_KEY } })).json()) as { prediction: number; probability: number[] };
    const diff = Math.max(...peerAnswer.probability.map((p, k) => Math.abs(p - mpAnswer.probability[k]!)));
    process.stdout.write(`same row: peer ${peerAnswer.prediction} ${JSON.stringify(peerAnswer.probability)}, modelplane ${mpAnswer.prediction} ${JSON.stringify(mpAnswer.probability)} (max |diff| ${diff.toExponential(1)})\n\n`);

    // 3. Load.
    const singleLua = path.join(tmp, 'single.lua');
    singleScript(singleLua, API_KEY, '/predict');
    const records = Array.from({ length: 1000 }, (_, r) => Object.fromEntries(names.map((n, j) => [n, Math.round(((r * 31 + j * 17) % 997) * 5) / 100])));
    const recordsBody = JSON.stringify({ records });
    const listBody = JSON.stringify({ features_list: records.map((rec) => names.map((n) => rec[n])) });
    const recordsFile = path.join(tmp, 'records.json');
    const listFile = path.join(tmp, 'list.json');
    writeFileSync(recordsFile, recordsBody);
    writeFileSync(listFile, listBody);
    const batchLua = path.join(tmp, 'batch.lua');
    const listLua = path.join(tmp, 'list.lua');
    fixedScript(batchLua, API_KEY, '/batch-predict', recordsFile);
    fixedScript(listLua, API_KEY, '/predict/batch', listFile);

    // Warm-up so JIT and caches settle on every server.
    wrk('http://127.0.0.1:8603', singleLua, connections, 2);
    wrk('http://127.0.0.1:8602', singleLua, connections, 2);
    wrk('http://127.0.0.1:8603', batchLua, 4, 2);

    const rows: [string, WrkResult, number, number, number][] = [];
    /** Server CPU microseconds per request: robust where the machine is shared with other work. */
    const measured = (pid: number | undefined, run: () => WrkResult): [WrkResult, number] => {
      const c0 = cpuSeconds(pid);
      const r = run();
      return [r, ((cpuSeconds(pid) - c0) * 1e6) / r.requests];
    };
    const single = (label: string, port: number, pid: number | undefined): WrkResult => {
      const [r, cpu] = measured(pid, () => wrk(`http://127.0.0.1:${port}`, singleLua, connections, duration));
      rows.push([label, r, 1, cpu, rssMb(pid)]);
      return r;
    };
    const peerSingle = single('peer /predict', 8601, peer.pid);
    const echoSingle = single('fastify echo /predict', 8602, echo.pid);
    const mpSingle = single('modelplane /predict', 8603, mp.pid);
    const batch = (label: string, port: number, pid: number | undefined, lua: string): WrkResult => {
      const [r, cpu] = measured(pid, () => wrk(`http://127.0.0.1:${port}`, lua, Math.min(connections, 8), duration));
      rows.push([label, r, 1000, cpu, rssMb(pid)]);
      return r;
    };
    const peerBatch = batch('peer /batch-predict records x1000', 8601, peer.pid, batchLua);
    const mpBatch = batch('modelplane /batch-predict records x1000', 8603, mp.pid, batchLua);
    const mpList = batch('modelplane /predict/batch features_list x1000', 8603, mp.pid, listLua);

    // JSON.parse alone: the ceiling for a 1000-record body on one core.
    const parse = (body: string): number => {
      for (let i = 0; i < 20; i++) JSON.parse(body);
      const n = 200;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) JSON.parse(body);
      return (n * 1000) / ((performance.now() - t0) / 1000);
    };
    const parseRecords = parse(recordsBody);
    const parseList = parse(listBody);

    const pad = (s: string, n: number): string => s.padEnd(n);
    process.stdout.write(`${pad('run', 48)}${pad('req/s', 10)}${pad('rows/s', 12)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('non-2xx', 9)}${pad('errors', 8)}${pad('cpu us/req', 12)}RSS MB\n`);
    for (const [label, r, perReq, cpu, rss] of rows) {
      process.stdout.write(
        `${pad(label, 48)}${pad(r.rps.toFixed(0), 10)}${pad((r.rps * perReq).toFixed(0), 12)}${pad(r.p50.toFixed(2), 9)}${pad(r.p99.toFixed(2), 9)}${pad(String(r.non2xx), 9)}${pad(String(r.errors), 8)}${pad(cpu.toFixed(0), 12)}${rss}\n`,
      );
    }
    process.stdout.write('\n');
    const cpuOf = (label: string): number => rows.find((r) => r[0] === label)![3];
    process.stdout.write(
      `server CPU per single request: modelplane ${cpuOf('modelplane /predict').toFixed(0)} us, echo ${cpuOf('fastify echo /predict').toFixed(0)} us, peer ${cpuOf('peer /predict').toFixed(0)} us -> CPU-bound throughput ratios: vs peer ${(cpuOf('peer /predict') / cpuOf('modelplane /predict')).toFixed(0)}x, vs echo ${((100 * cpuOf('fastify echo /predict')) / cpuOf('modelplane /predict')).toFixed(0)}%\n`,
    );
    process.stdout.write(`single: modelplane / peer = ${(mpSingle.rps / peerSingle.rps).toFixed(1)}x; modelplane / echo = ${((100 * mpSingle.rps) / echoSingle.rps).toFixed(0)}%; p99 ${mpSingle.p99.toFixed(2)} ms\n`);
    process.stdout.write(`batch (records): modelplane / peer = ${(mpBatch.rps / peerBatch.rps).toFixed(1)}x rows/s\n`);
    process.stdout.write(
      `JSON.parse alone, one core: records body ${parseRecords.toFixed(0)} rows/s (endpoint reaches ${((100 * mpBatch.rps * 1000) / parseRecords).toFixed(0)}%), features_list body ${parseList.toFixed(0)} rows/s (endpoint reaches ${((100 * mpList.rps * 1000) / parseList).toFixed(0)}%)\n`,
    );
    process.stdout.write(`cores: ${os.cpus().length} shared by the servers and wrk (2 threads)\n`);

    if (million) {
      const before = rssMb(mp.pid);
      const rps = mpSingle.rps > 0 ? mpSingle.rps : 10_000;
      const seconds = Math.ceil(1_000_000 / rps) + 2;
      const r = wrk('http://127.0.0.1:8603', singleLua, connections, seconds);
      process.stdout.write(`\nmillion: ${Math.round(r.rps * seconds)} requests in ${seconds}s, non-2xx ${r.non2xx}, RSS before ${before} MB, after ${rssMb(mp.pid)} MB\n`);
    }
  } finally {
    stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
