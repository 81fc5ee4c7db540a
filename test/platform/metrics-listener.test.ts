/**
 * The PROMETHEUS_PORT listener (`listenMetrics`) that the API server and `modelplane worker` share:
 * `/metrics` and `/health` only, the key check of METRICS_REQUIRE_AUTH, and an error naming
 * PROMETHEUS_PORT when the port is taken.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import type { Principal } from '../../src/platform/auth.ts';
import { createLogger } from '../../src/platform/logging.ts';
import { listenMetrics, type MetricsListener, type MetricsListenerOptions } from '../../src/platform/metrics.ts';

const log = createLogger(loadConfig({ LOG_LEVEL: 'silent' }), { pretty: false });
const TEXT = '# HELP up_test a test\n# TYPE up_test gauge\nup_test 1\n';
const READER: Principal = { keyId: 'k1', name: 'scraper', role: 'read' };

describe('the metrics listener', { timeout: 60_000 }, () => {
  const open: MetricsListener[] = [];
  after(async () => {
    for (const l of open) await l.close();
  });
  const start = async (options: Partial<MetricsListenerOptions> = {}): Promise<{ base: string; listener: MetricsListener }> => {
    const listener = await listenMetrics({ host: '127.0.0.1', port: 0, metrics: { render: async () => TEXT, contentType: 'text/plain; version=0.0.4; charset=utf-8' }, log, ...options });
    open.push(listener);
    return { base: `http://127.0.0.1:${listener.port}`, listener };
  };

  test('GET /metrics: the rendered text with its content type; /health 200; anything else 404 or 405', async () => {
    const { base, listener } = await start();
    assert.equal(listener.url, `${base}/metrics`);
    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.equal(metrics.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(await metrics.text(), TEXT);
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    assert.equal((await fetch(`${base}/health`, { method: 'HEAD' })).status, 200);
    const missing = await fetch(`${base}/ready`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: string }).error, 'not_found');
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('metrics off (ENABLE_PROMETHEUS=false): /metrics 404 naming the setting, /health 200', async () => {
    const { base } = await start({ metrics: undefined });
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { details: string }).details, /ENABLE_PROMETHEUS=false/);
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });

  test('a failing render answers 500', async () => {
    const { base } = await start({ metrics: { render: () => Promise.reject(new Error('collect failed')), contentType: 'text/plain' } });
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 500);
    assert.equal(((await res.json()) as { error: string }).error, 'internal_error');
  });

  test('with a key check: 401 without a key or with an unknown one, 200 with a known one, 503 when keys cannot be checked; /health stays public', async () => {
    const { base } = await start({ authenticate: async (key) => (key === 'good-key' ? READER : undefined) });
    const none = await fetch(`${base}/metrics`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await fetch(`${base}/metrics`, { headers: { 'x-api-key': 'bad-key' } })).status, 401);
    const bearer = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer good-key' } });
    assert.equal(bearer.status, 200);
    assert.equal(await bearer.text(), TEXT);
    assert.equal((await fetch(`${base}/metrics`, { headers: { 'x-api-key': 'good-key' } })).status, 200);
    assert.equal((await fetch(`${base}/health`)).status, 200);

    const { base: down } = await start({ authenticate: () => Promise.reject(new Error('store unreachable')) });
    const unavailable = await fetch(`${down}/metrics`, { headers: { 'x-api-key': 'good-key' } });
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.headers.get('retry-after'), '5');
  });

  test('a port in use: the error names PROMETHEUS_PORT and the address', async () => {
    const { listener } = await start();
    await assert.rejects(
      listenMetrics({ host: '127.0.0.1', port: listener.port, metrics: undefined, log }),
      (err: Error) => err.message.startsWith(`PROMETHEUS_PORT: the metrics listener cannot listen on 127.0.0.1:${listener.port}`) && /EADDRINUSE/.test(err.message),
    );
  });

  test('close does not wait for a kept-alive scraper connection', async () => {
    const listener = await listenMetrics({ host: '127.0.0.1', port: 0, metrics: { render: async () => TEXT, contentType: 'text/plain' }, log });
    const res = await fetch(`http://127.0.0.1:${listener.port}/metrics`, { headers: { connection: 'keep-alive' } });
    await res.text();
    await listener.close();
    await assert.rejects(fetch(`http://127.0.0.1:${listener.port}/health`));
  });
});
