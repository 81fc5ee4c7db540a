/**
 * MLflow's REST wire rules, shared by every MLflow route: how a request message is read (GET from
 * the query string with repeated keys as lists, other methods from a JSON body; int64 as number or
 * string; enums by name or number; `run_uuid` for `run_id`), how a reply is written (snake_case,
 * empty fields omitted, `{}` when empty, NaN and infinities as the strings protobuf's JSON uses),
 * and how errors become `{error_code, message}` with MLflow's status mapping.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../platform/app-type.ts';
import { AppError } from '../platform/errors.ts';
import { toAppError } from '../platform/error-handler.ts';

/** MLflow's HTTP status of each error code it uses (mlflow/exceptions.py, 2.x). */
export const MLFLOW_STATUS: Readonly<Record<string, number>> = {
  INTERNAL_ERROR: 500,
  TEMPORARILY_UNAVAILABLE: 503,
  REQUEST_LIMIT_EXCEEDED: 429,
  ENDPOINT_NOT_FOUND: 404,
  RESOURCE_DOES_NOT_EXIST: 404,
  PERMISSION_DENIED: 403,
  UNAUTHENTICATED: 401,
  BAD_REQUEST: 400,
  RESOURCE_ALREADY_EXISTS: 400,
  INVALID_PARAMETER_VALUE: 400,
  RESOURCE_CONFLICT: 409,
};

const MLFLOW_CODE = /^[A-Z][A-Z_]+$/;

/** An error already in MLflow's terms: its code is one of `MLFLOW_STATUS`'s, its status MLflow's. */
export function mlflowError(code: keyof typeof MLFLOW_STATUS, message: string): AppError {
  return new AppError(MLFLOW_STATUS[code] ?? 400, code, message);
}

export const invalidValue = (message: string): AppError => mlflowError('INVALID_PARAMETER_VALUE', message);

/**
 * How a 409 of the services reads to an MLflow client on one route: a name taken
 * (RESOURCE_ALREADY_EXISTS, a 400 in MLflow) or a refusal because of the resource's state
 * (RESOURCE_CONFLICT, 409: a version still serving cannot be deleted). Routes that can only
 * conflict by state say so in `config.mlflowConflict`.
 */
export type ConflictCode = 'RESOURCE_ALREADY_EXISTS' | 'RESOURCE_CONFLICT';

/**
 * Translates any error of a service or of the platform (validation, auth, rate limit) into
 * MLflow's code and status. Errors that are not `AppError`s stay as they are (the one error handler
 * logs them and answers INTERNAL_ERROR).
 */
export function toMlflowError(err: unknown, conflictCode: ConflictCode = 'RESOURCE_ALREADY_EXISTS'): unknown {
  const e = toAppError(err);
  if (e === undefined) return err;
  if (MLFLOW_CODE.test(e.code) && e.code in MLFLOW_STATUS) return e;
  const code = codeForStatus(e.status, conflictCode);
  return new AppError(code === 'BAD_REQUEST' && e.status === 413 ? 413 : (MLFLOW_STATUS[code] ?? e.status), code, e.message, e.errors, e.headers);
}

function codeForStatus(status: number, conflictCode: ConflictCode): string {
  switch (status) {
    case 400:
      return 'INVALID_PARAMETER_VALUE';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'RESOURCE_DOES_NOT_EXIST';
    case 409:
      return conflictCode;
    case 413:
    case 415:
      return 'BAD_REQUEST';
    case 429:
      return 'REQUEST_LIMIT_EXCEEDED';
    case 503:
      return 'TEMPORARILY_UNAVAILABLE';
    default:
      return status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST';
  }
}

/**
 * The body the one error handler writes for URLs under the MLflow prefixes. Errors that did not
 * pass through a route's handler (an unknown path) are named here.
 */
export function renderMlflowError(error: AppError): { error_code: string; message: string } {
  if (MLFLOW_CODE.test(error.code) && error.code in MLFLOW_STATUS) return { error_code: error.code, message: error.message };
  const code = error.status === 404 ? 'ENDPOINT_NOT_FOUND' : codeForStatus(error.status, 'RESOURCE_ALREADY_EXISTS');
  return { error_code: code, message: error.message };
}

/**
 * Installs MLflow's error translation on a scope: its routes' errors are turned into MLflow codes
 * and statuses, then handed to the one error handler (which renders them with `renderMlflowError`).
 */
export function installMlflowErrors(scope: App): void {
  scope.setErrorHandler((err: FastifyError, request: FastifyRequest, _reply: FastifyReply) => {
    throw toMlflowError(err, request.routeOptions.config.mlflowConflict);
  });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** On MLflow routes: what a 409 of the services means there (default RESOURCE_ALREADY_EXISTS). */
    mlflowConflict?: ConflictCode;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a request message

/**
 * One MLflow request message: the query string of a GET, the JSON body of the other methods (a
 * DELETE or POST with no body falls back to its query string, as lenient clients send that).
 * Readers name the offending field in INVALID_PARAMETER_VALUE errors.
 */
export class MlflowMessage {
  private constructor(private readonly fields: Readonly<Record<string, unknown>>) {}

  static of(request: FastifyRequest): MlflowMessage {
    const body = request.body;
    if (request.method !== 'GET' && body !== undefined && body !== null && body !== '') {
      if (typeof body !== 'object' || Array.isArray(body)) throw invalidValue('the request body must be a JSON object');
      return new MlflowMessage(body as Record<string, unknown>);
    }
    const query = request.query;
    return new MlflowMessage(typeof query === 'object' && query !== null ? (query as Record<string, unknown>) : {});
  }

  /** The raw value of the first of `names` that is present. */
  private raw(names: readonly string[]): { name: string; value: unknown } | undefined {
    for (const name of names) {
      const value = this.fields[name];
      if (value !== undefined && value !== null) return { name, value };
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.raw([name]) !== undefined;
  }

  /** A string field; a repeated query key takes its last value. */
  optString(name: string, ...aliases: string[]): string | undefined {
    const found = this.raw([name, ...aliases]);
    if (found === undefined) return undefined;
    const v = Array.isArray(found.value) ? found.value[found.value.length - 1] : found.value;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw invalidValue(`invalid value for parameter '${found.name}': expected a string`);
  }

  string(name: string, ...aliases: string[]): string {
    const v = this.optString(name, ...aliases);
    if (v === undefined || v === '') throw missing(name);
    return v;
  }

  /** The run id, sent as `run_id` or as the older `run_uuid`. */
  runId(): string {
    const v = this.optString('run_id', 'run_uuid');
    if (v === undefined || v === '') throw invalidValue("missing value for required parameter 'run_id'");
    return v;
  }

  /** A 64-bit integer sent as a JSON number or a decimal string (protobuf's JSON writes int64 as strings). */
  optInt(name: string): number | undefined {
    const found = this.raw([name]);
    if (found === undefined) return undefined;
    const v = Array.isArray(found.value) ? found.value[found.value.length - 1] : found.value;
    return toInt(name, v);
  }

  int(name: string): number {
    const v = this.optInt(name);
    if (v === undefined) throw missing(name);
    return v;
  }

  optBool(name: string): boolean | undefined {
    const found = this.raw([name]);
    if (found === undefined) return undefined;
    const v = Array.isArray(found.value) ? found.value[found.value.length - 1] : found.value;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'True' || v === '1') return true;
    if (v === 'false' || v === 'False' || v === '0') return false;
    throw invalidValue(`invalid value for parameter '${name}': expected a boolean`);
  }

  /** A double; NaN and infinities may come as protobuf's strings `NaN`, `Infinity`, `-Infinity`. */
  double(name: string): number {
    const found = this.raw([name]);
    if (found === undefined) throw missing(name);
    return toDouble(name, found.value);
  }

  /** A repeated string field: a JSON array, repeated query keys, or one value. */
  stringList(name: string): string[] {
    const found = this.raw([name]);
    if (found === undefined) return [];
    const list = Array.isArray(found.value) ? found.value : [found.value];
    return list.map((v) => {
      if (typeof v === 'string') return v;
      if (typeof v === 'number') return String(v);
      throw invalidValue(`invalid value for parameter '${name}': expected a list of strings`);
    });
  }

  /** An enum given by name or by its protobuf number. */
  optEnum<T extends string>(name: string, values: readonly T[], numbers: Readonly<Record<number, T>>): T | undefined {
    const found = this.raw([name]);
    if (found === undefined) return undefined;
    const v = Array.isArray(found.value) ? found.value[found.value.length - 1] : found.value;
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return v as T;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : undefined;
    if (n !== undefined && numbers[n] !== undefined) return numbers[n];
    throw invalidValue(`invalid value ${JSON.stringify(v)} for parameter '${name}': use one of ${values.join(', ')}`);
  }

  /** A repeated message field (`tags`, `metrics`, ...): a JSON array of objects. */
  objects(name: string): Record<string, unknown>[] {
    const found = this.raw([name]);
    if (found === undefined) return [];
    if (!Array.isArray(found.value)) throw invalidValue(`invalid value for parameter '${name}': expected a list`);
    return found.value.map((v, i) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidValue(`invalid value for parameter '${name}[${i}]': expected an object`);
      return v as Record<string, unknown>;
    });
  }

  /** `[{key, value}]` pairs (tags, params), keys and values as strings. */
  keyValues(name: string): { key: string; value: string }[] {
    return this.objects(name).map((o, i) => ({ key: fieldString(o, 'key', `${name}[${i}]`), value: fieldString(o, 'value', `${name}[${i}]`, '') }));
  }
}

function missing(name: string): AppError {
  return invalidValue(`missing value for required parameter '${name}'`);
}

/** A string field of a nested message; `fallback` when absent (else it is required). */
export function fieldString(o: Record<string, unknown>, name: string, where: string, fallback?: string): string {
  const v = o[name];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw invalidValue(`missing value for required parameter '${where}.${name}'`);
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw invalidValue(`invalid value for parameter '${where}.${name}': expected a string`);
}

export function toInt(name: string, v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?[0-9]+$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw invalidValue(`invalid value ${JSON.stringify(v)} for parameter '${name}': expected an integer`);
  return n;
}

export function toDouble(name: string, v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const s = v.trim();
    if (s === 'NaN' || s === 'nan') return Number.NaN;
    if (s === 'Infinity' || s === 'inf' || s === '+Infinity') return Number.POSITIVE_INFINITY;
    if (s === '-Infinity' || s === '-inf') return Number.NEGATIVE_INFINITY;
    if (s !== '' && Number.isFinite(Number(s))) return Number(s);
  }
  throw invalidValue(`invalid value ${JSON.stringify(v)} for parameter '${name}': expected a number`);
}

// ---------------------------------------------------------------------------------------------
// Writing a reply

/** A double as protobuf's JSON writes it: NaN and infinities as strings. */
export function wireDouble(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/**
 * A field as protobuf's JSON writes it: absent (`undefined`, which `JSON.stringify` leaves out)
 * when null, an empty string or an empty list. Views build replies with it, so a reply is
 * serialised in one plain `JSON.stringify`.
 */
export function opt<T>(value: T | null | undefined): T | undefined {
  if (value === null || value === undefined || (value as unknown) === '') return undefined;
  if (Array.isArray(value) && value.length === 0) return undefined;
  return value;
}

/** Sends a reply message: 200, JSON, its top-level empty fields left out (`{}` when nothing is left). */
export function sendMessage(reply: FastifyReply, message: Record<string, unknown> = {}): FastifyReply {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) {
    const v = opt(value);
    if (v !== undefined) body[key] = v;
  }
  return reply.code(200).type('application/json').send(JSON.stringify(body));
}

/** The key id of the caller, recorded in the registry's history. */
export function actorOf(request: FastifyRequest): { keyId: string; role: NonNullable<FastifyRequest['principal']>['role'] } {
  const p = request.principal;
  if (p === undefined) throw mlflowError('UNAUTHENTICATED', 'an API key is required');
  return { keyId: p.keyId, role: p.role };
}
