import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import type { App } from './app-type.ts';
import { VERSION } from '../version.ts';

const require = createRequire(import.meta.url);

declare module 'fastify' {
  interface FastifyInstance {
    /** The OpenAPI document of every route (built on first use; see {@link installOpenApi}). */
    openApiDocument(): Promise<Record<string, unknown>>;
  }
}

/**
 * OpenAPI 3 document generated from the route schemas, Swagger UI at `/docs` and ReDoc at
 * `/redoc`. Both UIs are served from installed packages so the server works offline.
 *
 * Nothing of it is loaded at start-up: `@fastify/swagger` (with the YAML library and the JSON
 * schema resolver it loads) and `@fastify/swagger-ui` (with `@fastify/static`, glob and send)
 * were ~150 ms of every start, a quarter of it, for pages most deployments never open. So the
 * routes are only collected here as they are registered (after the hook below has added their
 * security requirement), and the first request for the document or a page builds a Fastify app
 * of its own with both plugins and the collected routes (handlers that never run, validation
 * off): the document is the one `@fastify/swagger` makes of these routes, as before. `/docs` and
 * `/docs/*` forward to that app in process (`inject`), so the main app's authentication
 * (public), security headers and metrics apply to them as to any route.
 *
 * Must be registered before any route so every route is collected.
 */
export function installOpenApi(app: App, info: { title: string; version?: string }): void {
  const options: FastifyDynamicSwaggerOptions = {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: info.title,
        version: info.version ?? VERSION,
        description:
          'MLOps control plane and model server: datasets, training, tracking, registry, serving and drift over HTTP. ' +
          'Authenticate with `X-API-Key: <key>` or `Authorization: Bearer <key>`.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`) },
  };
  // Routes that need a key get the security requirement in the document.
  app.addHook('onRoute', (route) => {
    const role = route.config?.role;
    if (role === undefined || role === 'public' || route.schema === undefined) return;
    const schema = route.schema as Record<string, unknown>;
    schema['security'] ??= [{ apiKey: [] }, { bearer: [] }];
    const description = typeof schema['description'] === 'string' ? `${schema['description']}\n\n` : '';
    schema['description'] = `${description}Requires role \`${role}\`.`;
  });
  // What the document is made of: the routes (hidden ones are not in it) and the shared schemas
  // of every plugin scope (their `$ref`s), read when the app is ready, as @fastify/swagger does.
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    if ((route.schema)?.hide !== true) routes.push(route);
  });
  let scopes: FastifyInstance[] = [];
  const shared = new Map<string, unknown>();
  let ready = false;
  app.addHook('onRegister', (scope) => void scopes.push(scope));
  app.addHook('onReady', (done) => {
    for (const scope of [...scopes, app]) for (const [id, schema] of Object.entries(scope.getSchemas())) shared.set(id, schema);
    scopes = [];
    ready = true;
    done();
  });

  let docs: Promise<FastifyInstance> | undefined;
  const build = async (): Promise<FastifyInstance> => {
    // Before, routes could still be added: a document made then would be kept without them.
    if (!ready) throw new Error('the OpenAPI document is made once the app is ready');
    const [{ default: swagger }, { default: swaggerUi }] = await Promise.all([import('@fastify/swagger'), import('@fastify/swagger-ui')]);
    const inner = Fastify({ logger: false, exposeHeadRoutes: false, routerOptions: { maxParamLength: 1024, ignoreTrailingSlash: true } });
    // The routes are registered for their schemas only: nothing is validated or serialised here.
    inner.setValidatorCompiler(() => () => true);
    inner.setSerializerCompiler(() => (data) => JSON.stringify(data));
    for (const schema of shared.values()) inner.addSchema(schema);
    await inner.register(swagger, options);
    const never = (): never => {
      throw new Error('the documentation app answers no API route');
    };
    for (const route of routes) inner.route({ method: route.method, url: route.url, schema: route.schema, config: route.config, handler: never });
    await inner.register(swaggerUi, { routePrefix: '/docs', staticCSP: false, uiConfig: { deepLinking: true } });
    await inner.ready();
    return inner;
  };
  const docsApp = (): Promise<FastifyInstance> =>
    (docs ??= build().catch((err: unknown) => {
      docs = undefined;
      throw err;
    }));
  app.decorate('openApiDocument', async () => (await docsApp()).swagger() as unknown as Record<string, unknown>);
  app.decorate('docsApp', docsApp);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The app that serves Swagger UI and makes the document, built on first use. */
    docsApp(): Promise<FastifyInstance>;
  }
}

/**
 * Response headers of the documentation app that the forwarding route does not copy: Fastify
 * sets its own framing, and the security headers are the main app's.
 */
const NOT_FORWARDED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date']);
/** Request headers Swagger UI's static files answer to (conditional and range requests). */
const FORWARDED = ['accept', 'if-none-match', 'if-modified-since', 'range'] as const;

/** `/docs` and `/docs/*`: forwarded to the documentation app (see {@link installOpenApi}). */
async function swaggerUi(this: App, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const headers: Record<string, string> = {};
  for (const name of FORWARDED) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  // GET also for HEAD: Fastify's HEAD route runs this handler and drops the body itself.
  const res = await (await this.docsApp()).inject({ method: 'GET', url: request.url, headers });
  reply.code(res.statusCode);
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined && !NOT_FORWARDED.has(name)) reply.header(name, value);
  }
  return reply.send(res.rawPayload);
}

/** Serves the UIs and the raw document; call after all routes are registered. */
export function installDocsUi(app: App): void {
  for (const url of ['/docs', '/docs/*']) app.get(url, { config: { role: 'public' }, schema: { hide: true } }, swaggerUi);
  app.get(
    '/openapi.json',
    { config: { role: 'public' }, schema: { hide: true } },
    async (_request, reply) => reply.type('application/json; charset=utf-8').send(await app.openApiDocument()),
  );
  // Streamed from the package on each (cached-for-a-day) request instead of held in memory.
  const redocBundle = require.resolve('redoc/bundles/redoc.standalone.js');
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelplane API (ReDoc)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc><script src="/redoc/redoc.standalone.js"></script></body></html>`;
  app.get(
    '/redoc',
    { config: { role: 'public' }, schema: { hide: true, response: { 200: Type.String() } } },
    async (_request, reply) => reply.type('text/html; charset=utf-8').send(page),
  );
  app.get(
    '/redoc/redoc.standalone.js',
    { config: { role: 'public' }, schema: { hide: true } },
    async (_request, reply) => reply.type('application/javascript; charset=utf-8').header('cache-control', 'public, max-age=86400').send(createReadStream(redocBundle)),
  );
}
