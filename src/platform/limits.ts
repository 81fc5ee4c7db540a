/**
 * Early refusals for request bodies, before a handler or parser reads them:
 * - a declared `Content-Length` over the route's body limit is a 413 at once, and the connection
 *   closes after the answer, so a 200 MiB upload over a 16 MiB limit is not read first;
 * - a body that stops arriving for REQUEST_TIMEOUT seconds is a 408 in the API.md shape (and the
 *   connection closes), instead of Node's bare 408 after its next periodic check, or no answer.
 * Streamed bodies (CSV, multipart) have their own running count (datasets, the multipart parser);
 * their routes close the connection when they refuse, so nothing more is read.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from './app-type.ts';
import { AppError, payloadTooLarge } from './errors.ts';

/**
 * Room for a multipart form's boundaries and small text fields beyond its file limit: the
 * routes' limit is the file's, the declared length is the whole form's.
 */
const MULTIPART_SLACK_BYTES = 1024 * 1024;

function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return undefined;
  const n = Number(header);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Whether the request carries a body still to be received. */
function expectsBody(request: FastifyRequest): boolean {
  if (request.raw.complete) return false;
  return request.headers['transfer-encoding'] !== undefined || (declaredLength(request) ?? 0) > 0;
}

/** Answers with `error` and then closes the connection, leaving the rest of the body unread. */
function refuseAndClose(reply: FastifyReply, error: AppError): void {
  void reply.header('connection', 'close');
  reply.raw.once('finish', () => reply.request.raw.socket?.destroySoon());
  void reply.send(error);
}

export interface RequestLimitOptions {
  /** App-wide body limit; a route's own `bodyLimit` wins. */
  readonly bodyLimitBytes: number;
  /** Seconds a body may take to arrive; 0 = no limit. */
  readonly requestTimeoutSeconds: number;
}

/**
 * Installs the two checks as the first `onRequest` hook. Also sets the HTTP server's own
 * timeouts so that a client stalling inside its headers (before there is a request to answer
 * in JSON) is answered by Node within the same time, a little after ours for bodies.
 */
export function installRequestLimits(app: App, options: RequestLimitOptions): void {
  const timeoutMs = options.requestTimeoutSeconds * 1000;
  if (timeoutMs > 0) {
    app.server.headersTimeout = timeoutMs;
    // Ours answers stalled bodies in JSON; Node's is the backstop for the whole request.
    app.server.requestTimeout = timeoutMs + 1000;
  }

  app.addHook('onRequest', (request, reply, done) => {
    const limit = request.routeOptions.bodyLimit ?? options.bodyLimitBytes;
    const declared = declaredLength(request);
    const multipart = request.headers['content-type']?.toLowerCase().startsWith('multipart/') === true;
    if (declared !== undefined && declared > limit + (multipart ? MULTIPART_SLACK_BYTES : 0)) {
      refuseAndClose(reply, payloadTooLarge(`the body declares ${declared} bytes, over this route's limit of ${limit} bytes`));
      return;
    }
    if (timeoutMs > 0 && expectsBody(request)) {
      const timer = setTimeout(() => {
        if (request.raw.complete || reply.sent) return;
        refuseAndClose(
          reply,
          new AppError(408, 'request_timeout', `the request body did not arrive within REQUEST_TIMEOUT (${options.requestTimeoutSeconds} s); send it without pausing`),
        );
      }, timeoutMs);
      timer.unref();
      const clear = (): void => clearTimeout(timer);
      request.raw.once('end', clear);
      request.raw.once('close', clear);
      reply.raw.once('finish', clear);
    }
    done();
  });
}
