/**
 * The `/ui` static plugin on a fixture build (no Vite needed): index fallback for client routes,
 * 404 for missing assets, cache headers, precompressed files, its own CSP instead of the API's,
 * path traversal refused, and the answer when nothing was built.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { App } from '../../src/platform/app-type.ts';
import { installResponseHeaders } from '../../src/platform/security-headers.ts';
import { installUi } from '../../src/platform/ui.routes.ts';
import { buildTestApp, type TestApp } from '../helper.ts';

const INDEX = '<!doctype html><html><head><script type="module" src="/ui/assets/index-abc123.js"></script></head><body><div id="root"></div></body></html>';
const SCRIPT = 'console.log("dashboard");'.repeat(50);

function fixtureApp(distDir: string): App {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  installResponseHeaders(app);
  installUi(app, { distDir });
  return app;
}

describe('web UI static files', { timeout: 60_000 }, () => {
  let dir: string;
  let app: App;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'modelplane-ui-'));
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), INDEX);
    writeFileSync(path.join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), SCRIPT);
    writeFileSync(path.join(dir, 'assets', 'index-abc123.js.gz'), gzipSync(SCRIPT));
    writeFileSync(path.join(os.tmpdir(), 'modelplane-ui-secret.txt'), 'outside');
    app = fixtureApp(dir);
    await app.ready();
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the shell at /ui and /ui/, revalidated on every load, with its own CSP', async () => {
    for (const url of ['/ui', '/ui/']) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 200, url);
      assert.equal(r.body, INDEX);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.equal(r.headers['cache-control'], 'no-cache');
      const csp = String(r.headers['content-security-policy']);
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /connect-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(r.headers['x-frame-options'], 'DENY');
    }
  });

  test('client-side routes answer the shell; missing assets and files are 404, never the page', async () => {
    const route = await app.inject({ url: '/ui/experiments/iris/runs/abc?filter=x' });
    assert.equal(route.statusCode, 200);
    assert.equal(route.body, INDEX);
    const asset = await app.inject({ url: '/ui/assets/missing-123.js' });
    assert.equal(asset.statusCode, 404);
    assert.doesNotMatch(asset.body, /<html/);
    assert.equal((await app.inject({ url: '/ui/robots.txt' })).statusCode, 404);
  });

  test('hashed assets are cached for a year and sent gzipped to clients that accept it', async () => {
    const plain = await app.inject({ url: '/ui/assets/index-abc123.js' });
    assert.equal(plain.statusCode, 200);
    assert.equal(plain.body, SCRIPT);
    assert.match(String(plain.headers['content-type']), /^text\/javascript/);
    assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(plain.headers['content-encoding'], undefined);
    const gz = await app.inject({ url: '/ui/assets/index-abc123.js', headers: { 'accept-encoding': 'gzip, deflate, br' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers['vary'], 'accept-encoding');
    assert.ok(gz.rawPayload.length < SCRIPT.length);
    const other = await app.inject({ url: '/ui/favicon.svg' });
    assert.equal(other.headers['content-type'], 'image/svg+xml');
    assert.equal(other.headers['cache-control'], 'public, max-age=3600');
  });

  test('paths that leave the build folder are refused', async () => {
    for (const url of ['/ui/../modelplane-ui-secret.txt', '/ui/%2e%2e/modelplane-ui-secret.txt', '/ui/assets/..%2f..%2fmodelplane-ui-secret.txt', '/ui/%00.js']) {
      const r = await app.inject({ url });
      assert.notEqual(r.body, 'outside', url);
      assert.ok(r.statusCode === 404 || (r.statusCode === 200 && r.body === INDEX), `${url}: ${r.statusCode}`);
    }
  });

  test('without a build: 503 with a page for browsers and the native error body for others', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'modelplane-ui-empty-'));
    const bare = fixtureApp(empty);
    try {
      const json = await bare.inject({ url: '/ui/' });
      assert.equal(json.statusCode, 503);
      const body = json.json();
      assert.equal(body.error, 'ui_not_built');
      assert.match(body.details, /npm run build:ui/);
      assert.equal(typeof body.request_id, 'string');
      const page = await bare.inject({ url: '/ui/experiments', headers: { accept: 'text/html,application/xhtml+xml' } });
      assert.equal(page.statusCode, 503);
      assert.match(page.body, /npm run build:ui/);
      assert.match(String(page.headers['content-type']), /^text\/html/);
    } finally {
      await bare.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('web UI in the full app', { timeout: 60_000 }, () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => {
    await t.close();
  });

  test('/ui needs no key and is not an API operation of the OpenAPI document; API routes keep their CSP', async () => {
    const ui = await t.app.inject({ url: '/ui/' });
    assert.notEqual(ui.statusCode, 401);
    assert.ok([200, 503].includes(ui.statusCode), String(ui.statusCode));
    const doc = (await t.app.openApiDocument()) as { paths: Record<string, unknown> };
    assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/ui')));
    const api = await t.app.inject({ url: '/health' });
    assert.equal(api.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
  });
});
