/**
 * `GET /whoami`: the key the caller presented, by id, name and role, so a client (the web UI)
 * can tell which actions the key may take before it tries them. Any valid key may ask.
 */
import { Type } from '@sinclair/typebox';
import type { App } from './app-type.ts';
import { ROLES, type Role } from './auth.ts';
import { unauthorized } from './errors.ts';
import { AUTH_ERRORS, errorResponses } from './schemas.ts';

const RoleValue = Type.Union(ROLES.map((r) => Type.Literal(r)));

const WhoAmIReply = Type.Object(
  {
    key_id: Type.String({ description: 'id of the key (`env` for API_KEY)' }),
    name: Type.String(),
    role: RoleValue,
    roles: Type.Array(RoleValue, { description: 'every role the key holds: its own and the lesser ones (read < predict < train < admin)' }),
  },
  { title: 'WhoAmI' },
);

/** The who-am-I route (read: every key has at least that role). */
export async function whoamiRoutes(app: App): Promise<void> {
  app.get(
    '/whoami',
    {
      config: { role: 'read' },
      schema: {
        summary: 'The presented API key: id, name and role',
        tags: ['keys'],
        response: { 200: WhoAmIReply, ...errorResponses(...AUTH_ERRORS) },
      },
    },
    async (request) => {
      const p = request.principal;
      if (p === undefined) throw unauthorized();
      const roles: Role[] = ROLES.slice(0, ROLES.indexOf(p.role) + 1);
      return { key_id: p.keyId, name: p.name, role: p.role, roles };
    },
  );
}
