/**
 * Reads the common prediction bodies straight from the request bytes into numbers, without
 * `JSON.parse`: one row of named numbers (`{"a": 1, "b": 2}`), one member holding a row
 * (`{"features": [1, 2]}`, `{"features": {"a": 1}}`) or a list of rows (`{"records": [{...}, ...]}`,
 * `{"features_list": [[...], ...]}`).
 *
 * Why by hand: for a 1000-record body `JSON.parse` builds 1000 objects and 30 000 boxed numbers that
 * the input adapter then reads by name, and under load that garbage outlives the young generation
 * and makes the old one grow by hundreds of megabytes before it is collected. Here the numbers go
 * into one `Float64Array` and the keys of every row are compared byte by byte with those of the
 * first row (and, across requests, with the previous body's), so a body costs three typed arrays
 * and no strings. A single row skips the UTF-8 decoding, the object and the by-name look-ups.
 *
 * The reader accepts strictly less than JSON: any other shape, any string value, escape, `null`,
 * nesting or syntax it does not expect makes it return `undefined`, and the caller falls back to
 * `JSON.parse` and the general adapters, which then give exactly their usual answer or error. It
 * never accepts text `JSON.parse` would reject, and every number it returns is the double
 * `JSON.parse` returns for the same text.
 */
import { SpareArrays } from './spare-arrays.ts';

/** A body in one of the shapes above: its numbers, how they split into rows, and their keys. */
export class NumericBody {
  constructor(
    /** The request bytes (one buffer, or the chunks as they came), for the fallback to `JSON.parse`. */
    private source: Buffer | readonly Buffer[] | undefined,
    /** The body's only member when it holds a row or a list of rows; `undefined` for a flat object of numbers. */
    readonly field: string | undefined,
    /** True when the member is a list of rows, false when it is one row (and for a flat object). */
    readonly nested: boolean,
    /** True when rows are arrays of numbers, false when they are objects of named numbers. */
    readonly positional: boolean,
    /** Every number in body order. */
    readonly values: Float64Array,
    /** Where each row's numbers end in `values` (exclusive). */
    readonly rowEnds: Int32Array,
    /** For object rows: the index in `keys` of each value's key. Absent when every row has the keys `keys[0..]` in that order. */
    readonly keyIds: Int32Array | undefined,
    /** Distinct keys of object rows (the first row's in order, then any others); empty for array rows. */
    readonly keys: readonly string[],
    /** Where {@link release} returns `pooled`. */
    private readonly pool: SpareArrays<Float64Array>,
    /** The pooled array `values` is a view of, until {@link release} gives it back. */
    private pooled: Float64Array | undefined,
  ) {}

  /**
   * Ends the body's use, once its numbers are copied out ({@link parse} does it too): the
   * request bytes are let go at once, and the number array goes back to the reader for the next
   * body. Off-heap memory of big bodies is then reused or freed by the next minor
   * collection, instead of piling up (most of it already garbage) until a full one; `values` must
   * not be read afterwards.
   */
  release(): void {
    this.source = undefined;
    const pooled = this.pooled;
    if (pooled === undefined) return;
    this.pooled = undefined;
    this.pool.give(pooled);
  }

  /** Number of rows. */
  get rows(): number {
    return this.rowEnds.length;
  }

  /**
   * The body as `JSON.parse` reads it (for every request a fast adapter does not take); the body's
   * last use, so it is released.
   */
  parse(): unknown {
    const src = this.source;
    if (src === undefined) throw new Error('numeric body read after release()');
    this.release();
    return JSON.parse((Array.isArray(src) ? Buffer.concat(src) : (src as Buffer)).toString('utf8'));
  }
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** 10^0..10^22: every one is exact in a double. */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/** Kept in the reader between bodies (one type of array there keeps element reads monomorphic). */
const EMPTY = Buffer.alloc(0);

const NO_KEYS: readonly string[] = Object.freeze([]);

/**
 * Spare number arrays, given back once a body's rows are copied out: a spare of `length` values
 * serves a body of about a quarter of that up to all of it (at most 32 arrays, 8 MB).
 */
const spareNumberArrays = (): SpareArrays<Float64Array> => new SpareArrays<Float64Array>(32, MAX_KEPT_SCRATCH, (length, wanted) => length >= wanted && length <= 4 * wanted + 64);

/** Largest body joined in the reader's own buffer (bigger ones get a buffer of their own). */
const MAX_JOINED_BYTES = 4 * 1024 * 1024;

/** Largest scratch kept between bodies (values); bigger bodies get their own arrays. */
const MAX_KEPT_SCRATCH = 1 << 20;

/**
 * The reader. Not re-entrant (one body at a time, synchronously), so one instance serves a whole
 * process; it keeps scratch arrays and the previous body's key list between calls.
 */
export class NumericJsonReader {
  private b: Buffer = EMPTY;
  private n = 0;
  /** Number of values read so far. */
  private count = 0;
  private values = new Float64Array(1024);
  private keyIds = new Int32Array(1024);
  private rowEnds = new Int32Array(64);
  private rowCount = 0;
  /** Byte ranges of the first row's keys in the current body. */
  private firstStarts = new Int32Array(64);
  private firstEnds = new Int32Array(64);
  private firstKeys = 0;
  /** Keys of the current body (the first row's, then others); `template.strings` while they match it. */
  private keys: string[] = [];
  /** True once a value's key id differs from its position in the row. */
  private irregular = false;
  /** The previous body's first-row keys: bytes back to back, and their strings. */
  private template: { bytes: Uint8Array; ends: Int32Array; strings: string[] } = { bytes: new Uint8Array(0), ends: new Int32Array(0), strings: [] };
  /** Whether the current body's first row has matched `template` so far. */
  private onTemplate = true;
  /** Where bodies that came in several chunks are joined for reading. */
  private joined: Buffer = EMPTY;
  /** Number arrays of large bodies, given back by {@link NumericBody.release}. */
  private readonly pool = spareNumberArrays();

  /** The body's numbers and rows, or `undefined` when it is not one of the shapes this reader takes. */
  read(raw: Buffer): NumericBody | undefined {
    return this.readFrom(raw, raw);
  }

  /**
   * Like {@link read}, for a body still in the chunks it arrived in (`length` bytes in all): they
   * are read through one buffer the reader keeps, instead of being joined into a new one per body.
   */
  readChunks(chunks: readonly Buffer[], length: number): NumericBody | undefined {
    if (chunks.length === 1) return this.readFrom(chunks[0]!, chunks[0]!);
    if (length > MAX_JOINED_BYTES) return this.readFrom(Buffer.concat(chunks, length), chunks);
    if (this.joined.length < length) this.joined = Buffer.allocUnsafeSlow(Math.max(length, this.joined.length * 2));
    let at = 0;
    for (const chunk of chunks) {
      chunk.copy(this.joined, at);
      at += chunk.length;
    }
    return this.readFrom(this.joined.subarray(0, length), chunks);
  }

  private readFrom(raw: Buffer, source: Buffer | readonly Buffer[]): NumericBody | undefined {
    this.b = raw;
    this.n = raw.length;
    this.count = 0;
    this.rowCount = 0;
    this.firstKeys = 0;
    this.keys = this.template.strings;
    this.irregular = false;
    this.onTemplate = true;
    try {
      return this.body(source);
    } finally {
      this.b = EMPTY;
      if (this.values.length > MAX_KEPT_SCRATCH) {
        this.values = new Float64Array(1024);
        this.keyIds = new Int32Array(1024);
      }
    }
  }

  private body(source: Buffer | readonly Buffer[]): NumericBody | undefined {
    const b = this.b;
    let i = ws(b, 0);
    if (b[i] !== OPEN_BRACE) return undefined;
    i = ws(b, i + 1);
    if (b[i] !== QUOTE) return undefined;
    const keyStart = i + 1;
    const keyEnd = this.keyEnd(keyStart);
    if (keyEnd < 0) return undefined;
    i = ws(b, keyEnd + 1);
    if (b[i] !== COLON) return undefined;
    i = ws(b, i + 1);
    const c = b[i];
    let field: string | undefined;
    let nested = false;
    let positional = false;
    if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      field = this.decode(keyStart, keyEnd);
      if (c === OPEN_BRACE) i = this.objectRow(i);
      else {
        i = ws(b, i + 1);
        const first = b[i];
        nested = first === OPEN_BRACKET || first === OPEN_BRACE;
        positional = first !== OPEN_BRACE;
        i = nested ? this.rowList(i, positional) : this.arrayRowTail(i);
      }
      if (i < 0) return undefined;
      i = ws(b, i);
      if (b[i] !== CLOSE_BRACE) return undefined;
      i++;
    } else {
      // A flat object of named numbers: the member just started is the row's first.
      i = this.objectMembers(i, keyStart, keyEnd);
      if (i < 0) return undefined;
    }
    if (ws(b, i) !== this.n) return undefined;
    return this.result(source, field, nested, positional);
  }

  private result(source: Buffer | readonly Buffer[], field: string | undefined, nested: boolean, positional: boolean): NumericBody {
    if (!positional && !this.onTemplate) this.remember();
    const keys = positional ? NO_KEYS : this.keys;
    const count = this.count;
    // A new array has room for a little more, so it stays reusable across similar bodies.
    const pooled = this.pool.take(count) ?? new Float64Array(count + (count >> 2));
    const values = pooled.subarray(0, count);
    values.set(this.values.subarray(0, count));
    return new NumericBody(
      source,
      field,
      nested,
      positional,
      values,
      this.rowEnds.slice(0, this.rowCount),
      !positional && this.irregular ? this.keyIds.slice(0, count) : undefined,
      keys,
      this.pool,
      pooled,
    );
  }

  /** Makes the current body's first-row keys the template for the next bodies. */
  private remember(): void {
    const k = this.firstKeys;
    let total = 0;
    for (let p = 0; p < k; p++) total += this.firstEnds[p]! - this.firstStarts[p]!;
    const bytes = new Uint8Array(total);
    const ends = new Int32Array(k);
    let at = 0;
    for (let p = 0; p < k; p++) {
      const start = this.firstStarts[p]!;
      const end = this.firstEnds[p]!;
      bytes.set(this.b.subarray(start, end), at);
      at += end - start;
      ends[p] = at;
    }
    this.template = { bytes, ends, strings: this.keys.slice(0, k) };
  }

  /** From the first row of a list (after `[`): rows until `]`, every row an array (`positional`) or every row an object. Returns the position after `]`, or -1. */
  private rowList(i: number, positional: boolean): number {
    const b = this.b;
    for (;;) {
      if (positional) {
        if (b[i] !== OPEN_BRACKET) return -1;
        i = this.arrayRowTail(ws(b, i + 1));
      } else i = this.objectRow(i);
      if (i < 0) return -1;
      i = ws(b, i);
      const c = b[i];
      if (c === CLOSE_BRACKET) return i + 1;
      if (c !== COMMA) return -1;
      i = ws(b, i + 1);
    }
  }

  /** Numbers after an array's `[` (and blanks) up to and including its `]`; ends a row. Returns the position after `]`, or -1. */
  private arrayRowTail(i: number): number {
    const b = this.b;
    if (b[i] === CLOSE_BRACKET) return -1;
    for (;;) {
      i = this.number(i);
      if (i < 0) return -1;
      i = ws(b, i);
      const c = b[i];
      if (c === CLOSE_BRACKET) {
        this.endRow();
        return i + 1;
      }
      if (c !== COMMA) return -1;
      i = ws(b, i + 1);
    }
  }

  /** An object of named numbers, from its `{`. Returns the position after `}`, or -1. */
  private objectRow(i: number): number {
    const b = this.b;
    if (b[i] !== OPEN_BRACE) return -1;
    i = ws(b, i + 1);
    if (b[i] !== QUOTE) return -1;
    const keyStart = i + 1;
    const keyEnd = this.keyEnd(keyStart);
    if (keyEnd < 0) return -1;
    i = ws(b, keyEnd + 1);
    if (b[i] !== COLON) return -1;
    return this.objectMembers(ws(b, i + 1), keyStart, keyEnd);
  }

  /**
   * The rest of an object row whose first key (`keyStart..keyEnd`) and colon are read, from its
   * first value: numbers and further members up to and including the `}`; ends the row. Returns
   * the position after `}`, or -1.
   */
  private objectMembers(i: number, keyStart: number, keyEnd: number): number {
    const b = this.b;
    let position = 0;
    for (;;) {
      this.key(position, keyStart, keyEnd);
      i = this.number(i);
      if (i < 0) return -1;
      position++;
      i = ws(b, i);
      const c = b[i];
      if (c === CLOSE_BRACE) {
        if (this.rowCount === 0 && this.onTemplate && position !== this.template.ends.length) {
          // A first row with fewer keys than the template: its keys are a prefix of it, not it.
          this.keys = this.template.strings.slice(0, position);
          this.onTemplate = false;
        }
        this.endRow();
        return i + 1;
      }
      if (c !== COMMA) return -1;
      i = ws(b, i + 1);
      if (b[i] !== QUOTE) return -1;
      keyStart = i + 1;
      keyEnd = this.keyEnd(keyStart);
      if (keyEnd < 0) return -1;
      i = ws(b, keyEnd + 1);
      if (b[i] !== COLON) return -1;
      i = ws(b, i + 1);
    }
  }

  private endRow(): void {
    if (this.rowCount === this.rowEnds.length) this.rowEnds = grow(this.rowEnds);
    this.rowEnds[this.rowCount++] = this.count;
  }

  /**
   * Records the key of the value about to be read, at `position` in its row. The first row's keys
   * are matched against the previous body's (no string is made while they agree); later rows'
   * keys against the first row's at the same position, byte for byte.
   */
  private key(position: number, start: number, end: number): void {
    let id: number;
    if (this.rowCount === 0) {
      if (position === this.firstStarts.length) {
        this.firstStarts = grow(this.firstStarts);
        this.firstEnds = grow(this.firstEnds);
      }
      this.firstStarts[position] = start;
      this.firstEnds[position] = end;
      this.firstKeys = position + 1;
      if (this.onTemplate && !this.matchesTemplate(position, start, end)) {
        this.onTemplate = false;
        this.keys = this.template.strings.slice(0, position);
      }
      if (!this.onTemplate) this.keys.push(this.decode(start, end));
      id = position;
    } else if (position < this.firstKeys && this.sameBytes(this.firstStarts[position]!, this.firstEnds[position]!, start, end)) {
      id = position;
    } else {
      const name = this.decode(start, end);
      id = this.keys.indexOf(name);
      if (id < 0) {
        if (this.onTemplate) {
          // Copy before adding: the template's array is shared with earlier bodies.
          this.keys = this.keys.slice(0, this.firstKeys);
          this.onTemplate = false;
        }
        id = this.keys.length;
        this.keys.push(name);
      }
    }
    if (id !== position && !this.irregular) {
      this.irregular = true;
      // Earlier values all sat at their positions: write those ids out now.
      this.ensureCapacity();
      let v = 0;
      for (let r = 0; r < this.rowCount; r++) {
        const end = this.rowEnds[r]!;
        for (let p = 0; v < end; p++, v++) this.keyIds[v] = p;
      }
      for (let p = 0; v < this.count; p++, v++) this.keyIds[v] = p;
    }
    if (this.irregular) {
      this.ensureCapacity();
      this.keyIds[this.count] = id;
    }
  }

  private matchesTemplate(position: number, start: number, end: number): boolean {
    const t = this.template;
    if (position >= t.ends.length) return false;
    const tStart = position === 0 ? 0 : t.ends[position - 1]!;
    const tEnd = t.ends[position]!;
    if (tEnd - tStart !== end - start) return false;
    const b = this.b;
    const tb = t.bytes;
    for (let k = 0; k < end - start; k++) if (b[start + k] !== tb[tStart + k]) return false;
    return true;
  }

  private sameBytes(aStart: number, aEnd: number, start: number, end: number): boolean {
    if (aEnd - aStart !== end - start) return false;
    const b = this.b;
    for (let k = 0; k < end - start; k++) if (b[aStart + k] !== b[start + k]) return false;
    return true;
  }

  /** Index of the closing quote of a key starting at `start`; -1 for escapes, control characters or no end. */
  private keyEnd(start: number): number {
    const b = this.b;
    const n = this.n;
    for (let k = start; k < n; k++) {
      const c = b[k]!;
      if (c === QUOTE) return k;
      if (c === BACKSLASH || c < SPACE) return -1;
    }
    return -1;
  }

  private decode(start: number, end: number): string {
    return this.b.toString('utf8', start, end);
  }

  private ensureCapacity(): void {
    if (this.count >= this.values.length) this.values = grow(this.values, this.count + 1);
    if (this.count >= this.keyIds.length) this.keyIds = grow(this.keyIds, this.values.length);
  }

  /**
   * One JSON number starting at `start` into `values`; returns the position after it, or -1. Up to
   * 15 significant digits and a decimal exponent within ±22, the value is the digits as an integer
   * times or divided by an exact power of ten: one correctly rounded operation, the same double
   * `JSON.parse` gives. Anything longer goes through `Number`, which is `JSON.parse`'s own
   * conversion.
   */
  private number(start: number): number {
    const b = this.b;
    const n = this.n;
    let i = start;
    let negative = false;
    if (i < n && b[i] === MINUS) {
      negative = true;
      i++;
    }
    if (i >= n) return -1;
    let c = b[i]!;
    if (c < ZERO || c > NINE) return -1;
    let mantissa = 0;
    let digits = 0;
    let scale = 0;
    if (c === ZERO) {
      i++;
      if (i < n && b[i]! >= ZERO && b[i]! <= NINE) return -1;
    } else {
      while (i < n && (c = b[i]!) >= ZERO && c <= NINE) {
        mantissa = mantissa * 10 + (c - ZERO);
        digits++;
        i++;
      }
    }
    if (i < n && b[i] === DOT) {
      i++;
      if (i >= n || b[i]! < ZERO || b[i]! > NINE) return -1;
      while (i < n && (c = b[i]!) >= ZERO && c <= NINE) {
        if (mantissa !== 0 || c !== ZERO) digits++;
        mantissa = mantissa * 10 + (c - ZERO);
        scale--;
        i++;
      }
    }
    let exponent = 0;
    let longExponent = false;
    if (i < n && (b[i] === LOWER_E || b[i] === UPPER_E)) {
      i++;
      let expNegative = false;
      if (i < n && (b[i] === MINUS || b[i] === PLUS)) {
        expNegative = b[i] === MINUS;
        i++;
      }
      if (i >= n || b[i]! < ZERO || b[i]! > NINE) return -1;
      while (i < n && (c = b[i]!) >= ZERO && c <= NINE) {
        if (exponent < 100000) exponent = exponent * 10 + (c - ZERO);
        else longExponent = true;
        i++;
      }
      if (expNegative) exponent = -exponent;
    }
    const power = scale + exponent;
    let value: number;
    if (digits <= 15 && !longExponent && power >= -22 && power <= 22) {
      value = power >= 0 ? mantissa * POW10[power]! : mantissa / POW10[-power]!;
      if (negative) value = -value;
    } else {
      value = Number(b.toString('latin1', start, i));
    }
    if (this.count === this.values.length) this.values = grow(this.values);
    this.values[this.count++] = value;
    return i;
  }
}


/** The position of the first byte at or after `i` that is not JSON white space. */
function ws(b: Buffer, i: number): number {
  for (;;) {
    const c = b[i];
    if (c === SPACE || c === LF || c === CR || c === TAB) i++;
    else return i;
  }
}

/** A copy of `a` with at least twice its length (and at least `atLeast`). */
function grow<T extends Float64Array | Int32Array>(a: T, atLeast = 0): T {
  const bigger = new (a.constructor as new (n: number) => T)(Math.max(a.length * 2, atLeast));
  bigger.set(a);
  return bigger;
}
