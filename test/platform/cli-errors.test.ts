/**
 * The CLI's error lines (#12): an unknown command says so, an unreachable server is named with
 * the cause, and output piped into a reader that stops early (`| head`) ends quietly.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

const CLI = path.resolve(import.meta.dirname, '../../bin/modelplane.js');

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('CLI error lines (#12)', { timeout: 300_000 }, () => {
  it('an unknown command is named as one, not as an argument of serve', () => {
    const r = run(['frobnicate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
    assert.doesNotMatch(r.stderr, /too many arguments/);
  });

  it('an unreachable server is named with the cause', () => {
    // Port 5999 on loopback: nothing listens there in the test environment.
    const r = run(['datasets', 'list', '--url', 'http://127.0.0.1:5999']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the server at http:\/\/127\.0\.0\.1:5999/);
    assert.match(r.stderr, /ECONNREFUSED/);
    assert.doesNotMatch(r.stderr, /^modelplane: fetch failed$/m);
  });

  it('a closed stdout pipe (| head) ends the command quietly', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-cli-'));
    const child = spawn(process.execPath, [CLI, 'datasets', 'list', '--json', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } });
    // The reader goes away before the CLI writes anything.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.doesNotMatch(stderr, /EPIPE|Error/);
    rmSync(dataDir, { recursive: true, force: true });
    assert.equal(code, 0, stderr);
  });
});
