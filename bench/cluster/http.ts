/**
 * HTTP for the harness: node:http with keep-alive agents, a deadline on every request, and
 * results instead of exceptions, so a failure is counted by kind (status code, ECONNRESET,
 * ECONNREFUSED, timeout) rather than thrown.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface HttpResult {
  /** HTTP status, or 0 when no response came. */
  readonly status: number;
  readonly body: string;
  /** The body as bytes (binary downloads). */
  readonly raw: Buffer;
  readonly headers: http.IncomingHttpHeaders;
  /** Milliseconds from sending to the end of the response (or the error). */
  readonly ms: number;
  /** Error kind when no response came: an errno code (ECONNRESET...), `timeout`, or the message. */
  readonly error?: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array;
  /** The whole request must finish within this; default 10 s. */
  readonly timeoutMs?: number;
  readonly agent?: http.Agent;
}

/** The kind a result is counted under: `200`, `503`, `ECONNRESET`, `timeout`... */
export function outcomeOf(r: HttpResult): string {
  return r.status > 0 ? String(r.status) : (r.error ?? 'error');
}

export function isOk(r: HttpResult): boolean {
  return r.status >= 200 && r.status < 300;
}

const EMPTY = Buffer.alloc(0);

/** One request; never rejects. */
export function request(url: string, options: RequestOptions = {}): Promise<HttpResult> {
  const t0 = performance.now();
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: Omit<HttpResult, 'ms'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...r, ms: performance.now() - t0 });
    };
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
    const req = http.request(url, { method: options.method ?? 'GET', headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        finish({ status: res.statusCode ?? 0, body: raw.toString('utf8'), raw, headers: res.headers });
      });
      res.on('error', (err: NodeJS.ErrnoException) => finish({ status: 0, body: '', raw: EMPTY, headers: {}, error: err.code ?? err.message }));
    });
    const timer = setTimeout(() => {
      finish({ status: 0, body: '', raw: EMPTY, headers: {}, error: 'timeout' });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ status: 0, body: '', raw: EMPTY, headers: {}, error: err.code ?? err.message }));
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** Parses a JSON body, or undefined. */
export function json(r: HttpResult): any {
  try {
    return JSON.parse(r.body);
  } catch {
    return undefined;
  }
}

/** A short description of a result for reports: `503 {"error":"unavailable",...}` or `timeout after 5000 ms`. */
export function summarize(r: HttpResult, max = 160): string {
  if (r.status === 0) return `${r.error ?? 'error'} after ${Math.round(r.ms)} ms`;
  const body = r.body.replace(/\s+/g, ' ').slice(0, max);
  return `${r.status} in ${Math.round(r.ms)} ms ${body}`;
}

/** Milliseconds since `t0` (ms epoch), rounded. */
export function since(t0: number): number {
  return Math.round(Date.now() - t0);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Calls `probe` every `everyMs` until it returns a value other than undefined, or `deadlineMs`
 * passes (then undefined). Every wait in the harness goes through this or a timer with a deadline.
 */
export async function poll<T>(probe: () => Promise<T | undefined>, deadlineMs: number, everyMs = 250): Promise<T | undefined> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await sleep(Math.min(everyMs, Math.max(0, end - Date.now())));
  }
}
