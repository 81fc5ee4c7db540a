import { Type, type TSchema } from '@sinclair/typebox';
import { invalidField } from './errors.ts';

/** The native error body of API.md, as a response schema. */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'short machine code, e.g. validation_error' }),
    details: Type.String({ description: 'human sentence' }),
    timestamp: Type.String({ format: 'date-time' }),
    request_id: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { $id: 'ErrorBody', title: 'Error' },
);

const ERROR_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'Invalid input',
  401: 'Missing or unknown API key',
  403: 'The key lacks the role',
  404: 'Unknown resource',
  409: 'Conflict',
  413: 'Body too large',
  415: 'Unsupported content type',
  429: 'Rate limited',
  503: 'Not ready, no servable model or overloaded',
};

/** Response schemas for the error statuses a route can answer (always with 401/403/429 for protected routes). */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const s of statuses) out[s] = Type.Ref(ErrorBody, { description: ERROR_DESCRIPTIONS[s] ?? 'Error' });
  return out;
}

/** Errors every key-protected route can answer. */
export const AUTH_ERRORS = [401, 403, 429] as const;

/**
 * The properties of `?limit=&page_token=` (API.md's pagination), for every list route: a
 * finite integer page size within bounds (the schema compiler refuses `1e309` and `Infinity`)
 * and a bounded opaque token. Routes with other query parameters spread these in.
 */
export function pageProperties(options: { max?: number; default?: number } = {}) {
  const max = options.max ?? 1000;
  return {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: max, default: options.default ?? 100, description: `page size, 1 to ${max}` })),
    page_token: Type.Optional(Type.String({ maxLength: 512, description: 'next_page_token of the previous page' })),
  };
}

/** `?limit=&page_token=` of API.md's pagination. */
export const PageQuery = Type.Object(pageProperties());

/** Opaque page tokens: base64url of a JSON offset cursor. */
export function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

export function decodePageToken(token: string | undefined): number {
  if (token === undefined || token === '') return 0;
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown };
    if (typeof v.o === 'number' && Number.isInteger(v.o) && v.o >= 0) return v.o;
  } catch {
    // fall through to the error below
  }
  throw invalidField('/querystring/page_token', 'is not a token this server issued');
}
