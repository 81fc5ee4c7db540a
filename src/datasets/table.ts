/**
 * The in-memory columnar table every dataset becomes (CSV uploads, JSON rows, built-ins), and the
 * column typing rules shared by all of them.
 *
 * Typing: a column is `numeric` when every non-missing cell is a plain decimal number (optional
 * sign, digits, optional fraction, optional exponent; no hex, no `Infinity`, no thousands
 * separators), `boolean` when every non-missing cell is true/false/yes/no (any case), otherwise
 * `categorical`. 0/1 columns stay numeric. A column with no value at all is numeric (all `NaN`).
 * Missing cells are the empty string and the markers NA, N/A, NaN, null, None and `?` (any case,
 * surrounding whitespace ignored).
 */
import { DatasetParseError } from './errors.ts';

/** The three column types the platform understands. */
export type ColumnType = 'numeric' | 'categorical' | 'boolean';

/** Numbers, `NaN` where missing. */
export interface NumericColumn {
  readonly name: string;
  readonly type: 'numeric';
  readonly values: Float64Array;
}

/** 1 for true, 0 for false, `NaN` where missing. */
export interface BooleanColumn {
  readonly name: string;
  readonly type: 'boolean';
  readonly values: Float64Array;
}

/** Strings, `null` where missing. */
export interface CategoricalColumn {
  readonly name: string;
  readonly type: 'categorical';
  readonly values: readonly (string | null)[];
}

export type Column = NumericColumn | BooleanColumn | CategoricalColumn;

/** A columnar table: every column holds exactly `rowCount` values. */
export interface Table {
  readonly columns: readonly Column[];
  readonly rowCount: number;
}

/** Returns the column called `name`, or `undefined`. */
export function findColumn(table: Table, name: string): Column | undefined {
  return table.columns.find((c) => c.name === name);
}

/** Returns the column called `name`; throws a `DatasetParseError` naming the known columns if absent. */
export function getColumn(table: Table, name: string): Column {
  const column = findColumn(table, name);
  if (column === undefined) {
    throw new DatasetParseError(
      `no column named "${name}" (columns: ${table.columns.map((c) => c.name).join(', ')})`,
      { field: name },
    );
  }
  return column;
}

/** The column names in order. */
export function columnNames(table: Table): string[] {
  return table.columns.map((c) => c.name);
}

/** True when the cell is missing in column `column` at `row` (`NaN` or `null`). */
export function isMissingAt(column: Column, row: number): boolean {
  if (column.type === 'categorical') return column.values[row] == null;
  return Number.isNaN(column.values[row]);
}

/**
 * A cell as text, the way `tableToCsv` writes it: numbers in shortest round-trip form, booleans as
 * `true`/`false`, missing as the empty string.
 */
export function cellText(column: Column, row: number): string {
  if (column.type === 'categorical') return column.values[row] ?? '';
  const v = column.values[row] ?? Number.NaN;
  if (Number.isNaN(v)) return '';
  if (column.type === 'boolean') return v === 1 ? 'true' : 'false';
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// Cell classification

// Plain decimal notation only: rejects `0x1f`, `1_000`, `Infinity`, `1,5`, which Number() or a
// locale-aware parser would otherwise turn into numbers behind the user's back.
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** True when a (trimmed) cell is one of the missing-value markers. */
export function isMissingMarker(s: string): boolean {
  switch (s.length) {
    case 0:
      return true;
    case 1:
      return s === '?';
    case 2:
      return s === 'NA' || s.toLowerCase() === 'na';
    case 3: {
      const l = s.toLowerCase();
      return l === 'n/a' || l === 'nan';
    }
    case 4: {
      const l = s.toLowerCase();
      return l === 'null' || l === 'none';
    }
    default:
      return false;
  }
}

/** 1 for true/yes, 0 for false/no (any case), `undefined` otherwise. */
export function parseBooleanCell(s: string): 0 | 1 | undefined {
  if (s.length < 2 || s.length > 5) return undefined;
  switch (s.toLowerCase()) {
    case 'true':
    case 'yes':
      return 1;
    case 'false':
    case 'no':
      return 0;
    default:
      return undefined;
  }
}

/** Parses a plain decimal number; `undefined` when the text is not one or is not finite. */
export function parseNumberCell(s: string): number | undefined {
  if (!NUMBER_RE.test(s)) return undefined;
  const v = Number(s);
  return Number.isFinite(v) ? v : undefined;
}

/** Trims ASCII whitespace only when there is some, to avoid allocating for the common case. */
function trimCell(raw: string): string {
  const n = raw.length;
  if (n === 0) return raw;
  if (raw.charCodeAt(0) > 32 && raw.charCodeAt(n - 1) > 32) return raw;
  return raw.trim();
}

// ---------------------------------------------------------------------------------------------
// Column builder

const SEPARATOR = 0x0a;
/** Size of the first piece of a column's text log; each next piece doubles, up to the largest. */
const FIRST_TEXT_PIECE = 4096;
/**
 * Largest piece of a text log. The log grows by appending pieces, never by copying into a buffer
 * twice the size: a million-row numeric column logs about 8 MB of text, which a doubling buffer
 * held in 16 MB after copying 8 MB through smaller ones.
 */
const LARGEST_TEXT_PIECE = 1 << 20;

/**
 * Accumulates the cells of one column while its type is still unknown.
 *
 * While the column can still be numeric or boolean, values go into a growable `Float64Array`
 * and, so that nothing is lost if a later cell turns the column categorical, the trimmed source
 * text of each cell goes into a compact latin1 byte log (numeric and boolean cells are ASCII).
 * Once a cell is neither, the log is decoded back into the exact original strings and the column
 * switches to dictionary-encoded categories. Memory stays close to the size of the input instead
 * of one JS string object per cell.
 *
 * A column whose type is already known (a stored dataset version read back with its schema) is
 * built as that type from the first cell, at its known size: no text log, no regrowth. A cell that
 * does not fit the declared type throws `DatasetParseError`.
 */
export class ColumnBuilder {
  readonly name: string;
  private length = 0;
  private categorical = false;
  private numericOk = true;
  private booleanOk = true;
  /** The declared type, when the builder was given one. */
  private readonly declared: ColumnType | undefined;
  private nums = new Float64Array(1024);
  /** Full pieces of the text log, then the one being filled (`text`, `textLength` bytes used). */
  private textPieces: Buffer[] = [];
  private text = Buffer.allocUnsafe(FIRST_TEXT_PIECE);
  private textLength = 0;
  private readonly dict = new Map<string, number>();
  private readonly labels: string[] = [];
  private codes = new Int32Array(0);

  constructor(name: string, declared?: { readonly type: ColumnType; readonly rows: number }) {
    this.name = name;
    this.declared = declared?.type;
    if (declared === undefined) return;
    const capacity = Math.max(1, declared.rows);
    if (declared.type === 'categorical') {
      this.categorical = true;
      this.numericOk = false;
      this.booleanOk = false;
      this.nums = new Float64Array(0);
      this.codes = new Int32Array(capacity);
    } else {
      this.numericOk = declared.type === 'numeric';
      this.booleanOk = declared.type === 'boolean';
      this.nums = new Float64Array(capacity);
    }
    this.text = Buffer.alloc(0);
  }

  /** Number of cells pushed so far. */
  get size(): number {
    return this.length;
  }

  /** Adds a missing cell. */
  pushMissing(): void {
    if (this.categorical) {
      this.pushCode(-1);
    } else {
      this.pushCandidate(Number.NaN, '');
    }
  }

  /** Adds a cell given as text (a CSV field or a JSON string). */
  pushText(raw: string): void {
    const s = trimCell(raw);
    if (isMissingMarker(s)) {
      this.pushMissing();
      return;
    }
    if (this.categorical) {
      this.pushCategory(s);
      return;
    }
    if (this.declared !== undefined) {
      const v = this.declared === 'numeric' ? parseNumberCell(s) : parseBooleanCell(s);
      if (v === undefined) throw new DatasetParseError(`column '${this.name}' holds ${JSON.stringify(s)}, which is not ${this.declared === 'numeric' ? 'a number' : 'a boolean'} as its schema says`, { field: this.name });
      this.pushCandidate(v, s);
      return;
    }
    if (this.numericOk) {
      const v = parseNumberCell(s);
      if (v !== undefined) {
        this.booleanOk = false;
        this.pushCandidate(v, s);
        return;
      }
      this.numericOk = false;
    }
    if (this.booleanOk) {
      const b = parseBooleanCell(s);
      if (b !== undefined) {
        this.numericOk = false;
        this.pushCandidate(b, s);
        return;
      }
      this.booleanOk = false;
    }
    this.switchToCategorical();
    this.pushCategory(s);
  }

  /**
   * Adds a cell from a JSON value: `null`/`undefined`/`NaN` are missing, numbers and booleans are
   * typed directly, strings follow the text rules. Returns an error message for values that
   * cannot be a cell (objects, arrays, infinite numbers), `undefined` on success.
   */
  pushJsonValue(value: unknown): string | undefined {
    if (value === null || value === undefined) {
      this.pushMissing();
      return undefined;
    }
    switch (typeof value) {
      case 'string':
        this.pushText(value);
        return undefined;
      case 'number':
        if (Number.isNaN(value)) {
          this.pushMissing();
          return undefined;
        }
        if (!Number.isFinite(value)) return `value ${value} is not a finite number`;
        if (this.categorical || !this.numericOk) {
          this.pushText(String(value));
          return undefined;
        }
        this.booleanOk = false;
        this.pushCandidate(value, String(value));
        return undefined;
      case 'boolean':
        this.pushText(value ? 'true' : 'false');
        return undefined;
      default:
        return `a ${Array.isArray(value) ? 'array' : typeof value} cannot be a table cell`;
    }
  }

  /** The finished column. The builder must not be used afterwards. */
  finish(): Column {
    const n = this.length;
    if (this.categorical) {
      const values = new Array<string | null>(n);
      const { codes, labels } = this;
      for (let i = 0; i < n; i++) {
        const c = codes[i] ?? -1;
        values[i] = c < 0 ? null : (labels[c] ?? null);
      }
      return { name: this.name, type: 'categorical', values };
    }
    const values = this.nums.length === n ? this.nums : this.nums.slice(0, n);
    // A column with only missing cells keeps numericOk and booleanOk; numeric is the neutral choice.
    const type = this.numericOk ? 'numeric' : 'boolean';
    return { name: this.name, type, values };
  }

  private pushCandidate(v: number, s: string): void {
    if (this.length === this.nums.length) {
      const grown = new Float64Array(this.nums.length * 2);
      grown.set(this.nums);
      this.nums = grown;
    }
    this.nums[this.length++] = v;
    // A declared column never turns categorical, so its text is not kept.
    if (this.declared !== undefined) return;
    // A cell never spans two pieces.
    if (this.textLength + s.length + 1 > this.text.length) {
      this.textPieces.push(this.text.subarray(0, this.textLength));
      this.text = Buffer.allocUnsafe(Math.max(s.length + 1, Math.min(LARGEST_TEXT_PIECE, this.text.length * 2)));
      this.textLength = 0;
    }
    // A plain loop beats Buffer#write for these short ASCII strings (no native call per cell).
    const text = this.text;
    let pos = this.textLength;
    for (let k = 0; k < s.length; k++) text[pos++] = s.charCodeAt(k);
    text[pos++] = SEPARATOR;
    this.textLength = pos;
  }

  private pushCategory(s: string): void {
    let code = this.dict.get(s);
    if (code === undefined) {
      code = this.labels.length;
      this.labels.push(s);
      this.dict.set(s, code);
    }
    this.pushCode(code);
  }

  private pushCode(code: number): void {
    if (this.length === this.codes.length) {
      const grown = new Int32Array(Math.max(1024, this.codes.length * 2));
      grown.set(this.codes);
      this.codes = grown;
    }
    this.codes[this.length++] = code;
  }

  private switchToCategorical(): void {
    const n = this.length;
    const nums = this.nums;
    const pieces = [...this.textPieces, this.text.subarray(0, this.textLength)];
    this.categorical = true;
    this.numericOk = false;
    this.booleanOk = false;
    this.length = 0;
    this.codes = new Int32Array(Math.max(1024, n * 2));
    let i = 0;
    for (const piece of pieces) {
      let start = 0;
      while (start < piece.length) {
        const end = piece.indexOf(SEPARATOR, start);
        if (Number.isNaN(nums[i])) {
          this.pushCode(-1);
        } else {
          this.pushCategory(piece.toString('latin1', start, end));
        }
        i++;
        start = end + 1;
      }
    }
    this.nums = new Float64Array(0);
    this.textPieces = [];
    this.text = Buffer.alloc(0);
    this.textLength = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON rows

/**
 * Converts JSON rows (an array of plain objects) into a table with the same typing rules as CSV.
 * Columns are the union of keys in order of first appearance; a key absent from a row is a
 * missing cell. Errors name the 0-based row index and the field.
 */
export function tableFromJsonRows(rows: unknown): Table {
  if (!Array.isArray(rows)) {
    throw new DatasetParseError('rows must be an array of objects');
  }
  if (rows.length === 0) {
    throw new DatasetParseError('no data rows: rows is empty');
  }
  const builders: ColumnBuilder[] = [];
  const byName = new Map<string, ColumnBuilder>();
  for (let r = 0; r < rows.length; r++) {
    const row: unknown = rows[r];
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new DatasetParseError(`row ${r} is not an object`, { row: r });
    }
    const record = row as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (byName.has(key)) continue;
      if (key.trim() === '') {
        throw new DatasetParseError(`row ${r} has an empty field name`, { row: r, field: key });
      }
      const b = new ColumnBuilder(key);
      // Rows before this one did not have the key: their cells are missing.
      for (let i = 0; i < r; i++) b.pushMissing();
      builders.push(b);
      byName.set(key, b);
    }
    for (const b of builders) {
      const problem = b.pushJsonValue(Object.hasOwn(record, b.name) ? record[b.name] : undefined);
      if (problem !== undefined) {
        throw new DatasetParseError(`row ${r}, field "${b.name}": ${problem}`, { row: r, field: b.name });
      }
    }
  }
  if (builders.length === 0) {
    throw new DatasetParseError('rows have no fields');
  }
  return { columns: builders.map((b) => b.finish()), rowCount: rows.length };
}
