/**
 * Promotions during load (issue #5: zero non-2xx): single predictions at full speed while the
 * Production stage moves back and forth between two versions of the default model.
 *
 *   node --import tsx bench/promotion-under-load.ts [--duration 20] [--every 250] [--connections 16]
 *
 * Starts the compiled server (`node dist/main.js serve`, built first when src/ is newer, as in
 * serving-vs-peer.ts) in registry mode on port 8604: fresh DATA_DIR with SQLite, API_KEY set,
 * MODEL_NAME=cancer in MODEL_STAGE=Production, rate limiter off. Registers two versions: v1 is the
 * reference peer's forest (100 trees, exported by ../shared/peers/fastapi-sklearn/app.py), v2 the
 * same forest retrained with 30 trees. v1 goes to Production, then wrk sends distinct single rows
 * for --duration seconds while this script moves Production to the other version every --every ms
 * (`POST /models/transition` with archive_existing_versions). The wrk script counts which version
 * answered each response (`"model_version"` in the body).
 *
 * Prints requests, non-2xx, socket errors, promotions done (and failed), and responses per version.
 * Exit code 1 when any response was non-2xx, any socket error occurred or a transition failed.
 * Needs wrk and Debian's python3-sklearn and python3-onnx (for the peer's exporter).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCompiledServer } from './compiled-server.ts';
import { N_FEATURES, FEATURE_NAMES, exportPeerForest } from './peer-forest.ts';
import { runWrk, writeSingleRowScript } from './wrk.ts';
import { arg, print } from './common.ts';

const API_KEY = 'bench-key-0123456789abcdef';
const BASE = 'http://127.0.0.1:8604';
const MODEL = 'cancer';

async function api(method: string, urlPath: string, body?: Uint8Array | object): Promise<Response> {
  const headers: Record<string, string> = { 'x-api-key': API_KEY };
  let payload: string | Uint8Array | undefined;
  if (body instanceof Uint8Array) {
    headers['content-type'] = 'application/octet-stream';
    payload = body;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  return fetch(`${BASE}${urlPath}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
}

/** Calls the API and returns the JSON body; any non-2xx throws with the reply. */
async function apiJson(method: string, urlPath: string, body?: Uint8Array | object): Promise<any> {
  const res = await api(method, urlPath, body);
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function waitFor(urlPath: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if ((await fetch(`${BASE}${urlPath}`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${urlPath} did not answer 200 within ${timeoutMs} ms`);
}

/** Moves Production to `version`, archiving the version that held it. */
async function promote(version: number): Promise<Response> {
  return api('POST', '/models/transition', { name: MODEL, version, stage: 'Production', archive_existing_versions: true });
}

/** wrk additions: count the version named in each response, sum over threads when done. */
const VERSION_COUNTER_LUA = `
v1 = 0
v2 = 0
other = 0
response = function(status, headers, body)
  if string.find(body, '"model_version":"1"', 1, true) then v1 = v1 + 1
  elseif string.find(body, '"model_version":"2"', 1, true) then v2 = v2 + 1
  else other = other + 1 end
end
done = function(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("v1"); b = b + t:get("v2"); c = c + t:get("other") end
  io.write(string.format("versions: v1 %d v2 %d other %d\\n", a, b, c))
end
`;

interface PromotionLoop {
  done: number;
  failed: number;
}

/**
 * Alternates Production between v2 and v1 every `everyMs` until `stop()` is true. Transitions run
 * one at a time; when one takes longer than the period the next starts right after it.
 */
async function promoteRepeatedly(everyMs: number, stop: () => boolean): Promise<PromotionLoop> {
  const loop: PromotionLoop = { done: 0, failed: 0 };
  let next = 2;
  let due = Date.now() + everyMs;
  while (!stop()) {
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (stop()) break;
    const res = await promote(next);
    const reply = await res.text();
    if (res.ok) {
      loop.done++;
      next = next === 2 ? 1 : 2;
    } else {
      loop.failed++;
      process.stderr.write(`transition to v${next} failed: ${res.status} ${reply}\n`);
    }
    due = Math.max(due + everyMs, Date.now());
  }
  return loop;
}

async function main(): Promise<number> {
  const duration = arg('--duration', 20);
  const everyMs = arg('--every', 250);
  const connections = arg('--connections', 16);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'modelplane-promote-'));
  const server = startCompiledServer({
    API_PORT: '8604',
    API_KEY,
    DATA_DIR: path.join(tmp, 'data'),
    MODEL_NAME: MODEL,
    MODEL_STAGE: 'Production',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
  });
  const stopServer = (): void => {
    server.kill('SIGTERM');
  };
  process.on('exit', stopServer);
  try {
    // Two versions: the peer's forest with 100 trees, then with 30.
    const files = [path.join(tmp, 'forest-100.onnx'), path.join(tmp, 'forest-30.onnx')] as const;
    exportPeerForest(files[0], 100);
    exportPeerForest(files[1], 30);
    await waitFor('/health');
    for (const file of files) {
      const created = await apiJson('POST', `/models/${MODEL}/versions`, readFileSync(file));
      print(`registered ${MODEL} v${created.version} from ${path.basename(file)}`);
    }
    const first = await promote(1);
    if (!first.ok) throw new Error(`promoting v1 failed: ${first.status} ${await first.text()}`);
    await waitFor('/ready');
    const row = Object.fromEntries(FEATURE_NAMES.map((n, i) => [n, (i * 7.3) % 40]));
    const answer = await apiJson('POST', '/predict', row);
    print(`Production v${answer.model_version} answers: ${answer.prediction} ${JSON.stringify(answer.probability)}`);

    const lua = path.join(tmp, 'single-versions.lua');
    writeSingleRowScript(lua, { apiKey: API_KEY, urlPath: '/predict' }, N_FEATURES, VERSION_COUNTER_LUA);
    print(`load: ${connections} connections for ${duration}s, Production moves between v1 and v2 every ${everyMs} ms`);
    let loadDone = false;
    const load = runWrk(BASE, lua, connections, duration).finally(() => (loadDone = true));
    const promotions = await promoteRepeatedly(everyMs, () => loadDone);
    const r = await load;

    const versions = /versions: v1 (\d+) v2 (\d+) other (\d+)/.exec(r.output);
    print(`requests ${r.requests} (${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(2)} ms), non-2xx ${r.non2xx}, socket errors ${r.errors}`);
    print(`promotions done ${promotions.done}, failed ${promotions.failed}`);
    print(versions === null ? `responses per version: not reported by wrk\n${r.output}` : `responses from v1 ${versions[1]}, from v2 ${versions[2]}, other ${versions[3]}`);
    const failed = r.non2xx + r.errors + promotions.failed > 0 || Number.isNaN(r.rps);
    print(failed ? 'FAILED: some requests or transitions did not succeed' : 'ok: every request answered 2xx during the promotions');
    return failed ? 1 : 0;
  } finally {
    stopServer();
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.exitCode = await main();
