import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import type { App } from '../../src/platform/app-type.ts';
import { installDocsUi, installOpenApi } from '../../src/platform/docs.ts';

describe('OpenAPI document built on first use', { timeout: 60_000 }, () => {
  test('refused before the app is ready (routes could still come), then made of every route, hidden ones left out', async () => {
    const app = Fastify() as unknown as App;
    installOpenApi(app, { title: 'docs-test', version: '1' });
    app.get('/things', { config: { role: 'read' }, schema: { summary: 'list things' } }, async () => ({}));
    app.get('/secret', { schema: { hide: true } }, async () => ({}));
    installDocsUi(app);
    await assert.rejects(app.openApiDocument(), /once the app is ready/);
    await app.ready();
    const doc = (await app.openApiDocument()) as { info: { title: string }; paths: Record<string, { get?: { summary?: string; security?: unknown } }> };
    assert.equal(doc.info.title, 'docs-test');
    assert.equal(doc.paths['/things']?.get?.summary, 'list things');
    assert.ok(doc.paths['/things']?.get?.security, 'a route that needs a key says so');
    assert.equal(doc.paths['/secret'], undefined);
    assert.equal(doc.paths['/docs'], undefined);
    const page = await app.inject({ url: '/docs/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /swagger/i);
    const asset = await app.inject({ url: '/docs/static/swagger-ui.css' });
    assert.equal(asset.statusCode, 200);
    assert.match(String(asset.headers['content-type']), /text\/css/);
    await app.close();
  });
});
