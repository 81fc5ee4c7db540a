/**
 * The production bundle (scripts/bundle.mjs, what `npm run build:server`, `npm start` and the image
 * run): built into a scratch folder beside dist/, then started as a real process. Every entry point
 * is exercised: the CLI and server, the training process with the job handler it imports by URL, the
 * forest's tree-building threads (n_jobs 2; gradient boosting's histogram threads are only checked to be
 * bundled), the inference thread (INFERENCE_THREAD) and the
 * CSV parser thread, and the prediction log's writes from the bundled server; so are the files found by path (package.json for the version,
 * ui/dist, the API-docs assets) and the modules left outside the bundle (pino, Swagger,
 * onnxruntime, better-sqlite3).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from './production/faults.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = `.bundle-test-${process.pid}`;
const DEADLINE_MS = 180_000;


describe('production bundle', { timeout: 300_000 }, () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-bundle-'));
  let child: ChildProcess | undefined;
  let base = '';
  let key = '';
  let stderr = '';
  let out = '';

  before(async () => {
    const built = spawnSync(process.execPath, ['scripts/bundle.mjs', '--outdir', OUT], { cwd: ROOT, encoding: 'utf8', timeout: DEADLINE_MS });
    assert.equal(built.status, 0, built.stderr);
    const port = await freePort();
    child = spawn(process.execPath, [path.join(ROOT, OUT, 'main.js'), 'serve', '--demo', '--port', String(port)], {
      env: { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_FORMAT: 'json', INFERENCE_THREAD: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // Not left running if this test process is killed before its after hook runs.
    process.once('exit', () => child?.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bundled server did not start within ${DEADLINE_MS} ms: ${stderr}`)), DEADLINE_MS);
      child!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('"msg":"modelplane ready"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child!.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`bundled server exited with ${code}: ${stderr}`));
      });
    });
    base = `http://127.0.0.1:${port}`;
    key = readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim();
  });

  after(() => {
    child?.kill('SIGKILL');
    rmSync(path.join(ROOT, OUT), { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  const call = (p: string, init: RequestInit = {}): Promise<Response> =>
    fetch(base + p, { ...init, headers: { 'x-api-key': key, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });

  test('one file per entry point, chunks beside them', () => {
    for (const entry of ['main', 'worker.child', 'train-handler', 'forest-worker', 'gbdt-worker', 'inference-worker', 'csv-parser.thread']) {
      assert.ok(existsSync(path.join(ROOT, OUT, `${entry}.js`)), entry);
    }
  });

  test('serves the demo model through the inference thread, with the version from package.json', async () => {
    const r = await call('/predict', { method: 'POST', body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }) });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { model_name: string }).model_name, 'iris-demo');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const info = (await (await call('/')).json()) as { version: string };
    assert.equal(info.version, pkg.version);
  });

  test('the prediction log is written by the bundled server', async () => {
    // Flushed every 250 ms; polled with the file's time limit as the deadline.
    let logged: unknown[] = [];
    while (logged.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      logged = ((await (await call('/predictions?model=iris-demo')).json()) as { predictions: unknown[] }).predictions;
    }
    assert.ok(logged.length >= 1);
  });

  test('a CSV upload is parsed by the parser thread', async () => {
    const r = await call('/datasets/bundled-upload', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'x,y\n1,a\n2,b\n3,a\n' });
    assert.equal(r.status, 201, await r.clone().text());
    assert.equal(((await r.json()) as { rows: number }).rows, 3);
    const bad = await call('/datasets/bundled-upload', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'x,y\n1,a\n2\n' });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: string; details: string };
    assert.equal(body.error, 'invalid_dataset');
    assert.match(body.details, /line 3 has 1 fields, header has 2/);
  });

  test('trains a forest on two threads and registers it', async () => {
    const body = { dataset: { name: 'iris' }, target: 'target', algorithm: 'random_forest', params: { n_estimators: 8, n_jobs: 2 }, register_as: 'bundled-forest' };
    const r = await call('/train', { method: 'POST', body: JSON.stringify(body) });
    assert.equal(r.status, 202, await r.clone().text());
    const { job_id } = (await r.json()) as { job_id: string };
    let status: { status: string; error: unknown; model: { name: string } | null } = { status: 'queued', error: null, model: null };
    while (status.status === 'queued' || status.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = (await (await call(`/train/status/${job_id}`)).json()) as typeof status;
    }
    assert.equal(status.status, 'succeeded', JSON.stringify(status.error));
    assert.equal(status.model?.name, 'bundled-forest');
  });

  test('the API docs and the OpenAPI description are found, and the dashboard where it is built', async () => {
    for (const p of ['/docs', '/openapi.json']) {
      const r = await call(p);
      assert.equal(r.status, 200, p);
      await r.arrayBuffer(); // read whole: an unread answer would hold its connection through the shutdown below
    }
    const redoc = await call('/redoc/redoc.standalone.js');
    assert.equal(redoc.status, 200);
    assert.ok((await redoc.arrayBuffer()).byteLength > 100_000, 'the ReDoc bundle is streamed whole');
    // ui/dist exists once `npm run build:ui` ran (CI runs the suite before that); without it /ui
    // answers 503 "not built", so only a built dashboard tells whether its folder was found.
    const ui = await call('/ui/');
    await ui.arrayBuffer();
    if (existsSync(path.join(ROOT, 'ui', 'dist', 'index.html'))) assert.equal(ui.status, 200);
    else assert.equal(ui.status, 503);
  });

  test('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child!.kill('SIGTERM');
    assert.equal(await exited, 0, stderr + out.slice(-3000));
    child = undefined;
  });
});
