import type { Generated } from 'kysely';

/**
 * Table types of the metadata store. Feature folders add their own tables by augmenting this
 * interface from their repository file (`declare module '../store/schema.ts'`), so each feature
 * owns its storage while the `Kysely<Database>` instance stays one.
 *
 * Portable column conventions (SQLite and PostgreSQL alike): timestamps are integer milliseconds
 * since the epoch (`bigint`, read back as numbers), booleans are integers 0/1, JSON is text.
 */
export interface Database {
  api_keys: ApiKeyTable;
  audit_log: AuditLogTable;
}

export interface ApiKeyTable {
  id: string;
  name: string;
  role: string;
  /** sha-256 of the key, hex. The key itself is never stored. */
  key_hash: string;
  /** First characters of the key, to recognise it in listings. */
  prefix: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  /** Id of the API key that acted, `env` for API_KEY, `cli` for local commands. */
  actor: string;
  action: string;
  target: string;
  /** JSON details. */
  details: string;
}
