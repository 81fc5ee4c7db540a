/**
 * The one error family of modelplane. Services throw `AppError`s with a stable machine code and an
 * HTTP status; one handler per wire format (native, MLflow, KServe) renders them. Anything else
 * that escapes becomes a logged 500 with no internals in the body.
 */

/** One validation problem, addressed by a JSON pointer into the request. */
export interface FieldError {
  readonly path: string;
  readonly message: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errors?: readonly FieldError[],
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (message: string, errors?: readonly FieldError[]): AppError =>
  new AppError(400, errors === undefined ? 'bad_request' : 'validation_error', message, errors);
/** A 400 for one offending field, named by its JSON pointer. */
export const invalidField = (path: string, message: string): AppError =>
  new AppError(400, 'validation_error', `${path === '' ? 'body' : path}: ${message}`, [{ path, message }]);
export const unauthorized = (message = 'missing or unknown API key'): AppError =>
  new AppError(401, 'unauthorized', message, undefined, { 'www-authenticate': 'Bearer' });
export const forbidden = (message: string): AppError => new AppError(403, 'forbidden', message);
export const notFound = (message: string): AppError => new AppError(404, 'not_found', message);
export const conflict = (message: string): AppError => new AppError(409, 'conflict', message);
export const payloadTooLarge = (message: string): AppError => new AppError(413, 'payload_too_large', message);
export const unsupportedMediaType = (message: string): AppError => new AppError(415, 'unsupported_media_type', message);
export const unavailable = (message: string, retryAfterSeconds?: number): AppError =>
  new AppError(
    503,
    'service_unavailable',
    message,
    undefined,
    retryAfterSeconds === undefined ? undefined : { 'retry-after': String(retryAfterSeconds) },
  );
