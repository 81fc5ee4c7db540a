/**
 * Where the prediction log's flushes go. The store takes a flush as one block per (model, version)
 * in one transaction (`insertBlocks`), on the process's own connection. On SQLite that is a
 * synchronous write on the event loop, but one INSERT per block (a copy of its bytes) instead of
 * one per row, so no thread or second connection is needed (the writer thread an SQLite file had
 * before blocks cost ~13 MB of resident memory); on PostgreSQL the event loop only sends it. A flush is written whole
 * or not at all, so a flush the log writes again after a failure never stores a row twice.
 */
import type { Store } from '../store/database.ts';
import { insertBlocks } from './drift.repository.ts';
import type { EncodedBlock } from './log-block.ts';

export interface LogWriter {
  /** Writes a flush's blocks; resolves once they are stored, rejects when none of them was. */
  write(blocks: readonly EncodedBlock[]): Promise<void>;
  /** Releases the writer (the log awaits its writes first). */
  close(): Promise<void>;
}

/** Writes blocks through the store's own connection. */
export class StoreLogWriter implements LogWriter {
  private readonly store: Store;

  constructor(store: Store) {
    this.store = store;
  }

  async write(blocks: readonly EncodedBlock[]): Promise<void> {
    await insertBlocks(this.store.db, blocks);
  }

  async close(): Promise<void> {
    // The store belongs to the process.
  }
}
