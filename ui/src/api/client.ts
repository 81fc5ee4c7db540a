/**
 * The one HTTP client of the dashboard: openapi-fetch typed with the types generated from the
 * server's OpenAPI document (`schema.d.ts`), so a renamed field or route breaks the UI's build.
 * Every call carries the key the user entered; none is sent before there is one.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema.d.ts';
import { currentKey } from '../lib/key-store.ts';

export type Schemas = components['schemas'];
export type ErrorBody = Schemas['ErrorBody'];

/** An answer other than 2xx, with the body the API sent (its own words are what the UI shows). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly requestId: string | null,
  ) {
    super(describeBody(status, body));
    this.name = 'ApiError';
  }

  /** The native error body, when the API answered with one. */
  get native(): ErrorBody | undefined {
    const b = this.body as Partial<ErrorBody> | null;
    return b !== null && typeof b === 'object' && typeof b.error === 'string' && typeof b.details === 'string' ? (b as ErrorBody) : undefined;
  }
}

function describeBody(status: number, body: unknown): string {
  if (body !== null && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b['details'] === 'string') return b['details'];
    if (typeof b['message'] === 'string') return b['message'];
    if (typeof b['error'] === 'string') return b['error'];
  }
  if (typeof body === 'string' && body.trim() !== '') return body.trim();
  return `HTTP ${status}`;
}

/** Thrown, instead of calling, when a protected route would be called without a key. */
export class NoKeyError extends Error {
  constructor() {
    super('no API key entered yet');
    this.name = 'NoKeyError';
  }
}

const withKey: Middleware = {
  onRequest({ request }) {
    const key = currentKey();
    if (key === undefined) throw new NoKeyError();
    request.headers.set('X-API-Key', key);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: '' });
api.use(withKey);

/** The data of an openapi-fetch result, or the API's error thrown as an `ApiError`. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw new ApiError(response.status, error ?? null, response.headers.get('x-request-id'));
  return data as T;
}

/**
 * A raw request with the key, for what the typed client does not cover: binary downloads,
 * Prometheus text, uploads with progress.
 */
export async function fetchWithKey(url: string, init: RequestInit = {}): Promise<Response> {
  const key = currentKey();
  if (key === undefined) throw new NoKeyError();
  const headers = new Headers(init.headers);
  headers.set('X-API-Key', key);
  const response = await fetch(url, { ...init, headers });
  if (!response.ok) throw new ApiError(response.status, await readBody(response), response.headers.get('x-request-id'));
  return response;
}

export async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
