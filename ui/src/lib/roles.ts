/** Roles of API keys, as the API orders them: each includes the ones before it. */
import type { paths } from '../api/schema.d.ts';

export type WhoAmI = paths['/whoami']['get']['responses'][200]['content']['application/json'];
export type Role = WhoAmI['role'];
export const ROLES: readonly Role[] = ['read', 'predict', 'train', 'admin'];

/** True when a key of role `have` may take an action that needs `need`. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}
