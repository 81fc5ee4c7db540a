/**
 * SQL of the model registry. Every function takes a Kysely instance or a transaction, so the
 * service decides what runs atomically. Rows are returned as stored; the service maps them to
 * domain objects.
 */
import { sql, type Generated, type Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

declare module '../store/schema.ts' {
  interface Database {
    registered_models: RegisteredModelTable;
    model_versions: ModelVersionTable;
    model_aliases: ModelAliasTable;
    model_history: ModelHistoryTable;
    model_traffic: ModelTrafficTable;
    registry_generation: RegistryGenerationTable;
  }
}

export interface RegisteredModelTable {
  name: string;
  description: string | null;
  /** JSON object of string tags. */
  tags: string;
  last_version: number;
  created_at: number;
  updated_at: number;
}

export interface ModelVersionTable {
  model: string;
  version: number;
  stage: string;
  description: string | null;
  tags: string;
  artifact_key: string;
  /** JSON `ModelSignature`. */
  signature: string;
  /** JSON object of numbers. */
  metrics: string;
  run_id: string | null;
  dataset_name: string | null;
  dataset_version: number | null;
  source: string;
  size: number;
  sha256: string;
  has_reference: number;
  notes: string;
  created_at: number;
  updated_at: number;
  created_by: string;
}

export interface ModelAliasTable {
  model: string;
  alias: string;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface ModelHistoryTable {
  id: Generated<number>;
  model: string;
  at: number;
  actor: string;
  action: string;
  version: number | null;
  alias: string | null;
  from_value: string | null;
  to_value: string | null;
}

export interface ModelTrafficTable {
  model: string;
  split: string;
  updated_at: number;
  updated_by: string;
}

export interface RegistryGenerationTable {
  id: number;
  value: number;
}

export type RegisteredModelRow = RegisteredModelTable;
export type ModelVersionRow = ModelVersionTable;
export type ModelAliasRow = ModelAliasTable;
export type ModelHistoryRow = Omit<ModelHistoryTable, 'id'> & { id: number };
export type ModelTrafficRow = ModelTrafficTable;
export type NewHistoryEntry = Omit<ModelHistoryTable, 'id'>;

export type Db = Kysely<Database>;

/** Largest value of the 32-bit integer version columns. */
export const MAX_VERSION = 2_147_483_647;

/** Whether `v` can be a stored version number. */
export function isVersionNumber(v: number): boolean {
  return Number.isInteger(v) && v >= 1 && v <= MAX_VERSION;
}

export const registryRepository = {
  async insertModelIfAbsent(db: Db, row: RegisteredModelRow): Promise<boolean> {
    const r = await db
      .insertInto('registered_models')
      .values(row)
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  },

  /**
   * Marks a model as changed and, in doing so, locks its row until the transaction ends: an
   * UPDATE takes PostgreSQL's row lock (what `SELECT ... FOR UPDATE` would), and on SQLite a
   * write as the transaction's first statement takes the database write lock up front, so a
   * deferred transaction never has to upgrade a read lock (which fails with SQLITE_BUSY instead
   * of waiting). Returns the row after the update, or `undefined` for an unknown model.
   */
  async lockModel(db: Db, name: string, now: number): Promise<RegisteredModelRow | undefined> {
    return db
      .updateTable('registered_models')
      .set({ updated_at: now })
      .where('name', '=', name)
      .returningAll()
      .executeTakeFirst();
  },

  async findModel(db: Db, name: string): Promise<RegisteredModelRow | undefined> {
    return db.selectFrom('registered_models').selectAll().where('name', '=', name).executeTakeFirst();
  },

  async listModels(db: Db, offset: number, limit: number): Promise<RegisteredModelRow[]> {
    return db.selectFrom('registered_models').selectAll().orderBy('name').limit(limit).offset(offset).execute();
  },

  async updateModel(db: Db, name: string, patch: { description?: string | null; tags?: string }): Promise<void> {
    if (Object.keys(patch).length === 0) return;
    await db.updateTable('registered_models').set(patch).where('name', '=', name).execute();
  },

  async setLastVersion(db: Db, name: string, version: number): Promise<void> {
    await db.updateTable('registered_models').set({ last_version: version }).where('name', '=', name).execute();
  },

  async deleteModel(db: Db, name: string): Promise<void> {
    // Children first: SQLite enforces the cascades only when foreign_keys is on for the connection.
    await db.deleteFrom('model_aliases').where('model', '=', name).execute();
    await db.deleteFrom('model_traffic').where('model', '=', name).execute();
    await db.deleteFrom('model_history').where('model', '=', name).execute();
    await db.deleteFrom('model_versions').where('model', '=', name).execute();
    await db.deleteFrom('registered_models').where('name', '=', name).execute();
  },

  /**
   * Moves a model and everything that names it to `to`: a new parent row first, then the
   * children, then the old parent (the foreign keys have no ON UPDATE CASCADE). Version files
   * under `fromPrefix` are repointed to `toPrefix` (the caller copies them); the runs that
   * produced its versions keep naming it. Returns false when `to` is taken.
   */
  async renameModel(db: Db, from: RegisteredModelRow, to: string, now: number, fromPrefix: string, toPrefix: string): Promise<boolean> {
    if (!(await registryRepository.insertModelIfAbsent(db, { ...from, name: to, updated_at: now }))) return false;
    for (const table of ['model_versions', 'model_aliases', 'model_history', 'model_traffic'] as const) {
      await db.updateTable(table).set({ model: to }).where('model', '=', from.name).execute();
    }
    await db
      .updateTable('model_versions')
      .set({ artifact_key: sql<string>`${toPrefix} || substr(artifact_key, ${fromPrefix.length + 1})` })
      .where('model', '=', to)
      .where(sql<boolean>`substr(artifact_key, 1, ${fromPrefix.length}) = ${fromPrefix}`)
      .execute();
    await sql`update run_outputs set model_name = ${to} where model_name = ${from.name}`.execute(db);
    await db.deleteFrom('registered_models').where('name', '=', from.name).execute();
    return true;
  },

  async insertVersion(db: Db, row: ModelVersionRow): Promise<void> {
    await db.insertInto('model_versions').values(row).execute();
  },

  async findVersion(db: Db, model: string, version: number): Promise<ModelVersionRow | undefined> {
    // Numbers outside the integer column's range cannot exist (and PostgreSQL would reject them).
    if (!isVersionNumber(version)) return undefined;
    return db.selectFrom('model_versions').selectAll().where('model', '=', model).where('version', '=', version).executeTakeFirst();
  },

  /** Highest-numbered version of a model, optionally within one stage. */
  async latestVersion(db: Db, model: string, stage?: string): Promise<ModelVersionRow | undefined> {
    let q = db.selectFrom('model_versions').selectAll().where('model', '=', model);
    if (stage !== undefined) q = q.where('stage', '=', stage);
    return q.orderBy('version', 'desc').limit(1).executeTakeFirst();
  },

  async listVersions(db: Db, model: string): Promise<ModelVersionRow[]> {
    return db.selectFrom('model_versions').selectAll().where('model', '=', model).orderBy('version').execute();
  },

  async versionsInStage(db: Db, model: string, stage: string): Promise<ModelVersionRow[]> {
    return db.selectFrom('model_versions').selectAll().where('model', '=', model).where('stage', '=', stage).orderBy('version').execute();
  },

  /** For each of `models` and each stage present, the highest version in that stage. */
  async latestPerStage(db: Db, models: readonly string[]): Promise<{ model: string; stage: string; version: number }[]> {
    if (models.length === 0) return [];
    const rows = await db
      .selectFrom('model_versions')
      .select(['model', 'stage', (eb) => eb.fn.max<number>('version').as('version')])
      .where('model', 'in', models)
      .groupBy(['model', 'stage'])
      .execute();
    return rows.map((r) => ({ model: r.model, stage: r.stage, version: Number(r.version) }));
  },

  async updateVersion(
    db: Db,
    model: string,
    version: number,
    patch: Partial<Pick<ModelVersionRow, 'stage' | 'description' | 'tags' | 'has_reference' | 'updated_at'>>,
  ): Promise<void> {
    await db.updateTable('model_versions').set(patch).where('model', '=', model).where('version', '=', version).execute();
  },

  async deleteVersion(db: Db, model: string, version: number): Promise<void> {
    await db.deleteFrom('model_versions').where('model', '=', model).where('version', '=', version).execute();
  },

  async listAliases(db: Db, models: readonly string[]): Promise<ModelAliasRow[]> {
    if (models.length === 0) return [];
    return db.selectFrom('model_aliases').selectAll().where('model', 'in', models).orderBy('model').orderBy('alias').execute();
  },

  async aliasesOfVersion(db: Db, model: string, version: number): Promise<string[]> {
    const rows = await db
      .selectFrom('model_aliases')
      .select('alias')
      .where('model', '=', model)
      .where('version', '=', version)
      .orderBy('alias')
      .execute();
    return rows.map((r) => r.alias);
  },

  async findAlias(db: Db, model: string, alias: string): Promise<ModelAliasRow | undefined> {
    return db.selectFrom('model_aliases').selectAll().where('model', '=', model).where('alias', '=', alias).executeTakeFirst();
  },

  async upsertAlias(db: Db, row: ModelAliasRow): Promise<void> {
    await db
      .insertInto('model_aliases')
      .values(row)
      .onConflict((oc) => oc.columns(['model', 'alias']).doUpdateSet({ version: row.version, updated_at: row.updated_at }))
      .execute();
  },

  async deleteAlias(db: Db, model: string, alias: string): Promise<void> {
    await db.deleteFrom('model_aliases').where('model', '=', model).where('alias', '=', alias).execute();
  },

  async addHistory(db: Db, entries: readonly NewHistoryEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await db.insertInto('model_history').values([...entries]).execute();
  },

  /** History of one model, newest first. */
  async listHistory(db: Db, model: string, offset: number, limit: number): Promise<ModelHistoryRow[]> {
    return db
      .selectFrom('model_history')
      .selectAll()
      .where('model', '=', model)
      .orderBy('id', 'desc')
      .limit(limit)
      .offset(offset)
      .execute();
  },

  async findTraffic(db: Db, model: string): Promise<ModelTrafficRow | undefined> {
    return db.selectFrom('model_traffic').selectAll().where('model', '=', model).executeTakeFirst();
  },

  async upsertTraffic(db: Db, row: ModelTrafficRow): Promise<void> {
    await db
      .insertInto('model_traffic')
      .values(row)
      .onConflict((oc) => oc.column('model').doUpdateSet({ split: row.split, updated_at: row.updated_at, updated_by: row.updated_by }))
      .execute();
  },

  async deleteTraffic(db: Db, model: string): Promise<void> {
    await db.deleteFrom('model_traffic').where('model', '=', model).execute();
  },

  async bumpGeneration(db: Db): Promise<void> {
    await db
      .updateTable('registry_generation')
      .set({ value: sql<number>`value + 1` })
      .where('id', '=', 1)
      .execute();
  },

  async generation(db: Db): Promise<number> {
    const row = await db.selectFrom('registry_generation').select('value').where('id', '=', 1).executeTakeFirst();
    return Number(row?.value ?? 0);
  },
};
