import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type Driver, type SqliteDialectConfig } from 'kysely';
import type pg from 'pg';
import type { Database } from './schema.ts';
import { openSqlite, type SqliteConnection } from './sqlite.ts';
import { WalCheckpointer, type WalCheckpointOptions } from './wal-checkpoint.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Human description without secrets, e.g. `sqlite:/data/modelplane.db`. */
  readonly description: string;
  /** The SQLite file, for a thread that opens its own connection to it (absent: PostgreSQL, `:memory:`). */
  readonly file?: string;
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
  /**
   * Told about errors of PostgreSQL connections, idle or checked out (the server restarted or went
   * away). The pool drops such a connection and opens a new one on the next query; without a
   * listener the error would be an unhandled 'error' event and end the process.
   */
  readonly onConnectionError?: (err: Error) => void;
  /**
   * SQLite files: WAL checkpoints on a thread of their own instead of inside the commits of this
   * connection, which run on the event loop (wal-checkpoint.ts). For the process's main store.
   */
  readonly walCheckpoint?: WalCheckpointOptions;
}

/** How long opening a PostgreSQL connection may take before the query fails (an unreachable host). */
const PG_CONNECT_TIMEOUT_MS = 3000;

/** Node socket errors that mean the server cannot be reached (not that a query was wrong). */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);
/** PostgreSQL SQLSTATEs of a server that is shutting down, starting up or out of connections. */
const PG_UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '53300']);
/** Messages of node-postgres for connections that were cut or never opened. */
const PG_CONNECTION_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection terminated due to connection timeout|connect ECONNREFUSED/i;

/**
 * True when `err` says the metadata store's server cannot be reached right now (refused, reset,
 * shut down, starting up, out of connections), as opposed to a failed statement: requests answer
 * 503 for these, start-up waits and retries, and nothing else treats them as the caller's fault.
 */
export function isStoreUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || PG_UNAVAILABLE_CODES.has(e.code) || /^08/.test(e.code))) return true;
  if (typeof e.message === 'string' && PG_CONNECTION_MESSAGE.test(e.message)) return true;
  // Node's happy-eyeballs connect reports every address's failure in an AggregateError.
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((inner) => isStoreUnavailable(inner));
}

// int8 (bigint) columns hold millisecond timestamps and counters, all far below 2^53.
const INT8_OID = 20;
const NUMERIC_OID = 1700;
/** Type parsers of `pg`'s own, except int8 and numeric, which are read as numbers. */
function pgTypes(types: typeof pg.types): { getTypeParser(oid: number, format?: string): (v: string) => unknown } {
  return {
    getTypeParser(oid: number, format?: string) {
      if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v);
      return types.getTypeParser(oid, format as 'text');
    },
  };
}

/** Opens the metadata store: PostgreSQL when a URL is given, else SQLite in WAL mode. */
export async function openStore(options: StoreOptions): Promise<Store> {
  if (options.databaseUrl !== undefined) {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
    // The driver is loaded only for PostgreSQL stores (start-up time and memory of SQLite ones).
    const { default: pgDriver } = await import('pg');
    const pool = new pgDriver.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      types: pgTypes(pgDriver.types),
      connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
      ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
    });
    const onConnectionError = options.onConnectionError ?? (() => undefined);
    pool.on('error', onConnectionError);
    // The pool listens for errors of idle clients only. A client checked out (a transaction
    // between its statements, say) whose connection drops emits 'error' on itself, which without
    // a listener ends the process (it did in the cluster harness's PostgreSQL outage). Listened to
    // while checked out: the client is unusable afterwards, its next query fails as "store
    // unavailable" (503), and the pool drops it on release.
    const checkedOutError = (err: Error): void => onConnectionError(err);
    pool.on('acquire', (client) => client.on('error', checkedOutError));
    pool.on('release', (_err, client) => client.removeListener('error', checkedOutError));
    if (schema !== undefined) {
      try {
        await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (err) {
        await pool.end().catch(() => undefined);
        throw err;
      }
    }
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
  const sqlite = cachingStatements(openSqlite(file));
  for (const pragma of ['journal_mode = WAL', 'foreign_keys = ON', 'busy_timeout = 5000', 'synchronous = NORMAL']) {
    sqlite.exec(`PRAGMA ${pragma}`);
  }
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  const checkpointer = file === ':memory:' || options.walCheckpoint === undefined ? undefined : new WalCheckpointer(file, sqlite, options.walCheckpoint);
  checkpointer?.start();
  return {
    db,
    dialect: 'sqlite',
    description: `sqlite:${file}`,
    ...(file === ':memory:' ? {} : { file }),
    ping: async () => {
      sqlite.prepare('select 1').all([]);
    },
    close: async () => {
      await checkpointer?.close();
      await db.destroy();
    },
  };
}

/**
 * SQLite transactions that take the write lock when they begin (`BEGIN IMMEDIATE`). Kysely's
 * driver says `BEGIN` (deferred): a transaction that reads and then writes holds a read
 * snapshot, and when another connection (a training thread opens its own) has written since,
 * SQLite cannot upgrade it and answers `database is locked` at once, without waiting the busy
 * timeout. Taking the lock up front makes every writer wait its turn under `busy_timeout`.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

/** Prepared statements kept per connection; texts beyond this are prepared again when reused. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Keeps prepared statements by SQL text (least recently used dropped first): Kysely's SQLite
 * driver prepares every query it runs, and preparing cost as much CPU as running the small
 * queries of run creation and logging. `iterate` (a streamed read holds its statement until it
 * ends) gets a statement of its own, so a cached one is never busy.
 */
function cachingStatements(connection: SqliteConnection): SqliteConnection {
  const cache = new Map<string, ReturnType<SqliteConnection['prepare']>>();
  const prepare = connection.prepare.bind(connection);
  return {
    exec: (text: string) => connection.exec(text),
    close: () => connection.close(),
    prepare(text: string) {
      let statement = cache.get(text);
      if (statement !== undefined) {
        cache.delete(text);
      } else {
        statement = prepare(text);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      cache.set(text, statement);
      const cached = statement;
      return {
        reader: cached.reader,
        all: (parameters: ReadonlyArray<unknown>) => cached.all(parameters),
        run: (parameters: ReadonlyArray<unknown>) => cached.run(parameters),
        iterate: (parameters: ReadonlyArray<unknown>) => prepare(text).iterate(parameters),
      };
    },
  };
}

/**
 * True for a unique or primary-key violation, whichever driver raised it: PostgreSQL (23505),
 * better-sqlite3 (`SQLITE_CONSTRAINT_*` codes) or node:sqlite (extended result codes 2067, 1555).
 */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; errcode?: unknown } | null;
  return (
    e?.code === '23505' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    e?.errcode === 2067 ||
    e?.errcode === 1555
  );
}
