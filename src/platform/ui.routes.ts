/**
 * The web dashboard at `/ui`: the static files Vite builds into `ui/dist`, served by the API
 * process itself (no CDN, works offline). Public per API.md: the shell holds no data, and every
 * call the dashboard makes carries the user's key.
 *
 * - Client-side routes (`/ui/experiments/x`) answer `index.html`; a missing file under
 *   `/ui/assets/` is a 404, never the page (a script tag must not receive HTML).
 * - Hashed assets are cached for a year; `index.html` is revalidated on every load so a new build
 *   is picked up at once.
 * - Files the build gzipped beforehand (`x.js.gz` beside `x.js`) are sent compressed to clients
 *   that accept gzip.
 * - Its own Content-Security-Policy, replacing the API's `default-src 'none'`: only this
 *   origin's scripts, styles and connections, no inline code, no framing.
 * - Without a build, `/ui` says how to make one (503) instead of a bare 404.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PACKAGE_ROOT } from '../paths.ts';
import type { App } from './app-type.ts';

/** Where `npm run build:ui` writes the dashboard (`ui/dist` at the package root). */
export const DEFAULT_UI_DIST = path.join(PACKAGE_ROOT, 'ui', 'dist');

/**
 * Headers of every `/ui` response. The policy admits the dashboard's own files only: scripts and
 * styles from this origin (no inline code: Vite emits none), API calls to this origin, images from
 * this origin and `data:`/`blob:` (chart exports, downloads).
 */
export const UI_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; " +
    "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
});

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';

export interface UiOptions {
  /** The built dashboard; default `ui/dist` of this package. */
  readonly distDir?: string;
}

/** Route-shaped entry point for `buildApp`'s feature list. */
export async function uiRoutes(app: App): Promise<void> {
  installUi(app);
}

/** Registers `GET /ui` and `GET /ui/*` (HEAD too) serving the built dashboard from `distDir`. */
export function installUi(app: App, options: UiOptions = {}): void {
  const root = path.resolve(options.distDir ?? DEFAULT_UI_DIST);
  const routeOptions = { config: { role: 'public' as const }, schema: { hide: true } };
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    for (const [name, value] of Object.entries(UI_HEADERS)) void reply.header(name, value);
    const rest = (request.params as { '*'?: string })['*'] ?? '';
    return serve(root, rest, request, reply);
  };
  app.get('/ui', routeOptions, handler);
  app.get('/ui/*', routeOptions, handler);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The file a request path names inside `root`, or `undefined` when it leaves it or is malformed. */
function resolveInside(root: string, requested: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(requested);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const file = path.resolve(root, `.${path.posix.normalize(`/${decoded}`)}`);
  return file === root || file.startsWith(`${root}${path.sep}`) ? file : undefined;
}

async function serve(root: string, requested: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const index = path.join(root, 'index.html');
  if (!(await isFile(index))) return notBuilt(request, reply);

  const file = requested === '' ? undefined : resolveInside(root, requested);
  if (file !== undefined && file !== root && (await isFile(file))) {
    const isAsset = requested.startsWith('assets/');
    return sendFile(file, isAsset ? IMMUTABLE : file === index ? 'no-cache' : 'public, max-age=3600', request, reply);
  }
  // A missing script or style must not receive the page (browsers would report a MIME mismatch).
  if (requested.startsWith('assets/') || path.posix.extname(requested) !== '') {
    return reply.code(404).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(`not found: /ui/${requested}\n`);
  }
  // A client-side route: the dashboard's router reads the path.
  return sendFile(index, 'no-cache', request, reply);
}

async function sendFile(file: string, cacheControl: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const type = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
  void reply.header('cache-control', cacheControl).header('vary', 'accept-encoding').type(type);
  const accepts = String(request.headers['accept-encoding'] ?? '');
  if (/\bgzip\b/.test(accepts) && (await isFile(`${file}.gz`))) {
    return reply.header('content-encoding', 'gzip').send(await readFile(`${file}.gz`));
  }
  return reply.send(await readFile(file));
}

/** The answer while `ui/dist` has no build: a page for browsers, the native error body for others. */
function notBuilt(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const details = 'the web UI is not built: run `npm run build:ui` in the modelplane package, then reload';
  void reply.code(503).header('cache-control', 'no-store');
  if (String(request.headers.accept ?? '').includes('text/html')) {
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>modelplane UI not built</title></head>` +
      `<body><main><h1>The modelplane web UI is not built</h1><p>Run <code>npm run build:ui</code> in the modelplane package, then reload this page. ` +
      `The HTTP API works without it: see <a href="/docs">/docs</a>.</p></main></body></html>`;
    return reply.type('text/html; charset=utf-8').send(html);
  }
  return reply.type('application/json; charset=utf-8').send({
    error: 'ui_not_built',
    details,
    timestamp: new Date().toISOString(),
    request_id: request.id,
  });
}
