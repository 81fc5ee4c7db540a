import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { App } from './app-type.ts';
import { ArtifactStoreUnavailableError } from '../artifacts/errors.ts';
import { isStoreUnavailable } from '../store/database.ts';
import { AppError, unavailable, type FieldError } from './errors.ts';
import { closeAfterAnswer } from './limits.ts';

/** Seconds a client is asked to wait before retrying when a backing service is down. */
const BACKEND_RETRY_AFTER_SECONDS = 5;

/** A rendered error: what goes on the wire for one protocol (native, MLflow, KServe). */
export type ErrorRenderer = (error: AppError, request: FastifyRequest) => unknown;

/**
 * Native error body of API.md: `{error, details, timestamp, request_id, errors?}`.
 */
export const renderNativeError: ErrorRenderer = (error, request) => ({
  error: error.code,
  details: error.message,
  timestamp: new Date().toISOString(),
  request_id: request.id,
  ...(error.errors === undefined ? {} : { errors: error.errors }),
});

const FASTIFY_CODES: Readonly<Record<string, { status: number; code: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'payload_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'bad_request' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'bad_request' },
  FST_REQ_FILE_TOO_LARGE: { status: 413, code: 'payload_too_large' },
  FST_FILES_LIMIT: { status: 413, code: 'payload_too_large' },
  FST_PARTS_LIMIT: { status: 413, code: 'payload_too_large' },
  FST_INVALID_MULTIPART_CONTENT_TYPE: { status: 415, code: 'unsupported_media_type' },
};

const STATUS_CODES: Readonly<Record<number, string>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'service_unavailable',
};

/** Turns Ajv's `instancePath` (+ missing property) into a JSON pointer naming the field. */
function fieldPath(context: string | undefined, v: { instancePath?: string; params?: Record<string, unknown> }): string {
  let p = v.instancePath ?? '';
  const missing = v.params?.['missingProperty'];
  if (typeof missing === 'string') p = `${p}/${missing}`;
  const extra = v.params?.['additionalProperty'];
  if (typeof extra === 'string') p = `${p}/${extra}`;
  return context === undefined || context === 'body' ? p : `/${context}${p}`;
}

interface AjvProblem extends FieldError {
  readonly keyword: string | undefined;
  readonly params: Record<string, unknown> | undefined;
}

/**
 * A value outside a set of literals (a TypeBox union of literals, or an enum) makes Ajv report
 * "must be equal to constant" once per literal plus "must match a schema in anyOf". Those become
 * one error per field that lists the allowed values; other errors are kept as they are.
 */
function collapseChoices(problems: readonly AjvProblem[]): FieldError[] {
  const allowed = new Map<string, unknown[]>();
  for (const p of problems) {
    if (p.keyword === 'const') allowed.set(p.path, [...(allowed.get(p.path) ?? []), p.params?.['allowedValue']]);
    if (p.keyword === 'enum' && Array.isArray(p.params?.['allowedValues'])) allowed.set(p.path, [...(allowed.get(p.path) ?? []), ...(p.params['allowedValues'] as unknown[])]);
  }
  const out: FieldError[] = [];
  const done = new Set<string>();
  for (const p of problems) {
    const values = allowed.get(p.path);
    if (values === undefined || !(p.keyword === 'const' || p.keyword === 'enum' || p.keyword === 'anyOf')) {
      out.push({ path: p.path, message: p.message });
      continue;
    }
    if (done.has(p.path)) continue;
    done.add(p.path);
    out.push({ path: p.path, message: `must be one of ${[...new Set(values)].map((v) => JSON.stringify(v)).join(', ')}` });
  }
  return out;
}

/** Normalises anything thrown in a request into an `AppError`; returns `undefined` for unexpected errors. */
export function toAppError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  const e = err as Partial<FastifyError> & { validationContext?: string; statusCode?: number };
  if (e !== null && typeof e === 'object' && Array.isArray(e.validation)) {
    const errors = collapseChoices(
      e.validation.map((v) => ({
        path: fieldPath(e.validationContext, v as never),
        message: v.message ?? 'is invalid',
        keyword: (v as { keyword?: string }).keyword,
        params: (v as { params?: Record<string, unknown> }).params,
      })),
    );
    const first = errors[0];
    const where = e.validationContext === undefined ? 'request' : e.validationContext;
    return new AppError(
      400,
      'validation_error',
      first === undefined ? `invalid ${where}` : `invalid ${where}: ${first.path === '' ? '(root)' : first.path} ${first.message}`,
      errors,
    );
  }
  if (e !== null && typeof e === 'object' && typeof e.code === 'string' && e.code in FASTIFY_CODES) {
    const m = FASTIFY_CODES[e.code]!;
    return new AppError(m.status, m.code, cleanMessage(e.message));
  }
  if (e !== null && typeof e === 'object' && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const headers: Record<string, string> = {};
    const retry = (e as { headers?: Record<string, unknown> }).headers?.['retry-after'];
    if (typeof retry === 'string' || typeof retry === 'number') headers['retry-after'] = String(retry);
    return new AppError(e.statusCode, STATUS_CODES[e.statusCode] ?? 'bad_request', cleanMessage(e.message), undefined, headers);
  }
  // A backing service that is down is the server's temporary state, not a bug: 503 with Retry-After.
  if (err instanceof ArtifactStoreUnavailableError) return unavailable(`${err.message}; try again later`, BACKEND_RETRY_AFTER_SECONDS);
  if (isStoreUnavailable(err)) {
    return unavailable('the metadata store (database) is unavailable; try again later', BACKEND_RETRY_AFTER_SECONDS);
  }
  return undefined;
}

function cleanMessage(message: string | undefined): string {
  if (message === undefined || message === '') return 'invalid request';
  // Fastify prefixes some messages with its internal code; users need the sentence.
  return message.replace(/^FST_[A-Z_]+:\s*/, '');
}

/**
 * Fastify's 415 says only which type it did not take; the reply also names what the route
 * accepts: its body schema's content types, else JSON (the one parser every route has).
 */
function withAcceptedTypes(appError: AppError | undefined, err: unknown, request: FastifyRequest): AppError | undefined {
  if (appError === undefined || (err as { code?: unknown }).code !== 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return appError;
  const body = (request.routeOptions.schema as { body?: { content?: Record<string, unknown> } } | undefined)?.body;
  const accepted = body?.content === undefined ? ['application/json'] : Object.keys(body.content);
  const given = request.headers['content-type'] ?? 'no content type';
  return new AppError(415, appError.code, `unsupported content type ${given}; ${request.method} ${request.routeOptions.url ?? request.url} accepts ${accepted.join(', ')}`);
}

export interface ErrorFormat {
  /** URL prefix this renderer owns (longest match wins); `''` is the native default. */
  readonly prefix: string;
  readonly render: ErrorRenderer;
}

/**
 * Installs the one error handler and the not-found handler. Protocol surfaces register their own
 * renderer by URL prefix with `app.addErrorFormat` so that MLflow clients get
 * `{error_code, message}` and KServe clients `{error}`, while everything else gets the native body.
 */
export function installErrorHandling(app: App, options: { debug?: boolean } = {}): void {
  const formats: ErrorFormat[] = [];
  app.decorate('addErrorFormat', (format: ErrorFormat) => {
    formats.push(format);
  });
  const pick = (url: string): ErrorRenderer => {
    let best: ErrorFormat | undefined;
    for (const f of formats) {
      if (url.startsWith(f.prefix) && (best === undefined || f.prefix.length > best.prefix.length)) best = f;
    }
    return best?.render ?? renderNativeError;
  };

  const send = (reply: FastifyReply, request: FastifyRequest, error: AppError): FastifyReply => {
    app.metricsHooks?.onError(request, error.code);
    if (error.headers !== undefined) void reply.headers(error.headers);
    // Refused before its body was read to the end (a limit, a bad form): close the connection
    // after the answer, so the rest of the body is not read (Node would drain it first).
    if (request.raw.complete === false) closeAfterAnswer(request, reply);
    return reply.code(error.status).type('application/json; charset=utf-8').send(pick(request.url)(error, request));
  };

  app.setErrorHandler((err, request, reply) => {
    const appError = withAcceptedTypes(toAppError(err), err, request);
    if (appError !== undefined) {
      if (appError.status >= 500) request.log.error({ err }, appError.message);
      // API_DEBUG: every refused request in the log with its cause and stack (never in the reply).
      else if (options.debug === true) request.log.warn({ err, status: appError.status, url: request.originalUrl }, `request failed: ${appError.message}`);
      return send(reply, request, appError);
    }
    request.log.error({ err }, 'unexpected error');
    return send(reply, request, new AppError(500, 'internal_error', `unexpected error; quote request id ${request.id} when reporting it`));
  });

  app.setNotFoundHandler((request, reply) => {
    app.metricsHooks?.onUnmatched(request, reply);
    return send(reply, request, new AppError(404, 'not_found', `no route ${request.method} ${request.originalUrl.split('?')[0] ?? ''}`));
  });
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Renders errors of URLs under `format.prefix` in that surface's shape (longest prefix wins). */
    addErrorFormat(format: ErrorFormat): void;
    /** Set by the metrics plugin so the error handler can count errors by code. */
    metricsHooks?: { onError(request: FastifyRequest, code: string): void; onUnmatched(request: FastifyRequest, reply: FastifyReply): void };
  }
}
