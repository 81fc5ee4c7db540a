/**
 * The WAL checkpoint thread (wal-checkpoint.ts): one SQLite connection of its own to the store's
 * file. Each `{ n }` message runs one PASSIVE checkpoint and is answered `{ n, frames, copied }`
 * (frames in the log, frames copied into the database) or `{ n, error }`; `stop` closes the
 * connection and ends the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openSqlite } from './sqlite.ts';

const port = parentPort!;
const db = openSqlite((workerData as { file: string }).file);
db.exec('PRAGMA busy_timeout = 5000');
// A checkpoint reads the log's frames and writes the database's pages directly; its page cache
// holds little more than the schema (SQLite's default is up to 2 MB).
db.exec('PRAGMA cache_size = -256');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

port.on('message', (message: { n: number } | 'stop') => {
  if (message === 'stop') {
    db.close();
    port.close();
    return;
  }
  try {
    const row = checkpoint.all([])[0] as { busy: number; log: number; checkpointed: number };
    port.postMessage({ n: message.n, frames: Number(row.log), copied: Number(row.checkpointed) });
  } catch (err) {
    port.postMessage({ n: message.n, error: err instanceof Error ? err.message : String(err) });
  }
});
