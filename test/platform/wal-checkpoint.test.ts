/**
 * WAL checkpoints of the main SQLite store on a thread of their own (src/store/wal-checkpoint.ts):
 * the connection's automatic checkpoints are off, the thread copies the log into the database
 * once it holds the threshold's frames, ends when idle, and a thread that cannot work gives
 * checkpoints back to the connection.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openStore, type Store } from '../../src/store/database.ts';
import { openSqlite } from '../../src/store/sqlite.ts';
import { WalCheckpointer } from '../../src/store/wal-checkpoint.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'wal-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Resolves with the next value `subscribe` hands its callback, or fails after `ms`. */
function next<T>(subscribe: (callback: (value: T) => void) => void, what: string, ms = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    subscribe((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** A connection of its own to a new WAL-mode file holding `rows` rows of 4 KB, each in its own commit. */
function walWithRows(file: string, rows: number): ReturnType<typeof openSqlite> {
  const connection = openSqlite(file);
  connection.exec('PRAGMA journal_mode = WAL');
  connection.exec('create table t (data blob)');
  for (let i = 0; i < rows; i++) connection.prepare('insert into t (data) values (?)').run([Buffer.alloc(4096)]);
  return connection;
}

/** Writes `n` rows of 4 KB each (about a page each) in their own commits. */
async function write(store: Store, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await sql`insert into wal_test (data) values (${Buffer.alloc(4096, i % 251)})`.execute(store.db);
  }
}

describe('WAL checkpoints on a thread', { timeout: 120_000 }, () => {
  test('the connection checkpoints nothing itself; the thread copies the log past the threshold, then ends when idle', async () => {
    const file = path.join(dir, 'thread.db');
    const listeners: { checkpoint?: (r: { frames: number; copied: number }) => void; exit?: () => void } = {};
    const store = await openStore({
      dataDir: dir,
      sqlitePath: file,
      walCheckpoint: {
        thresholdFrames: 40,
        periodMs: 20,
        idleMs: 200,
        onCheckpoint: (r) => listeners.checkpoint?.(r),
        onThreadExit: () => listeners.exit?.(),
        onError: (err) => assert.fail(err),
      },
    });
    try {
      const setting = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(store.db);
      assert.equal(Number(setting.rows[0]!.wal_autocheckpoint), 0);
      await sql`create table wal_test (id integer primary key, data blob)`.execute(store.db);
      const checkpointed = next<{ frames: number; copied: number }>((cb) => (listeners.checkpoint = cb), 'a checkpoint');
      await write(store, 60);
      const result = await checkpointed;
      assert.ok(result.frames >= 40, `the log held ${result.frames} frames`);
      assert.equal(result.copied, result.frames, 'a passive checkpoint with no reader copies every frame');
      // Nothing more to copy: the thread ends after its idle time.
      await next<void>((cb) => (listeners.exit = cb), 'the idle thread to end');
      // More writes start it again.
      const again = next<{ frames: number; copied: number }>((cb) => (listeners.checkpoint = cb), 'a second checkpoint');
      await write(store, 60);
      assert.ok((await again).copied >= 40);
      const rows = await sql<{ n: number }>`select count(*) as n from wal_test`.execute(store.db);
      assert.equal(Number(rows.rows[0]!.n), 120);
    } finally {
      await store.close();
    }
    // Everything written is in the file, read by a connection of its own.
    const check = openSqlite(file);
    try {
      assert.equal(Number((check.prepare('select count(*) as n from wal_test').all([])[0] as { n: number }).n), 120);
    } finally {
      check.close();
    }
  });

  test('below the threshold a look at the log starts no thread; at it, one checkpoint empties the log', async () => {
    const file = path.join(dir, 'ticks.db');
    const connection = walWithRows(file, 30);
    // Long periods: the looks below are the test's own calls to tick().
    const high = new WalCheckpointer(file, connection, { thresholdFrames: 10_000, periodMs: 3_600_000, onError: (err) => assert.fail(err) });
    high.start();
    const pending = await high.pendingFrames();
    assert.ok(pending >= 30 && pending < 10_000, `the log holds ${pending} frames`);
    await high.tick();
    assert.equal(high.threadRunning, false);
    assert.equal(await high.pendingFrames(), pending);
    await high.close();

    const results: { frames: number; copied: number }[] = [];
    const low = new WalCheckpointer(file, connection, { thresholdFrames: 30, periodMs: 3_600_000, onCheckpoint: (r) => results.push(r), onError: (err) => assert.fail(err) });
    low.start();
    await low.tick();
    assert.equal(low.threadRunning, true);
    assert.deepEqual(results, [{ frames: pending, copied: pending }]);
    assert.equal(await low.pendingFrames(), 0);
    await low.close();
    assert.equal(low.threadRunning, false);
    const setting = connection.prepare('pragma wal_autocheckpoint').all([])[0] as { wal_autocheckpoint: number };
    assert.equal(Number(setting.wal_autocheckpoint), 1000, 'closing gives checkpoints back to the connection');
    connection.close();
  });

  test('a thread that cannot open the file gives checkpoints back to the connection and says why', async () => {
    const file = path.join(dir, 'fallback.db');
    const connection = walWithRows(file, 20);
    // The thread opens the file named here, which is a folder: SQLite cannot open it.
    const folder = path.join(dir, 'not-a-database');
    const { mkdirSync, copyFileSync } = await import('node:fs');
    mkdirSync(folder);
    copyFileSync(`${file}-shm`, `${folder}-shm`);
    const failed = next<Error>((cb) => {
      const checkpointer = new WalCheckpointer(folder, connection, { thresholdFrames: 1, periodMs: 10, onError: cb });
      checkpointer.start();
    }, 'the failure');
    const err = await failed;
    assert.match(err.message, /WAL checkpoint thread failed: .*(unable to open|SQLITE_CANTOPEN)/i);
    const setting = connection.prepare('pragma wal_autocheckpoint').all([])[0] as { wal_autocheckpoint: number };
    assert.equal(Number(setting.wal_autocheckpoint), 1000);
    connection.close();
  });
});
