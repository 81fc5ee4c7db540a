import type { Migration } from 'kysely';
import * as foundation from './001-foundation.ts';

/**
 * Every migration in order. Names sort lexically; never rename or edit a landed migration, add a
 * new one instead.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  '001-foundation': foundation,
  '002-registry': { up: async (db) => (await import('./002-registry.ts')).up(db) },
  '003-tracking': { up: async (db) => (await import('./003-tracking.ts')).up(db) },
};
