/**
 * The CSV parser thread (see `csv-parser.ts`): parses the uploads it is sent chunk by chunk with
 * `ingestCsv` and answers with what the catalogue keeps of them (schema, hash, counts). The parse's
 * garbage (the cells' text, the typed columns) lives and dies in this thread's heap.
 */
import { parentPort } from 'node:worker_threads';
import { ingestCsv } from './csv-ingest.ts';
import type { ParserReply, ParserRequest, ThreadError } from './csv-parser.ts';
import { DatasetParseError, DatasetTooLargeError } from './errors.ts';

const port = parentPort;
if (port === null) throw new Error('csv-parser.thread must run in a worker thread');

/** Chunks of one upload as an async iterable: `ingestCsv` pulls, messages push. */
class ChunkQueue implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private aborted = false;
  private wake: (() => void) | undefined;

  constructor(private readonly id: number) {}

  /** The next chunk, or `undefined` for the end of the upload. */
  push(chunk: Buffer | undefined): void {
    if (chunk === undefined) this.ended = true;
    else this.chunks.push(chunk);
    this.wakeUp();
  }

  /** The sender gave up on the upload: the parse stops at its next chunk. */
  abort(): void {
    this.aborted = true;
    this.chunks.length = 0;
    this.wakeUp();
  }

  private wakeUp(): void {
    this.wake?.();
    this.wake = undefined;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.aborted) throw new Error('upload abandoned');
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        yield chunk;
        // Asked for the next one: the previous chunk is parsed, its bytes may be sent again.
        port!.postMessage({ id: this.id, type: 'parsed', bytes: chunk.length } satisfies ParserReply);
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

function describe(err: unknown): ThreadError {
  if (err instanceof DatasetParseError) {
    return {
      kind: 'parse',
      message: err.message,
      ...(err.line === undefined ? {} : { line: err.line }),
      ...(err.row === undefined ? {} : { row: err.row }),
      ...(err.field === undefined ? {} : { field: err.field }),
    };
  }
  if (err instanceof DatasetTooLargeError) return { kind: 'too-large', message: err.message, maxBytes: err.maxBytes, bytesRead: err.bytesRead };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

const uploads = new Map<number, ChunkQueue>();

port.on('message', (msg: ParserRequest) => {
  switch (msg.op) {
    case 'start': {
      const queue = new ChunkQueue(msg.id);
      uploads.set(msg.id, queue);
      ingestCsv(queue, { maxBytes: msg.maxBytes, ...(msg.delimiter === undefined ? {} : { delimiter: msg.delimiter }) }).then(
        (r) => {
          const result = { schema: r.schema, sha256: r.sha256, bytes: r.bytes, rowCount: r.rowCount, columnCount: r.table.columns.length, delimiter: r.delimiter };
          port.postMessage({ id: msg.id, type: 'done', result } satisfies ParserReply);
        },
        (err: unknown) => port.postMessage({ id: msg.id, type: 'failed', error: describe(err) } satisfies ParserReply),
      ).finally(() => uploads.delete(msg.id));
      return;
    }
    case 'chunk':
      uploads.get(msg.id)?.push(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
      return;
    case 'end':
      uploads.get(msg.id)?.push(undefined);
      return;
    case 'abort':
      uploads.get(msg.id)?.abort();
      return;
  }
});
