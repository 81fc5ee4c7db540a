import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type } from '@sinclair/typebox';
import type { App } from './app-type.ts';
import { VERSION } from '../version.ts';

const require = createRequire(import.meta.url);

/**
 * OpenAPI 3 document generated from the route schemas, Swagger UI at `/docs` and ReDoc at
 * `/redoc`. Both UIs are served from installed packages so the server works offline.
 * Must be registered before any route so every route is collected.
 */
export async function installOpenApi(app: App, info: { title: string; version?: string }): Promise<void> {
  await app.register(swagger, {
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
  });
  // Routes that need a key get the security requirement in the document.
  app.addHook('onRoute', (route) => {
    const role = route.config?.role;
    if (role === undefined || role === 'public' || route.schema === undefined) return;
    const schema = route.schema as Record<string, unknown>;
    schema['security'] ??= [{ apiKey: [] }, { bearer: [] }];
    const description = typeof schema['description'] === 'string' ? `${schema['description']}\n\n` : '';
    schema['description'] = `${description}Requires role \`${role}\`.`;
  });
}

/** Serves the UIs and the raw document; call after all routes are registered. */
export async function installDocsUi(app: App): Promise<void> {
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: false, uiConfig: { deepLinking: true } });
  app.get(
    '/openapi.json',
    { config: { role: 'public' }, schema: { hide: true } },
    async (_request, reply) => reply.type('application/json; charset=utf-8').send(app.swagger()),
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
