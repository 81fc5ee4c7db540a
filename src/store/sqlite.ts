/**
 * Opening an SQLite file with the driver this Node.js version can run (below). Its own module so
 * that a thread with a connection of its own (the WAL checkpoint thread) loads no more than this.
 */
import { createRequire } from 'node:module';
import type SQLite from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

/** The part of `node:sqlite` used here (its types are not in @types/node for Node 20). */
interface NodeSqliteModule {
  DatabaseSync: new (file: string) => {
    exec(sql: string): void;
    close(): void;
    prepare(sql: string): {
      columns(): unknown[];
      all(...parameters: unknown[]): unknown[];
      run(...parameters: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
      iterate(...parameters: unknown[]): IterableIterator<unknown>;
    };
  };
}

/** What Kysely's SQLite dialect needs from a driver, plus `exec` for pragmas. */
export type SqliteConnection = SqliteDatabase & { exec(sql: string): unknown };

/**
 * better-sqlite3 up to 12.x derives its objects from node::ObjectWrap, whose destructor aborts the
 * process on Node 24 when a statement is garbage collected outside a JS context (a known
 * upstream issue, fixed in better-sqlite3 13, which in turn no longer runs on Node 20). So on
 * Node 24 and later the store uses Node's own `node:sqlite`, and better-sqlite3 elsewhere; both
 * speak the same SQLite file format and the same SQL.
 */
export function openSqlite(file: string): SqliteConnection {
  const major = Number(process.versions.node.split('.')[0]);
  const require = createRequire(import.meta.url);
  // Required here, not imported: on Node 24 the native addon is never loaded.
  if (major < 24) return new (require('better-sqlite3') as typeof SQLite)(file);
  const { DatabaseSync } = require('node:sqlite') as NodeSqliteModule;
  const db = new DatabaseSync(file);
  return {
    exec: (text: string) => db.exec(text),
    close: () => db.close(),
    prepare(text: string) {
      const statement = db.prepare(text);
      return {
        reader: statement.columns().length > 0,
        all: (parameters: ReadonlyArray<unknown>) => statement.all(...parameters),
        run: (parameters: ReadonlyArray<unknown>) => statement.run(...parameters),
        iterate: (parameters: ReadonlyArray<unknown>) => statement.iterate(...parameters),
      };
    },
  };
}
