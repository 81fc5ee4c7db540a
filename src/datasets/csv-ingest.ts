/**
 * Streaming CSV ingest: raw bytes in, typed columnar table + schema + sha-256 out, in one pass and
 * without ever holding the file as one string. The caller (the dataset service) can tee the same
 * bytes to the artifact store through `onChunk`, so an upload is hashed, stored and parsed while
 * it arrives; a stored version is loaded back for training by ingesting its stream again.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import type { InfoRecord } from 'csv-parse';
import { DatasetParseError, DatasetTooLargeError } from './errors.ts';
import { inferSchema } from './schema.ts';
import type { DatasetSchema } from './schema.ts';
import { ColumnBuilder, cellText } from './table.ts';
import type { ColumnType, Table } from './table.ts';

/** Default upload limit: 200 MiB. */
export const DEFAULT_MAX_DATASET_BYTES = 200 * 1024 * 1024;

/** Delimiters the sniffer chooses from, in order of preference on ties. */
export const CANDIDATE_DELIMITERS = [',', ';', '\t', '|'] as const;

/** Bytes looked at to sniff the delimiter (fixed, so the choice never depends on chunk sizes). */
const SNIFF_BYTES = 64 * 1024;
/** Records looked at to sniff the delimiter. */
const SNIFF_RECORDS = 50;
/** A record longer than this is almost surely an unclosed quote; fail early instead of buffering. */
const MAX_RECORD_CHARS = 16 * 1024 * 1024;

/** Options of `ingestCsv`. */
export interface CsvIngestOptions {
  /** Largest accepted input in bytes; beyond it `DatasetTooLargeError` (default 200 MiB). */
  readonly maxBytes?: number;
  /** Field delimiter; sniffed from the first 64 KiB among `,` `;` tab `|` when absent. */
  readonly delimiter?: string;
  /**
   * Called with every raw chunk, in order, before it is parsed, and awaited: lets the caller
   * write the exact uploaded bytes elsewhere with back-pressure, e.g. into a `PassThrough` handed
   * to `ArtifactStore.put` (resolve once `write` returns true or `'drain'` fires). Chunks beyond
   * `maxBytes` are never passed on.
   */
  readonly onChunk?: (chunk: Buffer) => void | Promise<void>;
}

/**
 * What a stored version's schema says of its columns: each named column is built as its type at
 * `rows` cells from the start (see `ColumnBuilder`); a cell that does not fit is a
 * `DatasetParseError`. Columns not named are typed from their cells as usual.
 */
export interface DeclaredColumns {
  readonly rows: number;
  readonly types: Readonly<Record<string, ColumnType>>;
}

/** What `ingestCsv` returns. */
export interface CsvIngestResult {
  readonly table: Table;
  readonly schema: DatasetSchema;
  /** Lower-case hex sha-256 of the raw bytes (BOM included), as `sha256sum` prints it. */
  readonly sha256: string;
  /** Size of the raw input in bytes. */
  readonly bytes: number;
  readonly rowCount: number;
  /** The delimiter used (given or sniffed). */
  readonly delimiter: string;
}

/** Source of CSV bytes: a stream, any async iterable of chunks, or the whole content. */
export type CsvSource = Readable | AsyncIterable<Buffer | Uint8Array | string> | Buffer | Uint8Array | string;

// ---------------------------------------------------------------------------------------------
// Delimiter sniffing

/**
 * Guesses the delimiter of CSV text from its first records. For each candidate (`,` `;` tab `|`)
 * it counts occurrences outside double quotes in each record (quoted fields may span lines). A
 * candidate must occur in the header; the winner is the one whose count matches the header's in
 * the most records, then the one with most fields, then the earlier in the list above. A trailing
 * record without its line end is ignored (it may be cut). Falls back to `,` (one column).
 */
export function sniffDelimiter(firstChunk: string): string {
  const text = firstChunk.charCodeAt(0) === 0xfeff ? firstChunk.slice(1) : firstChunk;
  const nCand = CANDIDATE_DELIMITERS.length;
  const codes = CANDIDATE_DELIMITERS.map((d) => d.charCodeAt(0));
  const records: number[][] = [];
  let counts: number[] = new Array<number>(nCand).fill(0);
  let inQuotes = false;
  let nonEmpty = false;
  for (let i = 0; i < text.length && records.length < SNIFF_RECORDS; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      inQuotes = !inQuotes;
      nonEmpty = true;
      continue;
    }
    if (!inQuotes && (c === 0x0a || c === 0x0d)) {
      if (nonEmpty) records.push(counts);
      counts = new Array<number>(nCand).fill(0);
      nonEmpty = false;
      continue;
    }
    if (!inQuotes) {
      const k = codes.indexOf(c);
      if (k >= 0) counts[k] = (counts[k] ?? 0) + 1;
    }
    nonEmpty = true;
  }
  // The text ended inside a record, which may be cut: use it only when it is all there is.
  if (nonEmpty && records.length === 0) records.push(counts);
  const header = records[0];
  if (header === undefined) return ',';
  let best = -1;
  let bestAgree = -1;
  let bestFields = -1;
  for (let k = 0; k < nCand; k++) {
    const h = header[k] ?? 0;
    if (h === 0) continue;
    let agree = 0;
    for (const r of records) if (r[k] === h) agree++;
    if (agree > bestAgree || (agree === bestAgree && h > bestFields)) {
      best = k;
      bestAgree = agree;
      bestFields = h;
    }
  }
  return best < 0 ? ',' : (CANDIDATE_DELIMITERS[best] ?? ',');
}

// ---------------------------------------------------------------------------------------------
// Ingest

function toBuffer(chunk: Buffer | Uint8Array | string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** The chunks of a source as Buffers (whole content in 64 KiB slices). */
export async function* chunksOf(source: CsvSource): AsyncGenerator<Buffer> {
  if (typeof source === 'string' || source instanceof Uint8Array) {
    const buf = toBuffer(source);
    for (let i = 0; i < buf.length; i += SNIFF_BYTES) yield buf.subarray(i, i + SNIFF_BYTES);
    return;
  }
  for await (const chunk of source as AsyncIterable<Buffer | Uint8Array | string>) {
    yield toBuffer(chunk);
  }
}

function fieldLabel(header: readonly string[] | undefined, index: unknown): string | undefined {
  if (typeof index !== 'number') return undefined;
  return header?.[index] ?? `#${index + 1}`;
}

/** Line breaks inside a field (CRLF counts once): a quoted field may span physical lines. */
function lineBreaksIn(field: string): number {
  let n = 0;
  for (let i = 0; i < field.length; i++) {
    const c = field.charCodeAt(i);
    if (c === 0x0a) n++;
    else if (c === 0x0d) {
      n++;
      if (field.charCodeAt(i + 1) === 0x0a) i++;
    }
  }
  return n;
}

/**
 * Consumes records as csv-parse emits them: the header, the column builders, and the physical
 * line each record starts on. Lines are counted here rather than taken from csv-parse, whose
 * counter sees a CRLF inside a quoted field as two lines.
 */
class RecordSink {
  constructor(private readonly declared: DeclaredColumns | undefined) {}

  header: string[] | undefined;
  headerLine = 0;
  builders: ColumnBuilder[] = [];
  rows = 0;
  /** Physical line the next record starts on. */
  nextLine = 1;
  /** csv-parse's own line counter when the last record ended (to place errors inside a record). */
  private parserLineAtLastEnd = 0;

  /**
   * Physical line of a csv-parse error reported at csv-parse line `parserLine`: the record's start
   * plus csv-parse's offset into it. Exact unless the failing record itself has CRLF breaks in a
   * quoted field before the error, which csv-parse counts twice.
   */
  lineOfParserError(parserLine: number | undefined): number {
    if (parserLine === undefined) return this.nextLine;
    return this.nextLine + Math.max(0, parserLine - (this.parserLineAtLastEnd + 1));
  }

  onRecord(record: string[], info: InfoRecord): null {
    const start = this.nextLine;
    let breaks = 0;
    // csv-parse's counter never under-counts, so a record it saw on one line has no breaks inside.
    if (info.lines - this.parserLineAtLastEnd > 1) {
      for (let j = 0; j < record.length; j++) breaks += lineBreaksIn(record[j] as string);
    }
    const end = start + breaks;
    this.nextLine = end + 1;
    this.parserLineAtLastEnd = info.lines;
    // Blank lines (or lines of blanks) come through as one empty field: skip them.
    if (record.length === 1 && (record[0] ?? '').trim() === '') return null;
    if (this.header === undefined) {
      this.setHeader(record, start);
      return null;
    }
    const width = this.builders.length;
    if (record.length !== width) {
      const where = end === start ? `line ${start}` : `line ${start} (record spanning lines ${start}-${end})`;
      throw new DatasetParseError(`${where} has ${record.length} fields, header has ${width}`, { line: start });
    }
    const builders = this.builders;
    try {
      for (let j = 0; j < width; j++) (builders[j] as ColumnBuilder).pushText(record[j] as string);
    } catch (err) {
      // A declared column's cell that does not fit: say where.
      if (err instanceof DatasetParseError && err.line === undefined) throw new DatasetParseError(`line ${start}: ${err.message}`, { line: start, ...(err.field === undefined ? {} : { field: err.field }) });
      throw err;
    }
    this.rows++;
    // Returning null keeps csv-parse from buffering the record downstream: it is consumed here.
    return null;
  }

  private setHeader(record: string[], line: number): void {
    const names = record.map((n) => n.trim());
    const seen = new Map<string, number>();
    for (let j = 0; j < names.length; j++) {
      const name = names[j] ?? '';
      if (name === '') {
        throw new DatasetParseError(`line ${line}: column ${j + 1} of the header has an empty name`, {
          line,
          field: `#${j + 1}`,
        });
      }
      const prev = seen.get(name);
      if (prev !== undefined) {
        throw new DatasetParseError(`line ${line}: duplicate column name "${name}" (columns ${prev + 1} and ${j + 1})`, {
          line,
          field: name,
        });
      }
      seen.set(name, j);
    }
    this.header = names;
    this.headerLine = line;
    const declared = this.declared;
    this.builders = names.map((n) => {
      const type = declared === undefined || !Object.hasOwn(declared.types, n) ? undefined : declared.types[n];
      return type === undefined ? new ColumnBuilder(n) : new ColumnBuilder(n, { type, rows: declared!.rows });
    });
  }
}

/** Turns a csv-parse error into a `DatasetParseError` naming the physical line and column. */
function mapCsvError(err: CsvError, sink: RecordSink): DatasetParseError {
  const ctx = err as CsvError & { lines?: unknown; column?: unknown };
  const line = sink.lineOfParserError(typeof ctx.lines === 'number' ? ctx.lines : undefined);
  const field = fieldLabel(sink.header, ctx.column);
  const inField = field === undefined ? '' : ` in field "${field}"`;
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return new DatasetParseError(`line ${sink.nextLine}: a quoted field${inField} is opened but never closed`, {
        line: sink.nextLine,
        field,
      });
    case 'CSV_INVALID_CLOSING_QUOTE':
      return new DatasetParseError(
        `line ${line}: unexpected character after a closing quote${inField} (a quote inside a quoted field must be doubled)`,
        { line, field },
      );
    case 'INVALID_OPENING_QUOTE':
      return new DatasetParseError(
        `line ${line}: a quote appears inside an unquoted field${inField} (quote the whole field and double the inner quote)`,
        { line, field },
      );
    case 'CSV_MAX_RECORD_SIZE':
      return new DatasetParseError(
        `line ${sink.nextLine}: record is longer than ${MAX_RECORD_CHARS} characters (an unclosed quote?)`,
        { line: sink.nextLine, field },
      );
    default:
      return new DatasetParseError(`line ${line}: ${err.message}`, { line, field });
  }
}

function checkDelimiter(d: string): string {
  if (d.length !== 1 || d === '"' || d === '\r' || d === '\n') {
    throw new DatasetParseError(`invalid delimiter ${JSON.stringify(d)}: must be one character, not a quote or line end`);
  }
  return d;
}

/**
 * Parses CSV from a stream (or async iterable of chunks, or whole content) into a typed table and
 * its schema, hashing the raw bytes (sha-256) as they stream. The first row is the header.
 * Handles a UTF-8 BOM, quoted fields (with embedded delimiters, quotes and line breaks), LF and
 * CRLF line ends, blank lines, and missing markers (see `table.ts`).
 *
 * Throws `DatasetTooLargeError` as soon as more than `maxBytes` arrive (the source is not read
 * further), and `DatasetParseError` naming the 1-based physical line for ragged rows, bad quoting,
 * empty or duplicate header names and inputs without data rows. On error the caller should
 * discard whatever `onChunk` already wrote.
 */
export async function ingestCsv(source: CsvSource, opts: CsvIngestOptions = {}): Promise<CsvIngestResult> {
  const parsed = await parseCsv(source, opts.maxBytes ?? DEFAULT_MAX_DATASET_BYTES, opts.delimiter, opts.onChunk, undefined);
  return { ...parsed, schema: inferSchema(parsed.table) };
}

/**
 * Reads a stored dataset version back into a table for training: no size limit, no schema (the
 * version has one), and its columns built as `declared` says, so a numeric column takes 8 bytes
 * per cell while it is read instead of also keeping every cell's text and regrowing.
 */
export async function readStoredCsv(source: CsvSource, delimiter: string, declared: DeclaredColumns | undefined): Promise<Table> {
  return (await parseCsv(source, Number.MAX_SAFE_INTEGER, delimiter, undefined, declared)).table;
}

async function parseCsv(
  source: CsvSource,
  maxBytes: number,
  givenDelimiter: string | undefined,
  onChunk: CsvIngestOptions['onChunk'],
  declared: DeclaredColumns | undefined,
): Promise<Omit<CsvIngestResult, 'schema'>> {
  const hash = createHash('sha256');
  const sink = new RecordSink(declared);
  let bytes = 0;
  let delimiter = givenDelimiter === undefined ? undefined : checkDelimiter(givenDelimiter);
  let parser: ReturnType<typeof parse> | undefined;
  let pending: Buffer[] = [];
  let pendingBytes = 0;

  const feed = (buf: Buffer | undefined): Promise<void> =>
    new Promise((resolve, reject) => {
      const p = parser as ReturnType<typeof parse>;
      const done = (err?: Error | null): void => {
        if (err) reject(translate(err));
        else resolve();
      };
      if (buf === undefined) {
        p.end(done);
      } else {
        p.write(buf, done);
      }
    });

  const translate = (err: Error): Error => {
    if (err instanceof CsvError) return mapCsvError(err, sink);
    return err;
  };

  const start = async (): Promise<void> => {
    const all = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    delimiter ??= sniffDelimiter(all.subarray(0, SNIFF_BYTES).toString('utf8'));
    parser = parse({
      delimiter,
      bom: true,
      columns: false,
      relax_column_count: true,
      // Blank lines arrive as records so that RecordSink can count physical lines.
      skip_empty_lines: false,
      max_record_size: MAX_RECORD_CHARS,
      on_record: (record: string[], info: InfoRecord) => sink.onRecord(record, info),
    });
    // Records are consumed in on_record; keep the readable side flowing and errors observed.
    parser.on('error', () => undefined);
    parser.resume();
    if (all.length > 0) await feed(all);
  };

  try {
    // Leaving this loop early (limit, parse error) calls return() on the source: a stream is destroyed.
    for await (const chunk of chunksOf(source)) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw new DatasetTooLargeError(maxBytes, bytes);
      hash.update(chunk);
      if (onChunk) await onChunk(chunk);
      if (parser === undefined) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= SNIFF_BYTES) await start();
      } else if (chunk.length > 0) {
        await feed(chunk);
      }
    }
    if (parser === undefined) await start();
    await feed(undefined);
  } catch (err) {
    parser?.destroy();
    throw err;
  }

  if (sink.header === undefined) {
    throw new DatasetParseError('line 1: the file is empty (no header row)', { line: 1 });
  }
  if (sink.rows === 0) {
    throw new DatasetParseError(`line ${sink.headerLine + 1}: no data rows after the header`, {
      line: sink.headerLine + 1,
    });
  }
  const table: Table = { columns: sink.builders.map((b) => b.finish()), rowCount: sink.rows };
  return {
    table,
    sha256: hash.digest('hex'),
    bytes,
    rowCount: sink.rows,
    delimiter: delimiter ?? ',',
  };
}

// ---------------------------------------------------------------------------------------------
// Export

function quoteField(s: string, delimiter: string): string {
  if (s.includes('"')) return `"${s.replaceAll('"', '""')}"`;
  if (s.includes(delimiter) || s.includes('\n') || s.includes('\r')) return `"${s}"`;
  // Quoted so that readers which keep edge blanks see them (ingestCsv itself trims cells).
  if (s.length > 0 && (s.charCodeAt(0) <= 32 || s.charCodeAt(s.length - 1) <= 32)) return `"${s}"`;
  return s;
}

/**
 * Writes a table as CSV text (RFC 4180): header row, CRLF line ends, fields quoted when they hold
 * the delimiter, a quote, a line break or edge whitespace, inner quotes doubled. Numbers use the
 * shortest round-trip form, booleans `true`/`false`, missing cells are empty.
 */
export function tableToCsv(table: Table, opts: { readonly delimiter?: string } = {}): string {
  const d = checkDelimiter(opts.delimiter ?? ',');
  const cols = table.columns;
  const lines = new Array<string>(table.rowCount + 1);
  lines[0] = cols.map((c) => quoteField(c.name, d)).join(d);
  const cells = new Array<string>(cols.length);
  for (let i = 0; i < table.rowCount; i++) {
    for (let j = 0; j < cols.length; j++) {
      const col = cols[j];
      if (col === undefined) continue;
      cells[j] = col.type === 'categorical' ? quoteField(cellText(col, i), d) : cellText(col, i);
    }
    lines[i + 1] = cells.join(d);
  }
  return lines.join('\r\n') + '\r\n';
}
