/**
 * The prediction log's writer thread (see `log-writer.ts`): its own connection to the store's
 * SQLite file, opened by `openStore` like the API's (same SQLite library, WAL, busy timeout),
 * writing each batch it is sent in one transaction and answering when it is stored.
 */
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { openStore, type Store } from '../store/database.ts';
import { insertPredictionValues } from './drift.repository.ts';
import { batchValues } from './log-batch.ts';
import type { WriterReply, WriterRequest, WriterThreadData } from './log-writer.ts';

const port = parentPort;
if (port === null) throw new Error('log-writer.thread must run in a worker thread');
const { file } = workerData as WriterThreadData;

let store: Promise<Store> | undefined;

async function handle(msg: WriterRequest): Promise<void> {
  if (msg.op === 'close') {
    const s = store;
    store = undefined;
    if (s !== undefined) await (await s).close();
    return;
  }
  // Opened on the first batch; a failed open is tried again with the next one.
  store ??= openStore({ dataDir: path.dirname(file), sqlitePath: file }).catch((err: unknown) => {
    store = undefined;
    throw err;
  });
  await insertPredictionValues((await store).db, batchValues(msg.batch), 'sqlite');
}

// One message at a time, in order: a batch is stored before the next one starts.
let queue = Promise.resolve();
port.on('message', (msg: WriterRequest) => {
  queue = queue.then(() =>
    handle(msg).then(
      () => port.postMessage({ id: msg.id, ok: true } satisfies WriterReply),
      (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies WriterReply),
    ),
  );
});
