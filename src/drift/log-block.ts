/**
 * The prediction log's stored form: a block per (model, version) per flush, holding that flush's
 * rows packed column by column. One store row per flush instead of one per prediction: writing a
 * flush is one INSERT of its bytes instead of thousands, and reading a 10,000-row drift window is
 * a few block reads and one copy of each block's input bytes.
 *
 * Format 1, little-endian, sections in this order (the float sections start at multiples of 8):
 *
 * | offset | type | what |
 * |---|---|---|
 * | 0 | u8 | format (1) |
 * | 1 | u8 x 3 | reserved, 0 |
 * | 4 | u32 | n, rows |
 * | 8 | u32 | I, bytes of the input section |
 * | 12 | u32 | T, bytes of the text section |
 * | 16 | f64 x n | time (ms since the epoch) |
 * | | f64 x n | latency (ms) |
 * | | i32 x n | byte length of the request id in the text section; -1: no request id |
 * | | i32 x n | byte length of the answer in the text section |
 * | | i32 x n | byte length of the input row in the input section |
 * | | u8 x n | kind: 0 single, 1 batch, 2 invocations, 3 explain, 4 kserve |
 * | | 0 to 7 bytes | padding to a multiple of 8 |
 * | | u8 x I | the input rows back to back, as the model took them (float32 or float64, the element type in the version's schema) |
 * | | u8 x T | per row its request id (UTF-8), then its answer (a JSON object, UTF-8) |
 *
 * A row's number in the log (its id) is the block's first sequence number (a column of the block's
 * store row) plus its index in the block; the store row also holds the rows' count and first and
 * last times, so paging, time windows and retention read the metadata and decode only the blocks
 * they need.
 */
import os from 'node:os';
import type { ServedKind } from '../serving/prediction.service.ts';

/** The format byte of blocks written by this version. */
export const BLOCK_FORMAT = 1;

const HEADER = 16;

/** Served kinds by code (a row holds the code). */
export const KINDS: readonly ServedKind[] = ['single', 'batch', 'invocations', 'explain', 'kserve'];
export const KIND_CODES: ReadonlyMap<string, number> = new Map(KINDS.map((k, i) => [k, i]));

// The sections are typed-array views of the block, which use the machine's byte order.
if (os.endianness() !== 'LE') throw new Error('the prediction log block format needs a little-endian machine');

/** A block ready for the store. */
export interface EncodedBlock {
  readonly model: string;
  readonly version: string;
  readonly rows: number;
  /** Earliest and latest row time (ms). */
  readonly firstAt: number;
  readonly lastAt: number;
  readonly data: Uint8Array;
}

/** Byte offsets of a block's sections. */
interface Layout {
  readonly at: number;
  readonly latency: number;
  readonly idLength: number;
  readonly outputLength: number;
  readonly inputLength: number;
  readonly kind: number;
  readonly inputs: number;
  readonly text: number;
  readonly size: number;
}

function layout(n: number, inputBytes: number, textBytes: number): Layout {
  const at = HEADER;
  const latency = at + 8 * n;
  const idLength = latency + 8 * n;
  const outputLength = idLength + 4 * n;
  const inputLength = outputLength + 4 * n;
  const kind = inputLength + 4 * n;
  const inputs = Math.ceil((kind + n) / 8) * 8;
  const text = inputs + inputBytes;
  return { at, latency, idLength, outputLength, inputLength, kind, inputs, text, size: text + textBytes };
}

/** A block's sections as writable views, for an encoder to fill. */
export interface BlockSections {
  readonly data: Uint8Array;
  readonly at: Float64Array;
  readonly latency: Float64Array;
  readonly idLength: Int32Array;
  readonly outputLength: Int32Array;
  readonly inputLength: Int32Array;
  readonly kind: Uint8Array;
  readonly inputs: Uint8Array;
  readonly text: Uint8Array;
}

/** A new block of `n` rows with room for `inputBytes` of input rows and `textBytes` of text; the header is written. */
export function allocateBlock(n: number, inputBytes: number, textBytes: number): BlockSections {
  const l = layout(n, inputBytes, textBytes);
  const buffer = new ArrayBuffer(l.size);
  const header = new DataView(buffer);
  header.setUint8(0, BLOCK_FORMAT);
  header.setUint32(4, n, true);
  header.setUint32(8, inputBytes, true);
  header.setUint32(12, textBytes, true);
  return sectionsOf(buffer, 0, l, n);
}

function sectionsOf(buffer: ArrayBufferLike, base: number, l: Layout, n: number): BlockSections {
  return {
    data: new Uint8Array(buffer, base, l.size),
    at: new Float64Array(buffer, base + l.at, n),
    latency: new Float64Array(buffer, base + l.latency, n),
    idLength: new Int32Array(buffer, base + l.idLength, n),
    outputLength: new Int32Array(buffer, base + l.outputLength, n),
    inputLength: new Int32Array(buffer, base + l.inputLength, n),
    kind: new Uint8Array(buffer, base + l.kind, n),
    inputs: new Uint8Array(buffer, base + l.inputs, l.text - l.inputs),
    text: new Uint8Array(buffer, base + l.text, l.size - l.text),
  };
}

/** One logged row given as values (conversions, tests, benchmarks; the log itself encodes from its buffers). */
export interface LogRowValues {
  readonly at: number;
  readonly latencyMs: number;
  readonly kind: string;
  readonly requestId: string | null;
  /** The answer as a JSON object's text. */
  readonly output: string;
  /** The input row's bytes as stored (little-endian values). */
  readonly inputs: Uint8Array;
}

/**
 * A block of rows given as values. @throws Error naming the row when its kind is not a served kind
 */
export function encodeRows(model: string, version: string, rows: readonly LogRowValues[]): EncodedBlock {
  const ids = rows.map((r) => (r.requestId === null ? null : Buffer.from(r.requestId, 'utf8')));
  const outputs = rows.map((r) => Buffer.from(r.output, 'utf8'));
  let inputBytes = 0;
  let textBytes = 0;
  rows.forEach((r, i) => {
    inputBytes += r.inputs.byteLength;
    textBytes += (ids[i]?.length ?? 0) + outputs[i]!.length;
  });
  const s = allocateBlock(rows.length, inputBytes, textBytes);
  let inputAt = 0;
  let textAt = 0;
  let firstAt = Infinity;
  let lastAt = -Infinity;
  rows.forEach((r, i) => {
    const kind = KIND_CODES.get(r.kind);
    if (kind === undefined) throw new Error(`prediction log row ${i} of ${model} ${version}: kind '${r.kind}' is not one of ${KINDS.join(', ')}`);
    s.at[i] = r.at;
    s.latency[i] = r.latencyMs;
    s.kind[i] = kind;
    s.inputLength[i] = r.inputs.byteLength;
    s.inputs.set(r.inputs, inputAt);
    inputAt += r.inputs.byteLength;
    const id = ids[i];
    s.idLength[i] = id === null || id === undefined ? -1 : id.length;
    if (id !== null && id !== undefined) {
      s.text.set(id, textAt);
      textAt += id.length;
    }
    s.outputLength[i] = outputs[i]!.length;
    s.text.set(outputs[i]!, textAt);
    textAt += outputs[i]!.length;
    firstAt = Math.min(firstAt, r.at);
    lastAt = Math.max(lastAt, r.at);
  });
  return { model, version, rows: rows.length, firstAt, lastAt, data: s.data };
}

/** A stored block, read: its columns as views, its rows' text and input rows by index. */
export class LogBlock {
  readonly rows: number;
  readonly at: Float64Array;
  readonly latency: Float64Array;
  readonly kind: Uint8Array;
  /** The input section (rows back to back). */
  readonly inputs: Uint8Array;
  private readonly sections: BlockSections;
  private inputStarts: Int32Array | undefined;
  private textStarts: Int32Array | undefined;

  /** @throws Error when the bytes are not a block of a known format */
  constructor(bytes: Uint8Array) {
    if (bytes.byteLength < HEADER) throw new Error(`prediction log block: ${bytes.byteLength} bytes, shorter than its header`);
    // Views of 8-byte values need an aligned start; drivers may hand out slices of a shared buffer.
    const data = bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes);
    const header = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const format = header.getUint8(0);
    if (format !== BLOCK_FORMAT) throw new Error(`prediction log block: format ${format} is not one this version reads (${BLOCK_FORMAT})`);
    const n = header.getUint32(4, true);
    const l = layout(n, header.getUint32(8, true), header.getUint32(12, true));
    if (l.size !== data.byteLength) throw new Error(`prediction log block: ${data.byteLength} bytes where its header describes ${l.size}`);
    this.sections = sectionsOf(data.buffer, data.byteOffset, l, n);
    this.rows = n;
    this.at = this.sections.at;
    this.latency = this.sections.latency;
    this.kind = this.sections.kind;
    this.inputs = this.sections.inputs;
  }

  /** The kind of row `i`. */
  kindOf(i: number): string {
    return KINDS[this.kind[i]!] ?? 'single';
  }

  /** Byte length of every row's input, or -1 when they differ. */
  uniformInputLength(): number {
    const lengths = this.sections.inputLength;
    const w = lengths[0] ?? 0;
    for (let i = 1; i < this.rows; i++) if (lengths[i] !== w) return -1;
    return w;
  }

  /** Start of row `i`'s input in {@link inputs} (`i = rows`: the end). */
  inputStart(i: number): number {
    this.inputStarts ??= starts(this.sections.inputLength, () => 0);
    return this.inputStarts[i]!;
  }

  /** Row `i`'s input bytes (a view). */
  input(i: number): Uint8Array {
    return this.inputs.subarray(this.inputStart(i), this.inputStart(i + 1));
  }

  /** Row `i`'s request id. */
  requestId(i: number): string | null {
    const n = this.sections.idLength[i]!;
    if (n < 0) return null;
    const t = this.textStart(i);
    return textOf(this.sections.text, t, t + n);
  }

  /** Row `i`'s answer, the text of a JSON object. */
  output(i: number): string {
    const t = this.textStart(i) + Math.max(this.sections.idLength[i]!, 0);
    return textOf(this.sections.text, t, t + this.sections.outputLength[i]!);
  }

  /** Rows `from` to the end as a block of their own (retention trims a block's older rows). */
  slice(from: number): Uint8Array {
    const s = this.sections;
    const n = this.rows - from;
    const inputStart = this.inputStart(from);
    const textStart = this.textStart(from);
    const out = allocateBlock(n, s.inputs.length - inputStart, s.text.length - textStart);
    out.at.set(s.at.subarray(from));
    out.latency.set(s.latency.subarray(from));
    out.idLength.set(s.idLength.subarray(from));
    out.outputLength.set(s.outputLength.subarray(from));
    out.inputLength.set(s.inputLength.subarray(from));
    out.kind.set(s.kind.subarray(from));
    out.inputs.set(s.inputs.subarray(inputStart));
    out.text.set(s.text.subarray(textStart));
    return out.data;
  }

  private textStart(i: number): number {
    const s = this.sections;
    this.textStarts ??= starts(s.outputLength, (k) => Math.max(s.idLength[k]!, 0));
    return this.textStarts[i]!;
  }
}

/** Running starts of `n` consecutive runs (`lengths[k]` plus `extra(k)` bytes each), and the end. */
function starts(lengths: Int32Array, extra: (k: number) => number): Int32Array {
  const out = new Int32Array(lengths.length + 1);
  for (let k = 0; k < lengths.length; k++) out[k + 1] = out[k]! + lengths[k]! + extra(k);
  return out;
}

function textOf(text: Uint8Array, start: number, end: number): string {
  return Buffer.from(text.buffer, text.byteOffset + start, end - start).toString('utf8');
}
