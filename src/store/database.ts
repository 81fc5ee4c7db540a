import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Human description without secrets, e.g. `sqlite:/data/modelplane.db`. */
  readonly description: string;
  /** Cheap round trip used by `/ready`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** `postgres://...`; when absent an SQLite file in `dataDir` is used. */
  readonly databaseUrl?: string;
  readonly dataDir: string;
  /** PostgreSQL schema to use (tests give each run its own). Created if missing. */
  readonly schema?: string;
  /** SQLite file path override (`:memory:` for throwaway stores). */
  readonly sqlitePath?: string;
}

// int8 (bigint) columns hold millisecond timestamps and counters, all far below 2^53.
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const pgTypes = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** Opens the metadata store: PostgreSQL when a URL is given, else SQLite in WAL mode. */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (options.databaseUrl !== undefined) {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      types: pgTypes,
      ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
    });
    if (schema !== undefined) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const u = new URL(options.databaseUrl);
    return {
      db,
      dialect: 'postgres',
      description: `postgres://${u.host}${u.pathname}${schema === undefined ? '' : `#${schema}`}`,
      ping: async () => {
        await sql`select 1`.execute(db);
      },
      close: () => db.destroy(),
    };
  }
  const file = options.sqlitePath ?? path.join(options.dataDir, 'modelplane.db');
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return {
    db,
    dialect: 'sqlite',
    description: `sqlite:${file}`,
    ping: async () => {
      sqlite.prepare('select 1').get();
    },
    close: () => db.destroy(),
  };
}
