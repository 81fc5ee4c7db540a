/**
 * Whether this server has the drift endpoints. Read from its public OpenAPI document, so the
 * page does not call a route that is not there (a 404 in the console); when the document is
 * switched off (DOCS_ENABLED=false) the endpoint is simply tried.
 */
export async function driftAvailable(signal: AbortSignal): Promise<boolean> {
  const response = await fetch('/openapi.json', { signal });
  if (!response.ok) return true;
  const doc = (await response.json()) as { paths?: Record<string, unknown> };
  return Object.keys(doc.paths ?? {}).some((p) => p.startsWith('/drift/'));
}
