/**
 * SQL of the datasets feature. Every function takes a Kysely instance or a transaction, so the
 * service decides what runs atomically. Rows are returned as stored; the service maps them to
 * domain objects.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

declare module '../store/schema.ts' {
  interface Database {
    dataset_versions: DatasetVersionTable;
  }
}

/** `uploading` while the bytes stream in, `ready` once stored and parsed. */
export type DatasetVersionStatus = 'uploading' | 'ready';

export interface DatasetVersionTable {
  name: string;
  version: number;
  status: string;
  artifact_key: string;
  /** `upload`, `json`, `builtin` or `import`. */
  source: string;
  sha256: string | null;
  bytes: number | null;
  row_count: number | null;
  column_count: number | null;
  delimiter: string | null;
  /** JSON `DatasetSchema`. */
  schema: string | null;
  created_at: number;
  created_by: string;
}

export type DatasetVersionRow = DatasetVersionTable;

/** One stored dataset name with its ready versions. */
export interface DatasetNameRow {
  readonly name: string;
  readonly versions: number;
  readonly latest: number;
  readonly updated_at: number;
}

type Db = Kysely<Database>;

/** Highest version number of `name`, in any status (0 when none). */
export async function maxVersion(db: Db, name: string): Promise<number> {
  const row = await db
    .selectFrom('dataset_versions')
    .select((eb) => eb.fn.max('version').as('max'))
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.max == null ? 0 : Number(row.max);
}

/** Inserts a row; throws the driver's unique violation when (name, version) is taken. */
export async function insertVersion(db: Db, row: DatasetVersionRow): Promise<void> {
  await db.insertInto('dataset_versions').values(row).execute();
}

/** Turns an `uploading` row into a `ready` one with its content description. */
export async function markReady(
  db: Db,
  name: string,
  version: number,
  patch: Pick<DatasetVersionRow, 'sha256' | 'bytes' | 'row_count' | 'column_count' | 'delimiter' | 'schema'>,
): Promise<number> {
  const result = await db
    .updateTable('dataset_versions')
    .set({ ...patch, status: 'ready' })
    .where('name', '=', name)
    .where('version', '=', version)
    .where('status', '=', 'uploading')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** `uploading` rows created before `before`: uploads whose process died (startup sweep). */
export async function staleUploads(db: Db, before: number): Promise<DatasetVersionRow[]> {
  return db.selectFrom('dataset_versions').selectAll().where('status', '=', 'uploading').where('created_at', '<', before).execute();
}

/** Deletes one row whatever its status (used to undo a failed upload). */
export async function deleteVersion(db: Db, name: string, version: number): Promise<void> {
  await db.deleteFrom('dataset_versions').where('name', '=', name).where('version', '=', version).execute();
}

/** One version, any status. */
export async function findVersion(db: Db, name: string, version: number): Promise<DatasetVersionRow | undefined> {
  return db.selectFrom('dataset_versions').selectAll().where('name', '=', name).where('version', '=', version).executeTakeFirst();
}

/** The newest ready version of `name`. */
export async function latestReady(db: Db, name: string): Promise<DatasetVersionRow | undefined> {
  return db
    .selectFrom('dataset_versions')
    .selectAll()
    .where('name', '=', name)
    .where('status', '=', 'ready')
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** Ready versions of `name`, newest first, without their (possibly large) schemas. */
export async function listReadyVersions(db: Db, name: string, offset: number, limit: number): Promise<DatasetVersionRow[]> {
  const rows = await db
    .selectFrom('dataset_versions')
    .select([
      'name',
      'version',
      'status',
      'artifact_key',
      'source',
      'sha256',
      'bytes',
      'row_count',
      'column_count',
      'delimiter',
      'created_at',
      'created_by',
      sql<null>`null`.as('schema'),
    ])
    .where('name', '=', name)
    .where('status', '=', 'ready')
    .orderBy('version', 'desc')
    .offset(offset)
    .limit(limit)
    .execute();
  return rows.map((r) => ({ ...r, bytes: r.bytes === null ? null : Number(r.bytes), created_at: Number(r.created_at) }));
}

/** Every dataset name with at least one ready version, by name. */
export async function listNames(db: Db): Promise<DatasetNameRow[]> {
  const rows = await db
    .selectFrom('dataset_versions')
    .select((eb) => [
      'name',
      eb.fn.countAll<number>().as('versions'),
      eb.fn.max('version').as('latest'),
      eb.fn.max('created_at').as('updated_at'),
    ])
    .where('status', '=', 'ready')
    .groupBy('name')
    .orderBy('name')
    .execute();
  return rows.map((r) => ({ name: r.name, versions: Number(r.versions), latest: Number(r.latest), updated_at: Number(r.updated_at) }));
}

/** Version count and newest version of one name (ready versions only); `undefined` when none. */
export async function nameSummary(db: Db, name: string): Promise<DatasetNameRow | undefined> {
  const row = await db
    .selectFrom('dataset_versions')
    .select((eb) => [
      eb.fn.countAll<number>().as('versions'),
      eb.fn.max('version').as('latest'),
      eb.fn.max('created_at').as('updated_at'),
    ])
    .where('name', '=', name)
    .where('status', '=', 'ready')
    .executeTakeFirst();
  if (row === undefined || Number(row.versions) === 0) return undefined;
  return { name, versions: Number(row.versions), latest: Number(row.latest), updated_at: Number(row.updated_at) };
}
