/**
 * Where the prediction log's batches go. Two writers behind one small interface:
 *
 * - `StoreLogWriter` writes through the process's own store connection: PostgreSQL (the write is
 *   network I/O; the event loop only sends it) and in-memory SQLite.
 * - `ThreadLogWriter`, for an SQLite file: better-sqlite3 (and node:sqlite) run every statement
 *   synchronously on the calling thread, so a flush of thousands of rows would hold the event
 *   loop for milliseconds. This writer hands each batch to a thread with its own connection to the
 *   same file (WAL mode: it writes while the API's connection reads and writes, each writer
 *   waiting its turn under `busy_timeout`). The thread opens the file with `openStore`, so it uses
 *   the same SQLite library as the rest of the process: two copies of SQLite in one process do not
 *   see each other's locks and corrupt the file.
 *
 * Either way a batch is written in one transaction: it is written whole or not at all, so a batch
 * the log writes again after a failure is never written twice.
 */
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { Store } from '../store/database.ts';
import { spawnWorker } from '../util/threads.ts';
import { insertPredictionValues } from './drift.repository.ts';
import { batchValues, type LogBatch } from './log-batch.ts';

export interface LogWriter {
  /** Writes a batch; resolves once it is stored, rejects when nothing of it was. */
  write(batch: LogBatch): Promise<void>;
  /** Releases the writer (batches in flight are awaited by the caller first). */
  close(): Promise<void>;
}

/** Writes batches through the store's own connection. */
export class StoreLogWriter implements LogWriter {
  private readonly store: Store;

  constructor(store: Store) {
    this.store = store;
  }

  async write(batch: LogBatch): Promise<void> {
    await insertPredictionValues(this.store.db, batchValues(batch), this.store.dialect);
  }

  async close(): Promise<void> {
    // The store belongs to the process.
  }
}

/** Messages to the writer thread. */
export type WriterRequest = { readonly op: 'write'; readonly id: number; readonly batch: LogBatch } | { readonly op: 'close'; readonly id: number };

/** Answers of the writer thread. */
export type WriterReply = { readonly id: number; readonly ok: true } | { readonly id: number; readonly ok: false; readonly error: string };

/** What the writer thread is started with. */
export interface WriterThreadData {
  /** The SQLite file of the store. */
  readonly file: string;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** Writes batches on a thread of its own with its own connection to the store's SQLite file. */
export class ThreadLogWriter implements LogWriter {
  private readonly file: string;
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 1;

  /** @param file the store's SQLite file (not `:memory:`, which no other connection can open) */
  constructor(file: string) {
    this.file = path.resolve(file);
  }

  /** Sends a copy of the batch (a few blocks of memory), so the log keeps its rows until the answer. */
  write(batch: LogBatch): Promise<void> {
    return this.call({ op: 'write', batch });
  }

  /** Closes the thread's connection and stops the thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    try {
      await this.call({ op: 'close' });
    } finally {
      this.worker = undefined;
      this.failAll(new Error('prediction log writer closed'));
      await worker.terminate();
    }
  }

  private call(request: { op: 'write'; batch: LogBatch } | { op: 'close' }): Promise<void> {
    const worker = this.ensure();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // The thread keeps the process alive only while it owes an answer.
      if (this.waiting.size === 1) worker.ref();
      worker.postMessage({ ...request, id } satisfies WriterRequest);
    });
  }

  private ensure(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = spawnWorker(import.meta.url, './log-writer.thread', { file: this.file } satisfies WriterThreadData);
    worker.unref();
    worker.on('message', (reply: WriterReply) => {
      const w = this.waiting.get(reply.id);
      if (w === undefined) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      if (reply.ok) w.resolve();
      else w.reject(new Error(reply.error));
    });
    const lost = (why: string): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(new Error(`prediction log writer thread stopped: ${why}`));
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiters) w.reject(err);
  }
}

/** The writer for a store: a thread for an SQLite file, the store's connection otherwise. */
export function openLogWriter(store: Store): LogWriter {
  return store.dialect === 'sqlite' && store.file !== undefined ? new ThreadLogWriter(store.file) : new StoreLogWriter(store);
}
