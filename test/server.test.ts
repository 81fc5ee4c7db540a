import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { freePort } from './production/faults.ts';
import { TEST_DATABASE_URL, dropSchema, postgresAvailable, uniqueSchema } from './helper.ts';
import pg from 'pg';

const CLI = path.resolve(import.meta.dirname, '../bin/modelplane.js');


function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'modelplane-cli-'));
}

/** How long a server may take to start on a busy machine (a fresh clone runs the sources through tsx). */
const START_DEADLINE_MS = 180_000;

/** Runs the CLI to completion. */
function runCli(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, encoding: 'utf8', timeout: START_DEADLINE_MS });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Started {
  readonly child: ChildProcess;
  readonly base: string;
  readonly stderr: () => string;
  /** Everything the server printed so far, both streams (failure messages). */
  readonly output: () => string;
  readonly startedMs: number;
}

/** Every server a test started, killed at the end even when an assertion failed first. */
const started = new Set<ChildProcess>();

/**
 * Starts `modelplane serve` and resolves when it logs that it is ready (its "modelplane ready"
 * line, logged after it listens); rejects when it exits first or misses the deadline.
 */
async function startServer(args: string[], env: Record<string, string>): Promise<Started> {
  const port = await freePort();
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, 'serve', '--port', String(port), ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  child.once('exit', () => started.delete(child));
  let err = '';
  let out = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const base = `http://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${START_DEADLINE_MS} ms: ${err}`));
    }, START_DEADLINE_MS);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('"msg":"modelplane ready"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (${code}): ${err}`));
    });
  });
  return { child, base, stderr: () => err, output: () => `stdout:\n${out}\nstderr:\n${err}`, startedMs: Date.now() - t0 };
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/**
 * A request's status, with its body read: a response left unread holds its connection open on
 * the server, which a graceful shutdown then waits for.
 */
async function statusOf(url: string, init?: RequestInit): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

/** Asserts how a started server exited; a failure shows what it printed (its log says why). */
async function assertExit(s: Started, code: number): Promise<void> {
  const exited = await exitOf(s.child);
  assert.equal(exited, code, `exit code ${exited}; the server printed:\n${s.output().slice(-6000)}`);
}

const HAS_PG = await postgresAvailable();

describe('modelplane CLI and server process', () => {
  const dirs: string[] = [];
  after(() => {
    for (const child of started) child.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('an invalid variable stops the process with exit 1 and one line naming it', () => {
    const r = runCli(['serve'], { API_PORT: 'abc' });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /API_PORT/);
    assert.match(lines[0]!, /integer/);
    const db = runCli(['serve'], { DATABASE_URL: 'postgres//nope' });
    assert.equal(db.code, 1);
    assert.match(db.stderr, /DATABASE_URL/);
  });

  test('first start generates an admin key once, stores it 0600, and SIGTERM exits cleanly', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const s = await startServer([], { DATA_DIR: dataDir });
    const keyFile = path.join(dataDir, 'admin.key');
    const key = readFileSync(keyFile, 'utf8').trim();
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.ok(s.stderr().includes(key), 'the key is printed once at first start');
    assert.equal(await statusOf(`${s.base}/keys`), 401);
    assert.equal(await statusOf(`${s.base}/keys`, { headers: { 'x-api-key': key } }), 200);
    for (const url of ['/docs/', '/redoc', '/openapi.json', '/metrics', '/ready']) {
      assert.equal(await statusOf(`${s.base}${url}`), 200, url);
    }
    s.child.kill('SIGTERM');
    await assertExit(s, 0);

    // A second start with the same data directory keeps the key and prints nothing new.
    const again = await startServer([], { DATA_DIR: dataDir });
    assert.ok(!again.stderr().includes('admin key was generated'));
    assert.equal(await statusOf(`${again.base}/keys`, { headers: { 'x-api-key': key } }), 200);
    again.child.kill('SIGINT');
    await assertExit(again, 0);
  });

  test('keys create | list | revoke', () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const env = { DATA_DIR: dataDir };
    const created = runCli(['keys', 'create', '--role', 'predict', '--name', 'app'], env);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^mp_[A-Za-z0-9_-]{43}$/);
    const list = runCli(['keys', 'list', '--json'], env);
    const rows = JSON.parse(list.stdout) as Array<{ id: string; name: string; role: string }>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.role, 'predict');
    assert.ok(!list.stdout.includes(key));
    assert.equal(runCli(['keys', 'create', '--role', 'root'], env).code, 1);
    assert.equal(runCli(['keys', 'revoke', 'app'], env).code, 0);
    assert.equal(runCli(['keys', 'revoke', 'app'], env).code, 1);
    assert.equal(runCli(['migrate'], env).code, 0);
  });

  test('serve --workers 2 aggregates the metrics of all workers', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const s = await startServer(['--workers', '2'], { DATA_DIR: dataDir, API_KEY: 'cluster-admin-key-0123456789' });
    try {
      const n = 40;
      await Promise.all(Array.from({ length: n }, () => fetch(`${s.base}/version`).then((r) => r.text())));
      // A worker counts a request when the response finished on its side, which can be a moment
      // after the client has read it: poll briefly instead of reading once.
      let count = 0;
      let text = '';
      for (let i = 0; i < 50 && count !== n; i++) {
        text = await (await fetch(`${s.base}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith('api_requests_total{method="GET",endpoint="/version",status="200"}'));
        count = line === undefined ? 0 : Number(line.split(' ').pop());
        if (count !== n) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(count, n, `both workers counted: ${text.slice(0, 500)}`);
    } finally {
      s.child.kill('SIGTERM');
    }
    await assertExit(s, 0);
  });

  test('once quiet after its start, the server hands back the memory start-up left in the heap', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const s = await startServer([], { DATA_DIR: dataDir, LOG_LEVEL: 'debug' });
    try {
      const deadline = Date.now() + START_DEADLINE_MS;
      let line: { rss_before: number; rss_after: number; ms: number } | undefined;
      while (line === undefined) {
        const found = s.output().split('\n').find((l) => l.includes('"msg":"start-up memory handed back"'));
        if (found !== undefined) line = JSON.parse(found) as typeof line;
        else {
          assert.ok(Date.now() < deadline, `no collection after the start:\n${s.output().slice(-3000)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.ok(line !== undefined && line.rss_before > 0 && line.ms >= 0, JSON.stringify(line));
      // V8 12 (Node 22) and later shrink the young generation start-up grew; Node 20's runs a plain collection.
      if (Number(process.versions.v8.split('.')[0]) >= 12) assert.ok(line.rss_after < line.rss_before, JSON.stringify(line));
      assert.equal(await statusOf(`${s.base}/ready`), 200);
    } finally {
      s.child.kill('SIGTERM');
    }
    await assertExit(s, 0);
  });

  test('serve --demo --workers 2 on a fresh data directory registers the demo model once', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const s = await startServer(['--demo', '--workers', '2'], { DATA_DIR: dataDir, API_KEY: 'cluster-admin-key-0123456789' });
    try {
      // Both workers have started (each says so once it listens).
      const deadline = Date.now() + START_DEADLINE_MS;
      while (s.output().split('"msg":"modelplane ready"').length - 1 < 2) {
        assert.ok(Date.now() < deadline, `the second worker did not start:\n${s.output().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const r = await fetch(`${s.base}/models/iris-demo`, { headers: { 'x-api-key': 'cluster-admin-key-0123456789' } });
      assert.equal(r.status, 200);
      const model = (await r.json()) as { versions: { version: number }[] };
      assert.deepEqual(model.versions.map((v) => v.version), [1], 'one demo version, trained by one worker');
    } finally {
      s.child.kill('SIGTERM');
    }
    await assertExit(s, 0);
  });

  test('the same start works against PostgreSQL', { skip: !HAS_PG }, async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const schema = uniqueSchema('srv');
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    try {
      const url = `${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      const s = await startServer([], { DATA_DIR: dataDir, DATABASE_URL: url });
      const key = readFileSync(path.join(dataDir, 'admin.key'), 'utf8').trim();
      const info = await (await fetch(`${s.base}/info`, { headers: { 'x-api-key': key } })).json() as { backends: { store: string } };
      assert.match(info.backends.store, /^postgres:/);
      assert.equal((await fetch(`${s.base}/ready`)).status, 200);
      s.child.kill('SIGTERM');
      await assertExit(s, 0);
    } finally {
      await dropSchema(schema);
    }
  });
});
