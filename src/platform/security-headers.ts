import type { App } from './app-type.ts';

/**
 * Headers for JSON API responses (OWASP's REST recommendations): no MIME sniffing, and a policy
 * that forbids any content or framing, which costs nothing for JSON and closes the door if a
 * browser is ever tricked into rendering a reply. Few on purpose: every header is validated and
 * written on every response, and predictions are thousands of responses a second.
 */
export const API_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
});

/**
 * Helmet's defaults for the HTML pages (Swagger UI at /docs, ReDoc at /redoc). Their
 * Content-Security-Policy admits what those UIs need (inline bootstrap code, a blob: worker).
 * Computed once: @fastify/helmet builds its middleware chain on every request, which measured at
 * about a fifth of a single prediction's CPU here.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline' https:; img-src 'self' data: blob:; " +
    "font-src 'self' https: data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
});

const API_ENTRIES = Object.entries(API_HEADERS);
const PAGE_ENTRIES = Object.entries(PAGE_HEADERS);

/** Whether a route serves an HTML page (or its assets) rather than the JSON API. */
function isPageRoute(url: string): boolean {
  return url === '/docs' || url.startsWith('/docs/') || url === '/redoc' || url.startsWith('/redoc/');
}

/**
 * One `onRequest` hook for every response: echoes the request id (the caller's well-formed
 * `x-request-id`, or the generated one) and sets the API headers. Page routes get the page set on
 * top through a route-level hook. Register before any route.
 */
export function installResponseHeaders(app: App): void {
  app.addHook('onRequest', (request, reply, done) => {
    const res = reply.raw;
    res.setHeader('x-request-id', request.id);
    for (const [name, value] of API_ENTRIES) res.setHeader(name, value);
    done();
  });
  app.addHook('onRoute', (route) => {
    if (!isPageRoute(route.url ?? route.path)) return;
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [
      ...own,
      (_request, reply, done) => {
        for (const [name, value] of PAGE_ENTRIES) reply.raw.setHeader(name, value);
        done();
      },
    ];
  });
}
