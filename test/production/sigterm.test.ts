/**
 * SIGTERM of a real server process under load (issue 11), behind a balancer that sends only to a
 * backend whose last `/ready` probe answered 200: readiness goes false first, requests keep being
 * answered while the balancer notices, kept-alive connections are closed by the server after an
 * answer rather than cut under a request, and the process exits 0. Zero failed requests.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort, waitFor } from './faults.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KEY = 'sigterm-test-admin-key-0123456789abcdef';

interface Probe {
  readonly at: number;
  readonly status: number;
}

/** One GET; status 0 for a connection error (refused, reset). */
function get(url: string, agent: http.Agent | false, headers: Record<string, string> = {}): Promise<{ status: number; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, headers, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      res.on('error', (err) => resolve({ status: 0, error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, error: err.code ?? err.message }));
  });
}

describe('SIGTERM under load', { timeout: 240_000 }, () => {
  let child: ChildProcess | undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-sigterm-'));
  after(() => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('readiness false first, every request answered, exit 0', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/main.ts'), 'serve'], {
      cwd: ROOT,
      env: { ...process.env, DATA_DIR: dir, API_KEY: KEY, API_HOST: '127.0.0.1', API_PORT: String(port), LOG_LEVEL: 'warn', SHUTDOWN_TIMEOUT: '10', SHUTDOWN_DRAIN_SECONDS: '1', DATABASE_URL: '', REDIS_URL: '', MODEL_NAME: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child!.once('exit', (code) => resolve({ code, at: Date.now() })));
    await waitFor('the server to answer /ready', async () => ((await get(`${base}/ready`, false)).status === 200 ? true : undefined), 180_000, 250);

    // The balancer: probes /ready every 100 ms on a fresh connection; sends only while the last answer was 200.
    const probes: Probe[] = [];
    let healthy = true;
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const r = await get(`${base}/ready`, false);
        probes.push({ at: Date.now(), status: r.status });
        healthy = r.status === 200;
        await new Promise((res) => setTimeout(res, 100));
      }
    })();

    // Open-loop load over kept-alive connections: a request every 10 ms while the backend is healthy.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const results: Array<{ status: number; error?: string }> = [];
    const inFlight = new Set<Promise<void>>();
    let loading = true;
    const load = (async () => {
      while (loading) {
        if (healthy) {
          const p = get(`${base}/info`, agent, { 'x-api-key': KEY }).then((r) => {
            results.push(r);
          });
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
        await new Promise((res) => setTimeout(res, 10));
      }
    })();

    await new Promise((res) => setTimeout(res, 2000));
    const signalledAt = Date.now();
    child.kill('SIGTERM');
    const exit = await exited;
    await new Promise((res) => setTimeout(res, 300));
    loading = false;
    probing = false;
    await Promise.all([load, prober, ...inFlight]);
    agent.destroy();

    assert.equal(exit.code, 0, stderr);
    const after = probes.filter((p) => p.at >= signalledAt);
    const firstBad = after.find((p) => p.status !== 200);
    assert.ok(firstBad !== undefined, 'readiness never went false');
    assert.equal(firstBad.status, 503, `the first failed probe after SIGTERM was ${firstBad.status} (0: connection refused)`);
    const failed = results.filter((r) => r.status !== 200);
    assert.ok(results.length > 100, `only ${results.length} requests sent`);
    assert.deepEqual(failed, [], `${failed.length} of ${results.length} requests failed`);
  });
});
