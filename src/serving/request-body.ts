/**
 * How the prediction routes read their bodies. JSON is parsed by `JSON.parse` alone, and the row
 * routes first try the numeric reader, which reads the common row shapes straight from the
 * request bytes into numbers (see numeric-json.ts); any other body goes through `JSON.parse` and
 * the input adapters.
 *
 * Fastify's default parser (secure-json-parse) also scans every body twice with regular
 * expressions for `__proto__` and `constructor` keys, which protects code that merges parsed
 * objects into others; the input adapters only read own feature values by name (`Object.hasOwn`)
 * into typed arrays, so there is nothing to poison, and the scans measured at about 2% of a single
 * prediction's CPU.
 */
import { errorCodes, type FastifyRequest } from 'fastify';
import type { App } from '../platform/app-type.ts';
import { AppError } from '../platform/errors.ts';
import type { NumericJsonReader } from './numeric-json.ts';

/**
 * Installs the JSON parser of a scope: `JSON.parse` only, or with `numeric`, the numeric reader
 * first (it keeps the body as the chunks it arrived in; see {@link collectBody}).
 */
export function useJsonParser(scope: App, numeric: NumericJsonReader | undefined): void {
  scope.removeContentTypeParser('application/json');
  if (numeric === undefined) {
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => parseJson(body as string, done));
    return;
  }
  const limit = scope.initialConfig.bodyLimit ?? 1024 * 1024;
  scope.addContentTypeParser('application/json', (request, payload, done) => {
    collectBody(request, payload, limit, (err, chunks, length) => {
      if (err !== null) {
        done(err, undefined);
        return;
      }
      const rows = length === 0 ? undefined : numeric.readChunks(chunks, length);
      if (rows !== undefined) done(null, rows);
      else parseJson((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)).toString('utf8'), done);
    });
  });
}

/**
 * Collects a request body as the chunks it arrives in, with Fastify's own checks and errors (body
 * limit, declared length): Fastify's `parseAs: 'buffer'` would join every body into a new buffer,
 * which for a 1000-row batch is half a megabyte of garbage per request; the numeric reader joins
 * them in a buffer it keeps.
 */
export function collectBody(request: FastifyRequest, payload: NodeJS.ReadableStream, limit: number, then: (err: Error | null, chunks: Buffer[], length: number) => void): void {
  const declared = Number(request.headers['content-length']);
  if (declared > limit) {
    then(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), [], 0);
    return;
  }
  const chunks: Buffer[] = [];
  let length = 0;
  const stop = (): void => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onEnd);
  };
  const onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    length += bytes.length;
    if (length > limit) {
      stop();
      then(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE(), [], 0);
      return;
    }
    chunks.push(bytes);
  };
  const onEnd = (err?: Error & { statusCode?: number }): void => {
    stop();
    if (err != null) {
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
      then(err, [], 0);
    } else if (!Number.isNaN(declared) && length !== declared) then(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH(), [], 0);
    else then(null, chunks, length);
  };
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onEnd);
  payload.resume();
}

function parseJson(text: string, done: (err: Error | null, body: unknown) => void): void {
  if (text.length === 0) {
    done(new AppError(400, 'bad_request', 'the request body is empty; send a JSON object'), undefined);
    return;
  }
  try {
    done(null, JSON.parse(text));
  } catch (err) {
    done(new AppError(400, 'bad_request', `the request body is not valid JSON: ${(err as Error).message}`), undefined);
  }
}
