/**
 * Calls the MLflow surface the way MLflow's Python client does (mlflow/utils/rest_utils.py): GET
 * requests carry the message in the query string (lists as repeated keys), other methods as a
 * JSON body; credentials as `Authorization: Bearer <token>` (MLFLOW_TRACKING_TOKEN) or Basic
 * (MLFLOW_TRACKING_USERNAME/PASSWORD).
 */
import type { App } from '../../src/app.ts';

export interface MlflowAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly text: string;
}

export type Credentials = { readonly bearer: string } | { readonly basic: { readonly user: string; readonly password: string } } | null;

/** The query string `requests` builds from a params dict: repeated keys for lists. */
export function queryString(message: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(message)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v === undefined || v === null) continue;
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`);
    }
  }
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

export function authHeader(credentials: Credentials): Record<string, string> {
  if (credentials === null) return {};
  if ('bearer' in credentials) return { authorization: `Bearer ${credentials.bearer}` };
  return { authorization: `Basic ${Buffer.from(`${credentials.basic.user}:${credentials.basic.password}`).toString('base64')}` };
}

/** One call of an MLflow endpoint, e.g. `call('POST', 'runs/create', {...})`. */
export async function call(
  app: App,
  credentials: Credentials,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  endpoint: string,
  message: Record<string, unknown> = {},
  prefix = '/api/2.0/mlflow',
): Promise<MlflowAnswer> {
  const url = `${prefix}/${endpoint}${method === 'GET' ? queryString(message) : ''}`;
  const r = await app.inject({
    method,
    url,
    headers: { ...authHeader(credentials), ...(method === 'GET' ? {} : { 'content-type': 'application/json' }) },
    ...(method === 'GET' ? {} : { payload: JSON.stringify(message) }),
  });
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(r.body) as Record<string, unknown>;
  } catch {
    // Not JSON (a file download): the text is there.
  }
  return { status: r.statusCode, body, text: r.body };
}
