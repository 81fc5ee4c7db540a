/**
 * Load generation for the serving benchmarks: runs wrk (asynchronously, so a script can act on the
 * server while the load runs), reads its report, and writes the Lua scripts that build request
 * bodies.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';

/** wrk threads; the Lua scripts spread their start offsets over this many threads. */
export const WRK_THREADS = 2;

/** What one wrk run reports. Latencies in milliseconds. */
export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  /** Socket errors: connect + read + write + timeout. */
  errors: number;
  requests: number;
  /** wrk's whole report, including anything the Lua `done` callback printed. */
  output: string;
}

/** Milliseconds from a wrk latency such as `812.00us`, `1.20ms` or `2.01s`. */
function ms(text: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(text);
  if (m === null) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** Reads wrk's text report. */
export function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 'NaN');
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 'NaN');
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = errs === null ? 0 : Number(errs[1]) + Number(errs[2]) + Number(errs[3]) + Number(errs[4]);
  return { rps, p50, p99, non2xx, errors, requests, output: out };
}

/** Runs wrk against `url` with the Lua `script` for `duration` seconds and returns its report. */
export async function runWrk(url: string, script: string, connections: number, duration: number): Promise<WrkResult> {
  const args = [`-t${WRK_THREADS}`, `-c${connections}`, `-d${duration}s`, '--latency', '-s', script, url];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', () => {
      const result = parseWrk(out);
      if (Number.isNaN(result.rps)) process.stderr.write(`wrk output not understood:\n${out}\n${err}\n`);
      resolve(result);
    });
  });
}

/** Where a request goes and how it authenticates. */
export interface Target {
  apiKey: string;
  urlPath: string;
}

function headersLua(target: Target): string {
  return `
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "${target.apiKey}"
`;
}

/**
 * Writes a wrk script posting single rows of named features, every one distinct (so a prediction
 * cache never answers): 1000 prefixes of `nFeatures - 1` random values, and the last feature a
 * per-request counter, so building a body is one concatenation. Threads start at different counters
 * and are kept in the global `threads` (for a `done` callback in `extraLua`, which is appended).
 */
export function writeSingleRowScript(file: string, target: Target, nFeatures: number, extraLua = ''): void {
  writeFileSync(
    file,
    `
local prefixes = {}
math.randomseed(42)
for i = 1, 1000 do
  local parts = {}
  for j = 1, ${nFeatures - 1} do parts[#parts + 1] = string.format('"feature_%d":%.4f', j, math.random() * 50) end
  prefixes[i] = '{' .. table.concat(parts, ',') .. ',"feature_${nFeatures}":'
end
local counter = 0
local id = 0
threads = {}
setup = function(thread) id = id + 1; thread:set("tid", id); threads[id] = thread end
init = function() counter = tid * 100000000 end
${headersLua(target)}
request = function()
  counter = counter + 1
  return wrk.format(nil, "${target.urlPath}", nil, prefixes[(counter % 1000) + 1] .. (counter % 1000003) * 0.001 .. '}')
end
${extraLua}
`,
  );
}

/**
 * Writes a wrk script that posts the bodies of `bodiesFile` (one JSON body per line) in turn. Each
 * thread reads the file in its own init and starts `lines / threads` bodies after the previous one,
 * so the threads never send the same body at the same time.
 */
export function writeCyclingBodiesScript(file: string, target: Target, bodiesFile: string): void {
  writeFileSync(
    file,
    `
local id = 0
setup = function(thread) id = id + 1; thread:set("tid", id) end
local bodies = {}
local next_body = 1
init = function()
  for line in io.lines("${bodiesFile}") do bodies[#bodies + 1] = line end
  next_body = ((tid - 1) * math.floor(#bodies / ${WRK_THREADS})) % #bodies + 1
end
${headersLua(target)}
request = function()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format(nil, "${target.urlPath}", nil, body)
end
`,
  );
}
