import type { App } from './app-type.ts';

/**
 * Security headers on every response. They are the same for every reply, so they are computed
 * once: @fastify/helmet builds its middleware chain on every request, which measured at about a
 * fifth of a single prediction's CPU here. The Content-Security-Policy admits what Swagger UI and
 * ReDoc need (inline bootstrap code, a blob: worker); JSON replies are unaffected by it.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
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

const ENTRIES = Object.entries(SECURITY_HEADERS);

export function installSecurityHeaders(app: App): void {
  app.addHook('onRequest', (_request, reply, done) => {
    for (const [name, value] of ENTRIES) reply.raw.setHeader(name, value);
    done();
  });
}
