import type { Kysely } from 'kysely';
import type { ApiKeyTable, Database } from '../store/schema.ts';

export type ApiKeyRow = ApiKeyTable;

/** SQL for API keys and the audit log. Accepts a Kysely instance or a transaction. */
export const keysRepository = {
  async insert(db: Kysely<Database>, row: ApiKeyRow): Promise<void> {
    await db.insertInto('api_keys').values(row).execute();
  },
  async findByHash(db: Kysely<Database>, keyHash: string): Promise<ApiKeyRow | undefined> {
    return db.selectFrom('api_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
  },
  async listActive(db: Kysely<Database>): Promise<ApiKeyRow[]> {
    return db.selectFrom('api_keys').selectAll().where('revoked_at', 'is', null).orderBy('created_at').execute();
  },
  async listAll(db: Kysely<Database>): Promise<ApiKeyRow[]> {
    return db.selectFrom('api_keys').selectAll().orderBy('created_at').execute();
  },
  async count(db: Kysely<Database>): Promise<number> {
    const r = await db.selectFrom('api_keys').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  },
  /** Revokes by id or by unique id prefix; returns the rows revoked. */
  async revoke(db: Kysely<Database>, idOrPrefix: string, at: number): Promise<ApiKeyRow[]> {
    const rows = await db
      .selectFrom('api_keys')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', idOrPrefix), eb('name', '=', idOrPrefix)]))
      .where('revoked_at', 'is', null)
      .execute();
    if (rows.length === 0) return [];
    await db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where(
        'id',
        'in',
        rows.map((r) => r.id),
      )
      .execute();
    return rows;
  },
  async touch(db: Kysely<Database>, ids: readonly string[], at: number): Promise<void> {
    if (ids.length === 0) return;
    await db.updateTable('api_keys').set({ last_used_at: at }).where('id', 'in', ids).execute();
  },
  async audit(db: Kysely<Database>, entry: { at: number; actor: string; action: string; target: string; details: unknown }): Promise<void> {
    await db
      .insertInto('audit_log')
      .values({ ...entry, details: JSON.stringify(entry.details ?? {}) })
      .execute();
  },
};
