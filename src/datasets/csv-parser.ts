/**
 * CSV uploads parsed on a worker thread. Parsing a large upload builds its typed columns plus a log
 * of every possibly-categorical cell's text (about 3 bytes of memory per byte of CSV), all garbage
 * once the schema is known. Parsed on the event loop, that garbage stayed in the main heap until a
 * full collection (a 170 MB upload left about 520 MiB resident, and the collection later paused
 * requests), and the parse itself held the loop for seconds. On this thread it never reaches the
 * main heap: the caller reads, limits, tees and forwards the raw chunks, the thread parses them and
 * sends back the schema and counts. The thread starts on the first upload and ends once idle for
 * {@link PARSER_IDLE_MS}, which hands its whole heap back.
 */
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../util/threads.ts';
import { chunksOf, DEFAULT_MAX_DATASET_BYTES, type CsvIngestOptions, type CsvSource } from './csv-ingest.ts';
import { DatasetParseError, DatasetTooLargeError } from './errors.ts';
import type { DatasetSchema } from './schema.ts';

/** An idle parser thread is ended after this long (uploads that follow each other share one). */
export const PARSER_IDLE_MS = 1000;
/**
 * Bytes sent to the thread and not parsed yet, at most: reading the upload waits beyond it, so a
 * slow parse slows the upload instead of queueing it in memory.
 */
const IN_FLIGHT_BYTES = 4 * 1024 * 1024;

/** What an upload's parse yields: what the catalogue stores of it (`ingestCsv`'s result less the table). */
export interface ParsedUpload {
  readonly schema: DatasetSchema;
  /** Lower-case hex sha-256 of the raw bytes. */
  readonly sha256: string;
  readonly bytes: number;
  readonly rowCount: number;
  readonly columnCount: number;
  readonly delimiter: string;
}

/** A failure inside the thread, as a message can carry it. */
export type ThreadError =
  | { readonly kind: 'parse'; readonly message: string; readonly line?: number; readonly row?: number; readonly field?: string }
  | { readonly kind: 'too-large'; readonly message: string; readonly maxBytes: number; readonly bytesRead: number }
  | { readonly kind: 'other'; readonly message: string };

/** Messages to the thread. `id` names the upload (several may be parsed at once). */
export type ParserRequest =
  | { readonly op: 'start'; readonly id: number; readonly maxBytes: number; readonly delimiter?: string }
  | { readonly op: 'chunk'; readonly id: number; readonly data: Uint8Array }
  | { readonly op: 'end'; readonly id: number }
  | { readonly op: 'abort'; readonly id: number };

/** Messages from the thread. */
export type ParserReply =
  | { readonly id: number; readonly type: 'parsed'; readonly bytes: number }
  | { readonly id: number; readonly type: 'done'; readonly result: ParsedUpload }
  | { readonly id: number; readonly type: 'failed'; readonly error: ThreadError };

function toError(e: ThreadError): Error {
  switch (e.kind) {
    case 'parse':
      return new DatasetParseError(e.message, {
        ...(e.line === undefined ? {} : { line: e.line }),
        ...(e.row === undefined ? {} : { row: e.row }),
        ...(e.field === undefined ? {} : { field: e.field }),
      });
    case 'too-large':
      return new DatasetTooLargeError(e.maxBytes, e.bytesRead);
    case 'other':
      return new Error(`CSV parser thread: ${e.message}`);
  }
}

/** One upload on the thread: what the thread said of it so far. */
class Upload {
  constructor(readonly worker: Worker) {}

  inFlight = 0;
  failure: Error | undefined;
  result: ParsedUpload | undefined;
  private waiter: (() => void) | undefined;

  /** Something changed (bytes parsed, done, failed). */
  notify(): void {
    this.waiter?.();
    this.waiter = undefined;
  }

  /** Waits until `ready()` holds or the upload failed (then throws its error). */
  async until(ready: () => boolean): Promise<void> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (ready()) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

/** The parser thread and the uploads on it (see the module comment). */
export class CsvParserThread {
  private worker: Worker | undefined;
  private readonly uploads = new Map<number, Upload>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Per thread, the uploads waiting for its answer now. */
  private readonly waiting = new Map<Worker, number>();

  /**
   * Parses CSV from `source` on the thread, with `ingestCsv`'s options and errors: the source is
   * read here (a `DatasetTooLargeError` as soon as more than `maxBytes` arrived, `onChunk` awaited
   * with every chunk before it is sent on), parsed there; a `DatasetParseError` names the line as
   * `ingestCsv`'s does. Reading stops at the first error (a parse error reaches the reader within
   * {@link IN_FLIGHT_BYTES} of the failing line; passing `maxBytes` before the thread reported a
   * parse error in the bytes before it gives `DatasetTooLargeError`).
   */
  async parse(source: CsvSource, opts: CsvIngestOptions = {}): Promise<ParsedUpload> {
    const maxBytes = opts.maxBytes ?? DEFAULT_MAX_DATASET_BYTES;
    const worker = this.thread();
    const id = this.nextId++;
    const upload = new Upload(worker);
    this.uploads.set(id, upload);
    worker.postMessage({ op: 'start', id, maxBytes, ...(opts.delimiter === undefined ? {} : { delimiter: opts.delimiter }) } satisfies ParserRequest);
    let bytes = 0;
    try {
      // Leaving this loop early (limit, parse error) calls return() on the source: a stream is destroyed.
      for await (const chunk of chunksOf(source)) {
        if (chunk.length === 0) continue;
        bytes += chunk.length;
        // At once, without waiting for the thread to catch up (it may still be starting): a parse
        // error it already reported came first in the file and wins.
        if (bytes > maxBytes) throw upload.failure ?? new DatasetTooLargeError(maxBytes, bytes);
        if (opts.onChunk) await opts.onChunk(chunk);
        await this.waitFor(upload, () => upload.inFlight < IN_FLIGHT_BYTES);
        // A copy of its own, moved to the thread: the chunk may be a view of a larger (pooled) buffer.
        const data = new Uint8Array(chunk.length);
        data.set(chunk);
        upload.inFlight += data.length;
        worker.postMessage({ op: 'chunk', id, data } satisfies ParserRequest, [data.buffer]);
      }
      worker.postMessage({ op: 'end', id } satisfies ParserRequest);
      await this.waitFor(upload, () => upload.result !== undefined);
      return upload.result!;
    } catch (err) {
      if (upload.result === undefined && upload.failure === undefined) worker.postMessage({ op: 'abort', id } satisfies ParserRequest);
      throw err;
    } finally {
      this.uploads.delete(id);
      this.settle();
    }
  }

  /** Whether the thread is running (it is ended once idle). */
  get alive(): boolean {
    return this.worker !== undefined;
  }

  /** Ends the thread now (uploads in progress fail). */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  private thread(): Worker {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.worker !== undefined) return this.worker;
    const worker = spawnWorker(import.meta.url, './csv-parser.thread', null);
    // Referenced only while an upload waits for it (see waitFor).
    worker.unref();
    this.worker = worker;
    worker.on('message', (msg: ParserReply) => {
      const upload = this.uploads.get(msg.id);
      if (upload === undefined) return;
      if (msg.type === 'parsed') upload.inFlight -= msg.bytes;
      else if (msg.type === 'done') upload.result = msg.result;
      else upload.failure = toError(msg.error);
      upload.notify();
    });
    let lastError: Error | undefined;
    worker.on('error', (err) => (lastError = err));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      for (const upload of this.uploads.values()) {
        if (upload.worker !== worker) continue;
        upload.failure ??= new Error(`the CSV parser thread stopped (exit code ${code}${lastError === undefined ? '' : `: ${lastError.message}`})`);
        upload.notify();
      }
    });
    return worker;
  }

  /**
   * Waits on the thread for `upload`, keeping the process alive meanwhile (a command-line upload
   * would otherwise exit before the thread answers). While an upload waits for its source instead,
   * the thread holds nothing: a request that stalls keeps the process no more alive than its
   * socket does.
   */
  private async waitFor(upload: Upload, ready: () => boolean): Promise<void> {
    const { worker } = upload;
    const before = this.waiting.get(worker) ?? 0;
    this.waiting.set(worker, before + 1);
    if (before === 0) worker.ref();
    try {
      await upload.until(ready);
    } finally {
      const left = (this.waiting.get(worker) ?? 1) - 1;
      if (left === 0) {
        this.waiting.delete(worker);
        worker.unref();
      } else {
        this.waiting.set(worker, left);
      }
    }
  }

  /** With no upload left, the thread is ended once idle. */
  private settle(): void {
    const worker = this.worker;
    if (worker === undefined || this.uploads.size > 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.worker === worker && this.uploads.size === 0) {
        this.worker = undefined;
        void worker.terminate();
      }
    }, PARSER_IDLE_MS);
    this.idleTimer.unref();
  }
}
