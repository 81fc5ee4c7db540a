/**
 * Logged rows while they wait for the store: typed arrays, column by column, with no JavaScript
 * object or string per row.
 *
 * Rows wait up to a flush period (a quarter of a second, thousands of rows). Kept as objects and
 * strings, they outlived the young generation's collections, which copied them and promoted them,
 * and the old generation's collections that followed cost more than writing the rows. Here a row
 * is a few numbers and bytes appended to buffers that grow by doubling; a flush packs them into
 * one block per (model, version) (`log-block.ts`): a loop over a few numbers per row and a copy or
 * two of the text and input bytes.
 */
import { allocateBlock, KIND_CODES, type BlockSections, type EncodedBlock } from './log-block.ts';
import type { ServedKind } from '../serving/prediction.service.ts';

/**
 * Integers per row in `LogRows.ints`: label, kind code, byte length of the request id in the text
 * (-1: none), byte length of the answer in the text, byte offset and byte length of the input row.
 */
const INTS = 6;
/** Input rows start at multiples of 8 bytes, so float32 and float64 views can write them. */
const ALIGN = 8;

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

  /**
   * The rows held as blocks, one per (model, version), each with its rows in the order they were
   * appended. The blocks are ordered by their newest row (ties: first appearance), so the store
   * numbers the block holding the flush's newest row last: the highest row number then names the
   * version that answered last (the version a drift check picks), whatever order the versions
   * first appeared in the buffer. `labels` holds the model name and version of label `k` at `2k`
   * and `2k + 1` (two labels may name one version: a reloaded model).
   */
  blocks(labels: readonly string[]): EncodedBlock[] {
    const { first, count, ints } = this;
    if (count === first) return [];
    // The block of each label, and per block its rows and bytes.
    const groupOf = new Map<string, number>();
    const labelGroup = new Int32Array(labels.length / 2).fill(-1);
    const groups: { model: string; version: string; rows: number; inputBytes: number; textBytes: number }[] = [];
    for (let r = first; r < count; r++) {
      const i = INTS * r;
      const label = ints[i]!;
      let g = labelGroup[label]!;
      if (g < 0) {
        const model = labels[2 * label]!;
        const version = labels[2 * label + 1]!;
        const key = `${model}\u0000${version}`;
        g = groupOf.get(key) ?? groups.length;
        if (g === groups.length) {
          groups.push({ model, version, rows: 0, inputBytes: 0, textBytes: 0 });
          groupOf.set(key, g);
        }
        labelGroup[label] = g;
      }
      const group = groups[g]!;
      group.rows++;
      group.inputBytes += ints[i + 5]!;
      group.textBytes += Math.max(ints[i + 2]!, 0) + ints[i + 3]!;
    }
    if (groups.length === 1) return [this.oneBlock(groups[0]!)];
    // Array sort is stable: equal newest rows keep the order of first appearance.
    return groups.map((group, g) => this.groupBlock(group, g, labelGroup)).sort((a, b) => a.lastAt - b.lastAt);
  }

  /** Every row held as one block: the text is copied whole, and the inputs too when no padding lies between them. */
  private oneBlock(group: { model: string; version: string; rows: number; inputBytes: number; textBytes: number }): EncodedBlock {
    const { first, count, ints } = this;
    const s = allocateBlock(group.rows, group.inputBytes, group.textBytes);
    let firstAt = Infinity;
    let lastAt = -Infinity;
    let contiguous = true;
    let expected = ints[INTS * first + 4]!;
    for (let r = first, k = 0; r < count; r++, k++) {
      const i = INTS * r;
      const at = this.copyRow(s, k, r);
      if (ints[i + 4] !== expected) contiguous = false;
      expected = ints[i + 4]! + ints[i + 5]!;
      if (at < firstAt) firstAt = at;
      if (at > lastAt) lastAt = at;
    }
    s.text.set(this.text.subarray(this.firstText, this.textEnd));
    if (contiguous) {
      const start = ints[INTS * first + 4]!;
      s.inputs.set(this.inputs.subarray(start, start + group.inputBytes));
    } else {
      let at = 0;
      for (let r = first; r < count; r++) {
        const offset = ints[INTS * r + 4]!;
        const size = ints[INTS * r + 5]!;
        s.inputs.set(this.inputs.subarray(offset, offset + size), at);
        at += size;
      }
    }
    return { model: group.model, version: group.version, rows: group.rows, firstAt, lastAt, data: s.data };
  }

  /** The rows of group `g` as a block (a flush that logged several model versions). */
  private groupBlock(group: { model: string; version: string; rows: number; inputBytes: number; textBytes: number }, g: number, labelGroup: Int32Array): EncodedBlock {
    const { first, count, ints } = this;
    const s = allocateBlock(group.rows, group.inputBytes, group.textBytes);
    let firstAt = Infinity;
    let lastAt = -Infinity;
    let t = this.firstText;
    let inputAt = 0;
    let textAt = 0;
    for (let r = first, k = 0; r < count; r++) {
      const i = INTS * r;
      const textBytes = Math.max(ints[i + 2]!, 0) + ints[i + 3]!;
      if (labelGroup[ints[i]!] === g) {
        const at = this.copyRow(s, k, r);
        const offset = ints[i + 4]!;
        const size = ints[i + 5]!;
        s.inputs.set(this.inputs.subarray(offset, offset + size), inputAt);
        inputAt += size;
        s.text.set(this.text.subarray(t, t + textBytes), textAt);
        textAt += textBytes;
        if (at < firstAt) firstAt = at;
        if (at > lastAt) lastAt = at;
        k++;
      }
      t += textBytes;
    }
    return { model: group.model, version: group.version, rows: group.rows, firstAt, lastAt, data: s.data };
  }

  /** Copies row `r`'s fixed fields into row `k` of a block's sections; returns its time. */
  private copyRow(s: BlockSections, k: number, r: number): number {
    const i = INTS * r;
    const at = this.numbers[2 * r]!;
    s.at[k] = at;
    s.latency[k] = this.numbers[2 * r + 1]!;
    s.kind[k] = this.ints[i + 1]!;
    s.idLength[k] = this.ints[i + 2]!;
    s.outputLength[k] = this.ints[i + 3]!;
    s.inputLength[k] = this.ints[i + 5]!;
    return at;
  }

  /**
   * Doubles the room for rows in both per-row arrays together. Sized here, not by `grow`: its
   * rounding to {@link ALIGN} elements, applied to each array on its own, gave the two arrays
   * room for different row counts (from 21 rows: 44 in `numbers`, 42 in `ints`), and the rows
   * between were written past the end of `ints` (ignored by typed arrays) and read back as zeros:
   * another model version's label and an empty row.
   */
  private growRows(): void {
    // Twice the rows there is room for now (two numbers per row).
    const rows = 2 * (this.numbers.length / 2);
    const numbers = new Float64Array(2 * rows);
    numbers.set(this.numbers);
    const ints = new Int32Array(INTS * rows);
    ints.set(this.ints);
    this.numbers = numbers;
    this.ints = ints;
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
