import { Type } from '@sinclair/typebox';
import type { App } from './app-type.ts';
import type { KeyService } from './auth.ts';
import { notFound } from './errors.ts';
import { AUTH_ERRORS, errorResponses } from './schemas.ts';

const RoleSchema = Type.Union([Type.Literal('read'), Type.Literal('predict'), Type.Literal('train'), Type.Literal('admin')]);
const KeySummary = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  prefix: Type.String({ description: 'first characters of the key, to recognise it' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** API key management over HTTP (admin); the CLI offers the same through `modelplane keys`. */
export async function keysRoutes(app: App, keys: KeyService): Promise<void> {
  app.get(
    '/keys',
    {
      config: { role: 'admin' },
      schema: { summary: 'List API keys (never the keys themselves)', tags: ['keys'], response: { 200: Type.Object({ keys: Type.Array(KeySummary) }), ...errorResponses(...AUTH_ERRORS) } },
    },
    async () => ({
      keys: (await keys.list()).map((k) => ({
        id: k.id,
        name: k.name,
        role: k.role as 'read',
        prefix: k.prefix,
        created_at: new Date(k.created_at).toISOString(),
        last_used_at: iso(k.last_used_at),
        revoked_at: iso(k.revoked_at),
      })),
    }),
  );

  app.post(
    '/keys',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Create an API key; the key is returned once and only its hash is stored',
        tags: ['keys'],
        body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }), role: RoleSchema }, { additionalProperties: false }),
        response: {
          201: Type.Object({ id: Type.String(), name: Type.String(), role: RoleSchema, key: Type.String() }),
          ...errorResponses(400, ...AUTH_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const created = await keys.create(body.name, body.role, request.principal?.keyId ?? 'unknown');
      return reply.code(201).send(created);
    },
  );

  app.delete(
    '/keys/:id',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Revoke an API key by id or name',
        tags: ['keys'],
        params: Type.Object({ id: Type.String({ minLength: 1 }) }),
        response: { 200: Type.Object({ revoked: Type.Integer() }), ...errorResponses(404, ...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const revoked = await keys.revoke(id, request.principal?.keyId ?? 'unknown');
      if (revoked === 0) throw notFound(`no active API key with id or name '${id}'`);
      return { revoked };
    },
  );
}
