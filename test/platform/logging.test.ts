import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { closeContext, openContext } from '../../src/context.ts';
import { createLogger } from '../../src/platform/logging.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('logging', () => {
  test('secrets in headers and config are redacted', () => {
    const out = capture();
    const log = createLogger({ logLevel: 'info' }, { destination: out.stream });
    log.info({ req: { headers: { authorization: 'Bearer mp_secret', 'x-api-key': 'mp_secret2' } }, apiKey: 'mp_secret3' }, 'hello');
    const text = JSON.stringify(out.lines());
    assert.ok(!text.includes('mp_secret'), text);
    assert.ok(text.includes('[redacted]'));
  });

  test('request lines carry the request id and never the API key', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-log-'));
    const out = capture();
    const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'debug' });
    const log = createLogger(config, { destination: out.stream });
    const ctx = await openContext(config, log);
    const app = await buildApp(ctx);
    try {
      await ctx.services.start();
      const { key } = await ctx.services.keys.create('t', 'read', 'test');
      await app.inject({ url: '/info?x=1', headers: { 'x-api-key': key, 'x-request-id': 'rid-42' } });
      await app.inject({ url: '/info', headers: { authorization: `Bearer ${key}` } });
      const lines = out.lines();
      const text = JSON.stringify(lines);
      assert.ok(!text.includes(key), 'the key never reaches the log');
      const requestLines = lines.filter((l) => l['reqId'] === 'rid-42');
      assert.ok(requestLines.length >= 2, 'incoming and completed lines carry the request id');
    } finally {
      await app.close();
      await closeContext(ctx);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  for (const debug of [true, false]) {
    test(`API_DEBUG=${debug}: refused requests are ${debug ? '' : 'not '}logged with their cause; replies are the same`, async () => {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-log-'));
      const out = capture();
      const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'info', API_DEBUG: String(debug) });
      const ctx = await openContext(config, createLogger(config, { destination: out.stream }));
      const app = await buildApp(ctx);
      try {
        await ctx.services.start();
        const { key } = await ctx.services.keys.create('t', 'read', 'test');
        const res = await app.inject({ url: '/models/no-such-model', headers: { 'x-api-key': key } });
        assert.equal(res.statusCode, 404);
        assert.deepEqual(Object.keys(res.json()).sort(), ['details', 'error', 'request_id', 'timestamp']);
        const logged = out.lines().filter((l) => l['msg'] === `request failed: ${res.json().details}`);
        assert.equal(logged.length, debug ? 1 : 0);
        if (debug) assert.ok(typeof (logged[0]!['err'] as { stack?: unknown }).stack === 'string', 'the stack is in the log');
      } finally {
        await app.close();
        await closeContext(ctx);
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
