import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, storeBackends, type TestApp } from '../helper.ts';

/** The routes API.md lists as public (plus Swagger UI's own static files under /docs). */
const PUBLIC_ROUTES = new Set([
  'GET /',
  'GET /health',
  'GET /ready',
  'GET /ping',
  'GET /version',
  'GET /docs',
  'GET /redoc',
  'GET /openapi.json',
  'GET /v2/health/live',
  'GET /v2/health/ready',
  'GET /metrics',
  'GET /prometheus-metrics',
  // The web UI's static files (its data calls carry the user's key).
  'GET /ui',
  'GET /ui/*',
]);

function isPublicAllowed(method: string, url: string): boolean {
  const m = method === 'HEAD' ? 'GET' : method;
  if (PUBLIC_ROUTES.has(`${m} ${url}`)) return true;
  // Swagger UI's static assets and ReDoc's bundle belong to the documentation pages.
  return m === 'GET' && (url.startsWith('/docs/') || url === '/redoc/redoc.standalone.js');
}

/** Turns a route template into a concrete URL (`:name` -> `x`, `*` -> `x`). */
function concrete(url: string): string {
  return url.replace(/:[A-Za-z0-9_]+/g, 'x').replace(/\*/g, 'x');
}

for (const backend of await storeBackends()) {
  describe(`app on ${backend}`, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp({ backend });
    });
    after(async () => {
      await t.close();
    });

    test('health, readiness, version and root answer without a key', async () => {
      const health = await t.app.inject({ url: '/health' });
      assert.equal(health.statusCode, 200);
      const h = health.json();
      assert.equal(h.status, 'healthy');
      assert.equal(typeof h.uptime_seconds, 'number');
      assert.equal(h.model_loaded, false);
      assert.ok(!Number.isNaN(Date.parse(h.timestamp)));

      const ready = await t.app.inject({ url: '/ready' });
      assert.equal(ready.statusCode, 200);
      assert.equal(ready.json().checks.store.ok, true);

      assert.equal((await t.app.inject({ url: '/version' })).json().name, 'modelplane');
      assert.equal((await t.app.inject({ url: '/' })).json().links.docs, '/docs');
      // Without MLFLOW_TRACKING_URI, MLflow clients are pointed at the origin they called.
      assert.equal((await t.app.inject({ url: '/', headers: { host: 'models.example:8080' } })).json().mlflow_tracking_uri, 'http://models.example:8080');
    });

    test('/ping is 404 while no default model is loaded (MLflow scoring convention)', async () => {
      const r = await t.app.inject({ url: '/ping' });
      assert.equal(r.statusCode, 404);
    });

    test('every route declares a role and only the public list answers without a key', async () => {
      const routes = t.app.routeRoles;
      assert.ok(routes.length > 10);
      const unexpectedPublic = routes.filter((r) => r.role === 'public' && !isPublicAllowed(r.method, r.url));
      assert.deepEqual(unexpectedPublic, [], 'routes marked public that API.md does not list as public');
      for (const r of routes) {
        if (r.role === 'public' || r.method === 'HEAD' || r.method === 'OPTIONS') continue;
        const res = await t.app.inject({ method: r.method as 'GET', url: concrete(r.url), payload: r.method === 'GET' || r.method === 'DELETE' ? undefined : {} });
        assert.equal(res.statusCode, 401, `${r.method} ${r.url} answered ${res.statusCode} without a key`);
        const body = res.json();
        if (r.url === '/invocations' || r.url.startsWith('/api/2.0/mlflow') || r.url.startsWith('/ajax-api/2.0/mlflow')) {
          // MLflow surfaces answer in MLflow's error shape.
          assert.equal(body.error_code, 'UNAUTHENTICATED', `${r.method} ${r.url}`);
        } else if (r.url.startsWith('/v2')) {
          assert.equal(typeof body.error, 'string', `${r.method} ${r.url}`);
        } else {
          assert.equal(body.error, 'unauthorized', `${r.method} ${r.url}`);
          assert.equal(typeof body.request_id, 'string');
        }
      }
    });

    test('an unknown key is 401, a key with too small a role is 403, both with the native body', async () => {
      const unknown = await t.app.inject({ url: '/info', headers: { 'x-api-key': 'mp_not-a-real-key' } });
      assert.equal(unknown.statusCode, 401);
      assert.equal(unknown.json().error, 'unauthorized');
      const weak = await t.app.inject({ url: '/keys', headers: t.headers('train') });
      assert.equal(weak.statusCode, 403);
      const body = weak.json();
      assert.equal(body.error, 'forbidden');
      assert.match(body.details, /admin/);
      assert.ok(body.timestamp && body.request_id);
    });

    test('Bearer and Basic (password = key) are accepted like X-API-Key', async () => {
      const bearer = await t.app.inject({ url: '/info', headers: { authorization: `Bearer ${t.keys.read}` } });
      assert.equal(bearer.statusCode, 200);
      const basic = Buffer.from(`user:${t.keys.read}`).toString('base64');
      assert.equal((await t.app.inject({ url: '/info', headers: { authorization: `Basic ${basic}` } })).statusCode, 200);
    });

    test('roles are ordered read < predict < train < admin', async () => {
      for (const role of ['read', 'predict', 'train', 'admin'] as const) {
        const r = await t.app.inject({ url: '/health/system', headers: t.headers(role) });
        assert.equal(r.statusCode, 200, role);
      }
      for (const role of ['read', 'predict', 'train'] as const) {
        assert.equal((await t.app.inject({ url: '/keys', headers: t.headers(role) })).statusCode, 403, role);
      }
      assert.equal((await t.app.inject({ url: '/keys', headers: t.headers('admin') })).statusCode, 200);
    });

    test('unknown routes are 404 with the native body', async () => {
      const r = await t.app.inject({ url: '/no/such/route' });
      assert.equal(r.statusCode, 404);
      assert.equal(r.json().error, 'not_found');
    });

    test('x-request-id is echoed when given and generated otherwise', async () => {
      const echoed = await t.app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } });
      assert.equal(echoed.headers['x-request-id'], 'abc-123');
      const generated = await t.app.inject({ url: '/health' });
      assert.match(String(generated.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      // An id that breaks the rule (quotes, spaces, too long) is replaced, never echoed or logged.
      for (const bad of ['a"b', 'has space', 'x'.repeat(129)]) {
        const replaced = await t.app.inject({ url: '/health', headers: { 'x-request-id': bad } });
        assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      }
      const err = await t.app.inject({ url: '/nope', headers: { 'x-request-id': 'req-9' } });
      assert.equal(err.json().request_id, 'req-9');
    });

    test('malformed JSON is a 400, a schema violation names the field', async () => {
      const malformed = await t.app.inject({
        method: 'POST',
        url: '/keys',
        headers: { ...t.headers('admin'), 'content-type': 'application/json' },
        payload: '{"name": ',
      });
      assert.equal(malformed.statusCode, 400);
      assert.equal(malformed.json().error, 'bad_request');

      const invalid = await t.app.inject({ method: 'POST', url: '/keys', headers: t.headers('admin'), payload: { name: 'x', role: 'root' } });
      assert.equal(invalid.statusCode, 400);
      const body = invalid.json();
      assert.equal(body.error, 'validation_error');
      assert.ok(body.errors.some((e: { path: string }) => e.path === '/role'), JSON.stringify(body.errors));

      const missing = await t.app.inject({ method: 'POST', url: '/keys', headers: t.headers('admin'), payload: { role: 'read' } });
      assert.ok(missing.json().errors.some((e: { path: string }) => e.path === '/name'));
    });

    test('wrong content type is 415', async () => {
      const r = await t.app.inject({ method: 'POST', url: '/keys', headers: { ...t.headers('admin'), 'content-type': 'application/xml' }, payload: '<a/>' });
      assert.equal(r.statusCode, 415);
      assert.equal(r.json().error, 'unsupported_media_type');
    });

    test('security headers: the lean API set on JSON, the page set on the documentation UIs', async () => {
      const r = await t.app.inject({ url: '/health' });
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
      assert.equal(r.headers['x-frame-options'], 'DENY');
      for (const url of ['/docs/', '/redoc']) {
        const page = await t.app.inject({ url });
        assert.equal(page.statusCode, 200, url);
        assert.match(String(page.headers['content-security-policy']), /script-src 'self' 'unsafe-inline'/, url);
        assert.equal(page.headers['x-frame-options'], 'SAMEORIGIN', url);
        assert.ok(page.headers['strict-transport-security'], url);
      }
    });

    test('keys: create over HTTP, use, list without secrets, revoke', async () => {
      const created = await t.app.inject({ method: 'POST', url: '/keys', headers: t.headers('admin'), payload: { name: 'ci-reader', role: 'read' } });
      assert.equal(created.statusCode, 201);
      const { key, id } = created.json();
      assert.match(key, /^mp_/);
      assert.equal((await t.app.inject({ url: '/info', headers: { 'x-api-key': key } })).statusCode, 200);
      const list = await t.app.inject({ url: '/keys', headers: t.headers('admin') });
      assert.ok(!list.body.includes(key));
      assert.ok(list.json().keys.some((k: { id: string }) => k.id === id));
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/keys/${id}`, headers: t.headers('admin') })).statusCode, 200);
      assert.equal((await t.app.inject({ url: '/info', headers: { 'x-api-key': key } })).statusCode, 401);
      assert.equal((await t.app.inject({ method: 'DELETE', url: `/keys/${id}`, headers: t.headers('admin') })).statusCode, 404);
    });

    test('the key hash, not the key, is stored', async () => {
      const rows = await t.backends.store.db.selectFrom('api_keys').selectAll().execute();
      const dump = JSON.stringify(rows);
      for (const key of Object.values(t.keys)) assert.ok(!dump.includes(key));
    });

    test('info and health sections need read and show backends without secrets', async () => {
      const info = await t.app.inject({ url: '/info', headers: t.headers('read') });
      const body = info.json();
      assert.equal(body.backends.store.startsWith(backend), true);
      assert.ok(body.limits.max_batch_size > 0);
      for (const url of ['/health/detailed', '/health/system', '/health/gpu']) {
        const r = await t.app.inject({ url, headers: t.headers('read') });
        assert.equal(r.statusCode, 200, url);
      }
      const sys = (await t.app.inject({ url: '/health/system', headers: t.headers('read') })).json();
      assert.ok(sys.memory.process_rss_bytes > 0);
      assert.equal(typeof sys.event_loop.p99_ms, 'number');
      const gpu = (await t.app.inject({ url: '/health/gpu', headers: t.headers('read') })).json();
      assert.equal(typeof gpu.available, 'boolean');
    });

    test('metrics use route templates and include the API.md names', async () => {
      await t.app.inject({ url: '/keys/some-id-1', method: 'DELETE', headers: t.headers('admin') });
      const r = await t.app.inject({ url: '/metrics' });
      assert.equal(r.statusCode, 200);
      assert.match(String(r.headers['content-type']), /text\/plain/);
      for (const name of ['api_requests_total', 'api_request_duration_seconds', 'api_uptime_seconds', 'errors_total', 'model_loaded', 'process_resident_memory_bytes']) {
        assert.ok(r.body.includes(name), name);
      }
      assert.ok(r.body.includes('endpoint="/keys/:id"'));
      assert.ok(!r.body.includes('some-id-1'));
      assert.match(r.body, /errors_total\{type="not_found",endpoint="\/keys\/:id"\} [1-9]/);
      assert.equal((await t.app.inject({ url: '/prometheus-metrics' })).statusCode, 200);
    });

    test('OpenAPI document covers every documented route with a summary and responses', async () => {
      const doc = (await t.app.inject({ url: '/openapi.json' })).json();
      assert.equal(doc.openapi.startsWith('3.'), true);
      let operations = 0;
      for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { summary?: string; responses?: object }>>)) {
        for (const [method, op] of Object.entries(item)) {
          operations++;
          assert.ok(op.summary, `${method} ${path} has no summary`);
          assert.ok(op.responses && Object.keys(op.responses).length > 0, `${method} ${path} has no responses`);
        }
      }
      assert.ok(operations >= 10);
      assert.ok(doc.paths['/keys'].post.security);
      const docs = await t.app.inject({ url: '/docs/' });
      assert.equal(docs.statusCode, 200);
      assert.match(docs.body, /swagger/i);
      const redoc = await t.app.inject({ url: '/redoc' });
      assert.match(redoc.body, /redoc\.standalone\.js/);
      const bundle = await t.app.inject({ url: '/redoc/redoc.standalone.js' });
      assert.equal(bundle.statusCode, 200);
      assert.ok(bundle.body.length > 100_000, 'ReDoc is served from the installed package, not a CDN');
    });
  });
}

describe('app options', () => {
  test('bodies over BODY_LIMIT_BYTES are 413 with the native body', async () => {
    const t = await buildTestApp({ env: { BODY_LIMIT_BYTES: '2048' } });
    try {
      const r = await t.app.inject({ method: 'POST', url: '/keys', headers: t.headers('admin'), payload: { name: 'x'.repeat(5000), role: 'read' } });
      assert.equal(r.statusCode, 413);
      assert.equal(r.json().error, 'payload_too_large');
    } finally {
      await t.close();
    }
  });

  test('rate limit per key answers 429 with Retry-After', async () => {
    const t = await buildTestApp({ env: { RATE_LIMIT_PER_MINUTE: '3' } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 4; i++) codes.push((await t.app.inject({ url: '/info', headers: t.headers('read') })).statusCode);
      assert.deepEqual(codes, [200, 200, 200, 429]);
      const limited = await t.app.inject({ url: '/info', headers: t.headers('read') });
      assert.equal(limited.json().error, 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      // Another key has its own budget; probes are never limited.
      assert.equal((await t.app.inject({ url: '/info', headers: t.headers('admin') })).statusCode, 200);
      for (let i = 0; i < 5; i++) assert.equal((await t.app.inject({ url: '/health' })).statusCode, 200);
    } finally {
      await t.close();
    }
  });

  test('CORS follows CORS_ORIGINS', async () => {
    const t = await buildTestApp({ env: { CORS_ORIGINS: 'https://ui.example' } });
    try {
      const ok = await t.app.inject({ url: '/health', headers: { origin: 'https://ui.example' } });
      assert.equal(ok.headers['access-control-allow-origin'], 'https://ui.example');
      const other = await t.app.inject({ url: '/health', headers: { origin: 'https://evil.example' } });
      assert.equal(other.headers['access-control-allow-origin'], undefined);
    } finally {
      await t.close();
    }
  });

  test('METRICS_REQUIRE_AUTH protects /metrics; DOCS_ENABLED=false removes the docs', async () => {
    const t = await buildTestApp({ env: { METRICS_REQUIRE_AUTH: 'true', DOCS_ENABLED: 'false' } });
    try {
      assert.equal((await t.app.inject({ url: '/metrics' })).statusCode, 401);
      assert.equal((await t.app.inject({ url: '/metrics', headers: t.headers('read') })).statusCode, 200);
      assert.equal((await t.app.inject({ url: '/docs' })).statusCode, 404);
      assert.equal((await t.app.inject({ url: '/openapi.json' })).statusCode, 404);
    } finally {
      await t.close();
    }
  });

  test('API_KEY from the environment is an admin key', async () => {
    const apiKey = 'env-admin-key-0123456789';
    const t = await buildTestApp({ env: { API_KEY: apiKey } });
    try {
      assert.equal((await t.app.inject({ url: '/keys', headers: { 'x-api-key': apiKey } })).statusCode, 200);
    } finally {
      await t.close();
    }
  });

  test('MLFLOW_TRACKING_URI is what / and /info tell MLflow clients to use', async () => {
    const t = await buildTestApp({ env: { MLFLOW_TRACKING_URI: 'https://ml.example.com' } });
    try {
      assert.equal((await t.app.inject({ url: '/' })).json().mlflow_tracking_uri, 'https://ml.example.com');
      assert.equal((await t.app.inject({ url: '/info', headers: t.headers('read') })).json().mlflow_tracking_uri, 'https://ml.example.com');
    } finally {
      await t.close();
    }
  });

  test('every route schema compiles (they compile on first use in production, so a bad one must fail here)', async () => {
    const t = await buildTestApp();
    try {
      await t.app.compileSchemas();
      // Compiled functions are shared between routes with the same schema: answers are unchanged.
      const res = await t.app.inject({ url: '/models?limit=0', headers: t.headers('read') });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error, 'validation_error');
    } finally {
      await t.close();
    }
  });
});
