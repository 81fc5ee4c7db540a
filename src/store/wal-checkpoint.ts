/**
 * WAL checkpoints of the process's SQLite store on a thread of their own.
 *
 * SQLite copies its write-ahead log back into the database file (and syncs both) inside whichever
 * commit takes the log past `wal_autocheckpoint` pages (1,000): on the event loop, since every
 * statement runs there. While the prediction log writes a 600 KB block four times a second, every
 * seventh commit did that and took 11-17 ms instead of ~1 ms (bench/wal-checkpoint.ts: commit p90
 * 11-12 ms, with this module 1.2-1.4 ms), which is what single predictions' p99 met. Here the
 * connection's automatic checkpoints are off; every 250 ms a timer reads how many frames the log
 * holds that are not yet in the database (from the wal-index header in the `-shm` file, the
 * layout SQLite documents in "WAL-mode File Format"), and from `thresholdFrames` on, a thread with a connection of its own runs a PASSIVE checkpoint, which
 * never blocks the writer or readers. The thread starts on first need and ends after `idleMs`
 * without work, so a lightly used server has none (its memory counts). If the thread fails,
 * checkpoints go back to the connection's own (`wal_autocheckpoint` 1,000) and `onError` hears why.
 */
import { open } from 'node:fs/promises';
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../util/threads.ts';

export interface WalCheckpointOptions {
  /** Frames (pages) in the log not yet in the database from which a checkpoint runs. Default 1000, SQLite's own. */
  readonly thresholdFrames?: number;
  /** How often the log is looked at, ms. Default 250 (the prediction log's flush period). */
  readonly periodMs?: number;
  /** The thread ends after this long without a checkpoint, ms. Default 30 000. */
  readonly idleMs?: number;
  /** Told when the thread fails; checkpoints are back in the writing connection from then on. */
  readonly onError?: (err: Error) => void;
  /** Told after each checkpoint the thread ran (tests). */
  readonly onCheckpoint?: (result: { frames: number; copied: number }) => void;
  /** Told when the thread has ended (tests). */
  readonly onThreadExit?: () => void;
}

/** SQLite's default `wal_autocheckpoint`, restored when checkpoints go back to the connection. */
const SQLITE_AUTOCHECKPOINT = 1000;

/** Offsets in the wal-index header (`-shm`): `isInit`, `mxFrame` (last valid frame), `nBackfill` (frames copied). */
const IS_INIT = 12;
const MX_FRAME = 16;
const N_BACKFILL = 96;

/** An Error saying what the thread reported (an error thrown while it starts may arrive as a plain object). */
function asError(value: unknown): Error {
  // better-sqlite3's errors cross the thread boundary as their own fields only ({ code: 'SQLITE_CANTOPEN' }).
  const { message, code } = (value ?? {}) as { message?: unknown; code?: unknown };
  const why = [message, code].filter((part) => typeof part === 'string').join(', ');
  return new Error(`the WAL checkpoint thread failed: ${why === '' ? JSON.stringify(value) : why}`);
}

type Reply = { n: number; frames: number; copied: number } | { n: number; error: string };

export class WalCheckpointer {
  readonly #file: string;
  readonly #connection: { exec(sql: string): unknown };
  readonly #threshold: number;
  readonly #periodMs: number;
  readonly #idleMs: number;
  readonly #options: WalCheckpointOptions;
  #timer: NodeJS.Timeout | undefined;
  #thread: Worker | undefined;
  #exited: Promise<void> | undefined;
  #ticking: Promise<void> | undefined;
  #lastWork = 0;
  #requests = 0;
  #failed = false;
  readonly #le = os.endianness() === 'LE';

  constructor(file: string, connection: { exec(sql: string): unknown }, options: WalCheckpointOptions = {}) {
    this.#file = file;
    this.#connection = connection;
    this.#threshold = options.thresholdFrames ?? 1000;
    this.#periodMs = options.periodMs ?? 250;
    this.#idleMs = options.idleMs ?? 30_000;
    this.#options = options;
  }

  /** Turns the connection's automatic checkpoints off and starts looking at the log. */
  start(): void {
    if (this.#timer !== undefined || this.#failed) return;
    this.#connection.exec('PRAGMA wal_autocheckpoint = 0');
    this.#timer = setInterval(() => void this.tick(), this.#periodMs);
    this.#timer.unref();
  }

  /** Whether the thread is running now. */
  get threadRunning(): boolean {
    return this.#thread !== undefined;
  }

  /** Frames in the log not yet copied into the database (0 when the log is empty or absent). */
  async pendingFrames(): Promise<number> {
    let handle;
    try {
      handle = await open(`${this.#file}-shm`, 'r');
    } catch {
      return 0;
    }
    try {
      const header = Buffer.alloc(N_BACKFILL + 4);
      const { bytesRead } = await handle.read(header, 0, header.length, 0);
      if (bytesRead < header.length || header[IS_INIT] === 0) return 0;
      const read = (at: number): number => (this.#le ? header.readUInt32LE(at) : header.readUInt32BE(at));
      return Math.max(0, read(MX_FRAME) - read(N_BACKFILL));
    } finally {
      await handle.close();
    }
  }

  /** One look at the log: checkpoints it on the thread past the threshold, ends an idle thread. */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => {
      this.#ticking = undefined;
    });
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    if (this.#failed || this.#timer === undefined) return;
    try {
      if ((await this.pendingFrames()) >= this.#threshold) {
        const result = await this.#checkpoint();
        this.#lastWork = Date.now();
        this.#options.onCheckpoint?.(result);
      } else if (this.#thread !== undefined && Date.now() - this.#lastWork >= this.#idleMs) {
        await this.#stopThread();
      }
    } catch (err) {
      this.#fail(err instanceof Error ? err : asError(err));
    }
  }

  #checkpoint(): Promise<{ frames: number; copied: number }> {
    const thread = this.#thread ?? this.#startThread();
    const n = ++this.#requests;
    return new Promise((resolve, reject) => {
      const onMessage = (reply: Reply): void => {
        if (reply.n !== n) return;
        done();
        if ('error' in reply) reject(new Error(`WAL checkpoint failed: ${reply.error}`));
        else resolve({ frames: reply.frames, copied: reply.copied });
      };
      const onError = (err: unknown): void => {
        done();
        reject(asError(err));
      };
      const onExit = (code: number): void => {
        done();
        reject(new Error(`the WAL checkpoint thread ended (exit code ${code})`));
      };
      const done = (): void => {
        thread.off('message', onMessage);
        thread.off('error', onError);
        thread.off('exit', onExit);
      };
      thread.on('message', onMessage);
      thread.on('error', onError);
      thread.on('exit', onExit);
      thread.postMessage({ n });
    });
  }

  #startThread(): Worker {
    // A small young generation: the thread allocates little, but with the process's own size
    // (`--max-semi-space-size`) its allocations would sweep through, and keep, 16 MB of it.
    const thread = spawnWorker(import.meta.url, './checkpoint.thread', { file: this.#file }, undefined, { maxYoungGenerationSizeMb: 1 });
    thread.unref();
    this.#thread = thread;
    this.#exited = new Promise((resolve) =>
      thread.once('exit', () => {
        if (this.#thread === thread) this.#thread = undefined;
        this.#options.onThreadExit?.();
        resolve();
      }),
    );
    // An error also ends the thread; a request in flight hears of it, an idle thread is restarted on next need.
    thread.on('error', () => undefined);
    return thread;
  }

  async #stopThread(): Promise<void> {
    const thread = this.#thread;
    const exited = this.#exited;
    if (thread === undefined || exited === undefined) return;
    thread.postMessage('stop');
    const timeout = setTimeout(() => void thread.terminate(), 5000);
    await exited;
    clearTimeout(timeout);
  }

  #fail(err: Error): void {
    this.#failed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    try {
      this.#connection.exec(`PRAGMA wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT}`);
    } catch {
      // The connection is closing; nothing is written through it any more.
    }
    this.#options.onError?.(err);
    void this.#stopThread();
  }

  /** Stops looking, ends the thread and gives checkpoints back to the connection (before it closes). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#ticking;
    await this.#stopThread();
    if (!this.#failed) this.#connection.exec(`PRAGMA wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT}`);
  }
}
