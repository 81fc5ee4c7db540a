/**
 * Input adapters: every request body form of API.md (and MLflow's scoring formats) becomes one
 * typed array `[N, F]` in the model's feature order, checked value by value on the way in.
 *
 * The checks are written by hand over the typed array rather than as a JSON schema: a schema
 * cannot know the model's feature names or count, and a hand loop over the parsed JSON costs one
 * allocation per request. Errors collect every offending field (up to a limit) with a JSON pointer
 * naming it, e.g. `/records/4/mean radius`.
 */
import { AppError, type FieldError } from '../platform/errors.ts';
import { FLOAT32_MAX, type LoadedModel } from './loaded-model.ts';
import { NumericBody } from './numeric-json.ts';
import type { FloatRows } from './runtime.ts';

/** Rows ready for the model. */
export interface ModelRows {
  readonly input: FloatRows;
  readonly rows: number;
}

const MAX_REPORTED_ERRORS = 50;

/** Escapes a name for use as one JSON pointer segment (RFC 6901). */
export function pointerSegment(name: string): string {
  return name.includes('~') || name.includes('/') ? name.replace(/~/g, '~0').replace(/\//g, '~1') : name;
}

/** Collects field errors; allocates nothing until the first one. */
class Problems {
  list: FieldError[] | undefined;
  add(path: string, message: string): void {
    this.list ??= [];
    if (this.list.length < MAX_REPORTED_ERRORS) this.list.push({ path, message });
  }
  throwIfAny(summary?: string): void {
    const list = this.list;
    if (list === undefined) return;
    const first = list[0]!;
    const more = list.length > 1 ? ` (and ${list.length - 1} more)` : '';
    throw new AppError(400, 'validation_error', summary ?? `${first.path === '' ? 'body' : first.path} ${first.message}${more}`, list);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Writes one value into column `j`. Returns why it is not acceptable, or `undefined` when it was
 * written; callers build the field's path only then (most values are fine, and a 1000-row batch
 * has 30 000 of them).
 */
function put(model: LoadedModel, j: number, v: unknown, out: FloatRows, at: number): string | undefined {
  if (typeof v === 'number') {
    if (v !== v || v === Infinity || v === -Infinity) return 'must be a finite number';
    if (!model.double && (v > FLOAT32_MAX || v < -FLOAT32_MAX)) return 'is outside the float32 range the model computes in';
    const codes = model.categoryCodes[j];
    // A numeric category label (e.g. 3 for the category "3").
    out[at] = codes == null ? v : (codes.get(String(v)) ?? Number.NaN);
    return undefined;
  }
  const codes = model.categoryCodes[j];
  if (codes != null && typeof v === 'string') {
    // An unseen category gets the "missing" code, as at training time.
    out[at] = codes.get(v) ?? Number.NaN;
    return undefined;
  }
  return codes != null ? 'must be a category (string)' : `must be a finite number (got ${describe(v)})`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? 'a string' : `string ${JSON.stringify(v)}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** One row given as an array (model order) or an object (feature names) at `path`. */
function readRow(value: unknown, model: LoadedModel, out: FloatRows, row: number, path: string, problems: Problems): void {
  const f = model.nFeatures;
  const at = row * f;
  if (Array.isArray(value)) {
    if (value.length !== f) {
      problems.add(path, `must hold ${f} feature values in model order (got ${value.length})`);
      return;
    }
    for (let j = 0; j < f; j++) {
      const why = put(model, j, value[j], out, at + j);
      if (why !== undefined) problems.add(`${path}/${j}`, why);
    }
    return;
  }
  if (isObject(value)) {
    readNamed(value, model, out, at, path, problems);
    return;
  }
  problems.add(path, `must be an array of ${f} feature values or an object of named features (got ${describe(value)})`);
}

function readNamed(obj: Record<string, unknown>, model: LoadedModel, out: FloatRows, at: number, path: string, problems: Problems): void {
  const names = model.featureNames;
  const f = names.length;
  let found = 0;
  let missing: string[] | undefined;
  for (let j = 0; j < f; j++) {
    const name = names[j]!;
    const v = obj[name];
    if (v === undefined || (typeof v !== 'number' && !Object.hasOwn(obj, name))) {
      (missing ??= []).push(name);
      continue;
    }
    found++;
    const why = put(model, j, v, out, at + j);
    if (why !== undefined) problems.add(`${path}/${pointerSegment(name)}`, why);
  }
  let keys = 0;
  for (const _ in obj) keys++;
  if (missing !== undefined) for (const name of missing) problems.add(`${path}/${pointerSegment(name)}`, 'is missing');
  if (keys !== found) {
    for (const k of Object.keys(obj)) {
      if (!model.featureIndex.has(k)) problems.add(`${path}/${pointerSegment(k)}`, 'is not a feature of this model');
    }
  }
}

function summary(problems: Problems): string | undefined {
  const list = problems.list;
  if (list === undefined) return undefined;
  const missing = list.filter((e) => e.message === 'is missing').map((e) => lastSegment(e.path));
  const unknown = list.filter((e) => e.message === 'is not a feature of this model').map((e) => lastSegment(e.path));
  if (missing.length === 0 && unknown.length === 0) return undefined;
  const parts: string[] = [];
  if (missing.length > 0) parts.push(`missing features: ${[...new Set(missing)].join(', ')}`);
  if (unknown.length > 0) parts.push(`unknown features: ${[...new Set(unknown)].join(', ')}`);
  return parts.join('; ');
}

function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1).replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Feature column of each key of a numeric body's key list, for one model. */
interface KeyColumns {
  readonly keys: readonly string[];
  /** Column of `keys[k]`, -1 when it names no feature. */
  readonly columns: Int32Array;
  /** True when `keys[0..nFeatures)` name every feature exactly once. */
  readonly complete: boolean;
}

/**
 * Per model, the last key list mapped: numeric bodies with the keys of the body before share its
 * key array, so a stream of requests of one shape maps names to columns once.
 */
const lastKeyColumns = new WeakMap<LoadedModel, KeyColumns>();

function keyColumns(keys: readonly string[], model: LoadedModel): KeyColumns {
  const last = lastKeyColumns.get(model);
  if (last !== undefined && last.keys === keys) return last;
  const f = model.nFeatures;
  const columns = new Int32Array(keys.length);
  const seen = new Uint8Array(f);
  let complete = keys.length >= f;
  for (let k = 0; k < keys.length; k++) {
    const j = model.featureIndex.get(keys[k]!) ?? -1;
    columns[k] = j;
    if (k >= f) continue;
    if (j < 0 || seen[j] === 1) complete = false;
    else seen[j] = 1;
  }
  const mapped = { keys, columns, complete };
  lastKeyColumns.set(model, mapped);
  return mapped;
}

/**
 * Writes every row of a numeric body into `out`. Returns false, leaving the rest to the general
 * adapters (which then answer or name the problem), at the first row that is not exactly the
 * model's features once each or whose value `put` does not take.
 */
function fillFromNumeric(body: NumericBody, model: LoadedModel, out: FloatRows): boolean {
  const f = model.nFeatures;
  const { values, rowEnds, keyIds: ids } = body;
  const mapped = body.positional ? undefined : keyColumns(body.keys, model);
  // Array rows, and object rows all holding keys[0..f) in order when those name every feature
  // once, need no check beyond their length; other object rows are checked feature by feature.
  const seenInRow = mapped === undefined || (ids === undefined && mapped.complete) ? undefined : new Int32Array(f);
  let start = 0;
  for (let r = 0; r < rowEnds.length; r++) {
    const end = rowEnds[r]!;
    if (end - start !== f) return false;
    const at = r * f;
    for (let v = start; v < end; v++) {
      const p = v - start;
      const j = mapped === undefined ? p : mapped.columns[ids === undefined ? p : ids[v]!]!;
      if (seenInRow !== undefined) {
        if (j < 0 || seenInRow[j] === r + 1) return false;
        seenInRow[j] = r + 1;
      }
      if (put(model, j, values[v], out, at + j) !== undefined) return false;
    }
    start = end;
  }
  return true;
}

/**
 * The rows of a numeric body when `usable` and the model takes them as they are (the body is then
 * released), in a buffer from the model's spares (`takeRows`: the caller gives it back with
 * `releaseRows` when done); `undefined` leaves the body to `parse()` and the general adapters.
 */
function rowsFromNumeric(body: NumericBody, model: LoadedModel, usable: boolean): FloatRows | undefined {
  if (!usable) return undefined;
  // Not zeroed: when filling succeeds, every value has been written.
  const out = model.takeRows(body.rows);
  if (!fillFromNumeric(body, model, out)) {
    model.releaseRows(out);
    return undefined;
  }
  body.release();
  return out;
}

/** Members that hold one row, in the order they are looked for. */
const ROW_MEMBERS = ['features', 'wine_features'] as const;

/**
 * One row: `{"features": [...]}` (model order), `{"features": {name: value}}` (or the seed
 * service's `{"wine_features": {...}}`), or the named features at the top level.
 * @throws AppError 400 naming every offending field
 */
export function readSingleRow(body: unknown, model: LoadedModel): FloatRows {
  if (body instanceof NumericBody) {
    // The top-level names, or the one member "features" (unless that is a feature's name).
    const usable = body.field === undefined || (body.field === 'features' && !body.nested && !model.featureIndex.has('features'));
    const out = rowsFromNumeric(body, model, usable);
    if (out !== undefined) return out;
    body = body.parse();
  }
  if (!isObject(body)) throw new AppError(400, 'validation_error', 'body must be a JSON object', [{ path: '', message: 'must be a JSON object' }]);
  const out = model.allocRows(1);
  const problems = new Problems();
  // `wine_features` is the seed service's name for the same member (its clients keep working).
  const member = ROW_MEMBERS.find((m) => body[m] !== undefined && !model.featureIndex.has(m));
  if (member !== undefined) readRow(body[member], model, out, 0, `/${member}`, problems);
  else readNamed(body, model, out, 0, '', problems);
  problems.throwIfAny(summary(problems));
  return out;
}

/** The batch field names of API.md, in the order they are looked for. */
const BATCH_FIELDS = ['records', 'features_list', 'instances'] as const;

/**
 * Many rows: `{"records": [...]}`, `{"features_list": [[...]]}` or `{"instances": [...]}`, each row
 * an array (model order) or an object (names), 1..`maxRows` rows.
 * @throws AppError 400 for a missing, empty or oversized batch and for every offending field
 */
export function readBatch(body: unknown, model: LoadedModel, maxRows: number): ModelRows {
  if (body instanceof NumericBody) {
    const rows = body.rows;
    const out = rowsFromNumeric(body, model, body.nested && rows <= maxRows && (BATCH_FIELDS as readonly string[]).includes(body.field!));
    if (out !== undefined) return { input: out, rows };
    body = body.parse();
  }
  if (!isObject(body)) throw new AppError(400, 'validation_error', 'body must be a JSON object', [{ path: '', message: 'must be a JSON object' }]);
  let field: string | undefined;
  for (const name of BATCH_FIELDS) {
    if (body[name] === undefined) continue;
    if (field !== undefined) {
      throw new AppError(400, 'validation_error', `give exactly one of ${BATCH_FIELDS.join(', ')}`, [{ path: `/${name}`, message: `cannot be combined with ${field}` }]);
    }
    field = name;
  }
  if (field === undefined) {
    throw new AppError(400, 'validation_error', `body must hold one of ${BATCH_FIELDS.join(', ')} (an array of rows)`, [
      { path: '/records', message: 'is missing' },
    ]);
  }
  return readRowList(body[field], model, maxRows, `/${field}`);
}

/** A list of rows (arrays or objects) at `path`. */
export function readRowList(list: unknown, model: LoadedModel, maxRows: number, path: string): ModelRows {
  if (!Array.isArray(list)) throw new AppError(400, 'validation_error', `${path} must be an array of rows`, [{ path, message: 'must be an array of rows' }]);
  checkCount(list.length, maxRows, path);
  const rows = list.length;
  const out = model.allocRows(rows);
  const problems = new Problems();
  for (let i = 0; i < rows; i++) {
    readRow(list[i], model, out, i, `${path}/${i}`, problems);
    if (problems.list !== undefined && problems.list.length >= MAX_REPORTED_ERRORS) break;
  }
  problems.throwIfAny(summary(problems));
  return { input: out, rows };
}

function checkCount(n: number, maxRows: number, path: string): void {
  if (n === 0) throw new AppError(400, 'validation_error', `${path} is empty; send at least one row`, [{ path, message: 'must hold at least 1 row' }]);
  if (n > maxRows) {
    throw new AppError(400, 'validation_error', `${path} holds ${n} rows; at most ${maxRows} are accepted per request (MAX_BATCH_SIZE)`, [
      { path, message: `must hold at most ${maxRows} rows` },
    ]);
  }
}

/**
 * Rows given column-wise: `columns` names (or, when absent, model order) and `data` rows of
 * values in that column order (pandas' `split` orientation, and CSV).
 */
export function readColumnar(columns: readonly unknown[] | undefined, data: unknown, model: LoadedModel, maxRows: number, path: string): ModelRows {
  if (columns === undefined) return readRowList(data, model, maxRows, `${path}/data`);
  const problems = new Problems();
  const map = new Int32Array(columns.length).fill(-1);
  const seen = new Uint8Array(model.nFeatures);
  columns.forEach((c, i) => {
    const j = typeof c === 'string' ? model.featureIndex.get(c) : undefined;
    if (j === undefined) problems.add(`${path}/columns/${i}`, typeof c === 'string' ? `'${c}' is not a feature of this model` : 'must be a feature name');
    else {
      map[i] = j;
      seen[j] = 1;
    }
  });
  model.featureNames.forEach((name, j) => {
    if (seen[j] === 0) problems.add(`${path}/columns`, `lacks feature '${name}'`);
  });
  problems.throwIfAny();
  if (!Array.isArray(data)) throw new AppError(400, 'validation_error', `${path}/data must be an array of rows`, [{ path: `${path}/data`, message: 'must be an array of rows' }]);
  checkCount(data.length, maxRows, `${path}/data`);
  const f = model.nFeatures;
  const out = model.allocRows(data.length);
  for (let i = 0; i < data.length; i++) {
    const row: unknown = data[i];
    const rowPath = `${path}/data/${i}`;
    if (!Array.isArray(row) || row.length !== columns.length) {
      problems.add(rowPath, `must be an array of ${columns.length} values in column order`);
      continue;
    }
    for (let c = 0; c < columns.length; c++) {
      const why = put(model, map[c]!, row[c], out, i * f + map[c]!);
      if (why !== undefined) problems.add(`${rowPath}/${c}`, why);
    }
    if (problems.list !== undefined && problems.list.length >= MAX_REPORTED_ERRORS) break;
  }
  problems.throwIfAny();
  return { input: out, rows: data.length };
}

/**
 * MLflow's column dictionary (`{"inputs": {"a": [1, 2], "b": [3, 4]}}`): one array per feature,
 * all of the same length.
 */
export function readColumnDict(dict: Record<string, unknown>, model: LoadedModel, maxRows: number, path: string): ModelRows {
  const problems = new Problems();
  let n = -1;
  for (const k of Object.keys(dict)) {
    if (!model.featureIndex.has(k)) problems.add(`${path}/${pointerSegment(k)}`, 'is not a feature of this model');
  }
  for (const name of model.featureNames) {
    const col = dict[name];
    if (!Array.isArray(col)) {
      problems.add(`${path}/${pointerSegment(name)}`, col === undefined ? 'is missing' : 'must be an array of values');
      continue;
    }
    if (n === -1) n = col.length;
    else if (col.length !== n) problems.add(`${path}/${pointerSegment(name)}`, `has ${col.length} values but other columns have ${n}`);
  }
  problems.throwIfAny(summary(problems));
  checkCount(n, maxRows, path);
  const f = model.nFeatures;
  const out = model.allocRows(n);
  model.featureNames.forEach((name, j) => {
    const col = dict[name] as unknown[];
    for (let i = 0; i < n; i++) {
      const why = put(model, j, col[i], out, i * f + j);
      if (why !== undefined) problems.add(`${path}/${pointerSegment(name)}/${i}`, why);
    }
  });
  problems.throwIfAny();
  return { input: out, rows: n };
}

/**
 * CSV text with a header row naming the features (any order); numbers for numeric features,
 * category strings for categorical ones.
 */
export function readCsvRecords(records: readonly (readonly string[])[], model: LoadedModel, maxRows: number): ModelRows {
  const header = records[0];
  if (header === undefined) throw new AppError(400, 'validation_error', 'the CSV body is empty', [{ path: '', message: 'must have a header row and at least one data row' }]);
  const data: unknown[][] = [];
  for (let i = 1; i < records.length; i++) {
    const rec = records[i]!;
    data.push(
      rec.map((cell, c) => {
        const j = model.featureIndex.get(header[c] ?? '');
        if (j !== undefined && model.categoryCodes[j] != null) return cell;
        const t = cell.trim();
        return t === '' ? null : Number(t);
      }),
    );
  }
  return readColumnar(header, data, model, maxRows, '/csv');
}
