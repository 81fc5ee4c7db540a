/**
 * Logged rows while they wait for the store, and on their way to it: typed arrays, column by
 * column, with no JavaScript object or string per row.
 *
 * Rows wait up to a flush period (a quarter of a second, thousands of rows). Kept as objects and
 * strings, they outlived the young generation's collections, which copied them and promoted them,
 * and the old generation's collections that followed cost more than writing the rows. Here a row
 * is a few numbers and bytes appended to buffers that grow by doubling; the same buffers are the
 * batch the writer gets (copied by `postMessage` as a few blocks of memory), and the writer turns
 * them into the store's values (base64 of the inputs included), off the event loop when it is a
 * thread.
 */
import type { ServedKind } from '../serving/prediction.service.ts';
import { LOG_COLUMNS } from './drift.repository.ts';

/** Served kinds by code (a row holds the code). */
const KINDS: readonly ServedKind[] = ['single', 'batch', 'invocations', 'explain', 'kserve'];
const KIND_CODES = new Map(KINDS.map((k, i) => [k, i]));

/** Integers per row in {@link LogBatch.ints}. */
const INTS = 6;
/** Input rows start at multiples of 8 bytes, so float32 and float64 views can write them. */
const ALIGN = 8;

/** The rows of a flush (or what is left of them) as the writer gets them. */
export interface LogBatch {
  readonly rows: number;
  /** Model name and version of label `k` at `2k` and `2k + 1`. */
  readonly labels: readonly string[];
  /** Per row: `at` (ms) and `latency_ms`. */
  readonly numbers: Float64Array;
  /**
   * Per row: label, kind code, byte length of the request id in {@link text} (-1: none), byte
   * length of the output in {@link text}, byte offset and byte length of the input row in
   * {@link inputs}.
   */
  readonly ints: Int32Array;
  /** Each row's request id and output (the answer's JSON object), UTF-8, row after row. */
  readonly text: Uint8Array;
  /** Each row's input values as stored (little-endian floats). */
  readonly inputs: Uint8Array;
}

/** Rows appended one by one into growing typed arrays; the oldest can be dropped. */
export class LogRows {
  private count = 0;
  /** Rows dropped from the front, and the text bytes they held. */
  private first = 0;
  private firstText = 0;
  private numbers: Float64Array;
  private ints: Int32Array;
  private text: Uint8Array;
  /** {@link text} as a Buffer, for its UTF-8 writes. */
  private textBuffer: Buffer;
  private textEnd = 0;
  private inputs: Uint8Array;
  private floats: Float32Array;
  private doubles: Float64Array;
  private inputEnd = 0;

  /** @param rows room for this many rows before growing (about a flush's worth) */
  constructor(rows: number) {
    const n = Math.max(rows, 16);
    this.numbers = new Float64Array(2 * n);
    this.ints = new Int32Array(INTS * n);
    this.text = new Uint8Array(128 * n);
    this.textBuffer = Buffer.from(this.text.buffer);
    this.inputs = new Uint8Array(256 * n);
    this.floats = new Float32Array(this.inputs.buffer);
    this.doubles = new Float64Array(this.inputs.buffer);
  }

  /** Rows held (appended and not dropped). */
  get rows(): number {
    return this.count - this.first;
  }

  /**
   * Appends a row: its input is `n` values of `values` from index `start`; `output` is the
   * answer's JSON fields without braces.
   */
  append(label: number, kind: ServedKind, at: number, latencyMs: number, requestId: string | null, output: string, values: Float32Array | Float64Array, start: number, n: number): void {
    const r = this.count;
    if (r === this.numbers.length / 2) this.growRows();
    this.numbers[2 * r] = at;
    this.numbers[2 * r + 1] = latencyMs;
    // UTF-8 takes at most three bytes per UTF-16 unit.
    const textMax = 3 * ((requestId?.length ?? 0) + output.length) + 2;
    if (this.textEnd + textMax > this.text.length) this.growText(this.textEnd + textMax);
    const text = this.textBuffer;
    let t = this.textEnd;
    const idBytes = requestId === null ? -1 : text.write(requestId, t, 'utf8');
    if (idBytes > 0) t += idBytes;
    const outputStart = t;
    text[t++] = 0x7b; // {
    t += text.write(output, t, 'utf8');
    text[t++] = 0x7d; // }
    this.textEnd = t;
    const size = n * values.BYTES_PER_ELEMENT;
    const offset = Math.ceil(this.inputEnd / ALIGN) * ALIGN;
    if (offset + size > this.inputs.length) this.growInputs(offset + size);
    if (values instanceof Float64Array) {
      const to = this.doubles;
      const base = offset / 8;
      for (let k = 0; k < n; k++) to[base + k] = values[start + k]!;
    } else {
      const to = this.floats;
      const base = offset / 4;
      for (let k = 0; k < n; k++) to[base + k] = values[start + k]!;
    }
    this.inputEnd = offset + size;
    const i = INTS * r;
    this.ints[i] = label;
    this.ints[i + 1] = KIND_CODES.get(kind) ?? 0;
    this.ints[i + 2] = idBytes;
    this.ints[i + 3] = t - outputStart;
    this.ints[i + 4] = offset;
    this.ints[i + 5] = size;
    this.count = r + 1;
  }

  /** Empties the buffers for reuse (their memory is kept). */
  clear(): void {
    this.count = 0;
    this.first = 0;
    this.firstText = 0;
    this.textEnd = 0;
    this.inputEnd = 0;
  }

  /** Drops up to `n` of the oldest rows; returns how many were dropped. */
  dropOldest(n: number): number {
    const k = Math.min(n, this.rows);
    for (let r = this.first; r < this.first + k; r++) this.firstText += Math.max(this.ints[INTS * r + 2]!, 0) + this.ints[INTS * r + 3]!;
    this.first += k;
    return k;
  }

  /** The rows held, as a batch: views of these arrays (append nothing afterwards). */
  batch(labels: readonly string[]): LogBatch {
    const { first, count } = this;
    return {
      rows: count - first,
      labels,
      numbers: this.numbers.subarray(2 * first, 2 * count),
      ints: this.ints.subarray(INTS * first, INTS * count),
      text: this.text.subarray(this.firstText, this.textEnd),
      inputs: this.inputs.subarray(0, this.inputEnd),
    };
  }

  private growRows(): void {
    this.numbers = grow(this.numbers, this.numbers.length, 2 * this.numbers.length, (n) => new Float64Array(n));
    this.ints = grow(this.ints, this.ints.length, 2 * this.ints.length, (n) => new Int32Array(n));
  }

  private growText(needed: number): void {
    this.text = grow(this.text, this.textEnd, needed, (n) => new Uint8Array(n));
    this.textBuffer = Buffer.from(this.text.buffer);
  }

  private growInputs(needed: number): void {
    this.inputs = grow(this.inputs, this.inputEnd, needed, (n) => new Uint8Array(n));
    this.floats = new Float32Array(this.inputs.buffer);
    this.doubles = new Float64Array(this.inputs.buffer);
  }
}

/** A copy of `array` at least `needed` long (and at least twice as long), its first `used` elements kept. */
function grow<T extends Float64Array | Int32Array | Uint8Array>(array: T, used: number, needed: number, make: (length: number) => T): T {
  const bigger = make(Math.max(2 * array.length, Math.ceil(needed / ALIGN) * ALIGN));
  bigger.set(array.subarray(0, used));
  return bigger;
}

/** The store rows of a batch as one flat list of column values, in {@link LOG_COLUMNS} order. */
export function batchValues(batch: LogBatch): unknown[] {
  const { numbers, ints, labels } = batch;
  const text = Buffer.from(batch.text.buffer, batch.text.byteOffset, batch.text.byteLength);
  const inputs = Buffer.from(batch.inputs.buffer, batch.inputs.byteOffset, batch.inputs.byteLength);
  const out = new Array<unknown>(batch.rows * LOG_COLUMNS.length);
  let t = 0;
  let k = 0;
  for (let r = 0; r < batch.rows; r++) {
    const i = INTS * r;
    const label = ints[i]!;
    const idBytes = ints[i + 2]!;
    const requestId = idBytes < 0 ? null : text.toString('utf8', t, (t += idBytes));
    const output = text.toString('utf8', t, (t += ints[i + 3]!));
    const offset = ints[i + 4]!;
    // LOG_COLUMNS: at, model, version, request_id, kind, latency_ms, inputs, output.
    out[k++] = numbers[2 * r];
    out[k++] = labels[2 * label];
    out[k++] = labels[2 * label + 1];
    out[k++] = requestId;
    out[k++] = KINDS[ints[i + 1]!];
    out[k++] = numbers[2 * r + 1];
    out[k++] = inputs.toString('base64', offset, offset + ints[i + 5]!);
    out[k++] = output;
  }
  return out;
}
