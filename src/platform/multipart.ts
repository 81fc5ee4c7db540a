/**
 * Multipart reading shared by the upload routes. The parser (busboy) reports a malformed form,
 * such as a content type without a boundary, an over-long boundary or a body cut off before its
 * closing delimiter, as a plain `Error`, thrown by the parts iterator or emitted by a part's
 * stream while it is read. That is the client's mistake, so it becomes a 400 rather than an
 * unexpected 500. Every other error passes through unchanged.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from './errors.ts';

type Parts = ReturnType<FastifyRequest['parts']>;
type PartsOptions = Parameters<FastifyRequest['parts']>[0];
type Part = Parts extends AsyncIterable<infer P> ? P : never;

/** busboy's own messages for a malformed form (it has no error codes). */
const MALFORMED = [/^Multipart: Boundary not found$/, /unexpected end of multipart data$/i, /^The needle cannot/];

/** A 400 for busboy's malformed-form errors; any other error is returned as it is. */
export function multipartError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof AppError) return err;
  if (!MALFORMED.some((re) => re.test(err.message))) return err;
  return new AppError(400, 'bad_request', `malformed multipart/form-data body (${err.message}); send a boundary parameter and a complete form`);
}

/** `request.parts(options)`, with a malformed form answered as 400 `bad_request`. */
export async function* multipartParts(request: FastifyRequest, options: PartsOptions): AsyncGenerator<Part> {
  try {
    for await (const part of request.parts(options)) yield part;
  } catch (err) {
    throw multipartError(err);
  }
}
