/**
 * An error exactly as the API words it: its code, its sentence (`details`), the field errors and
 * the request id to find it in the server's logs. Anything else (a network failure) says so.
 */
import { ApiError } from '../api/client.ts';

export function ErrorView({ error, title }: { readonly error: unknown; readonly title?: string }) {
  if (error === undefined || error === null) return null;
  if (error instanceof ApiError) {
    const native = error.native;
    return (
      <div className="error" role="alert">
        <p className="error-head">
          {title !== undefined && <strong>{title}: </strong>}
          <span className="error-status">HTTP {error.status}</span>
          {native !== undefined && <code className="error-code">{native.error}</code>}
        </p>
        <p className="error-details">{native?.details ?? error.message}</p>
        {native?.errors !== undefined && native.errors.length > 0 && (
          <ul className="error-fields">
            {native.errors.map((e, i) => (
              <li key={i}>
                <code>{e.path}</code> {e.message}
              </li>
            ))}
          </ul>
        )}
        {(native?.request_id ?? error.requestId) !== null && <p className="error-request">request id {native?.request_id ?? error.requestId}</p>}
      </div>
    );
  }
  const message = error instanceof Error ? `${error.name === 'TypeError' ? 'Network error: ' : ''}${error.message}` : typeof error === 'string' ? error : JSON.stringify(error);
  return (
    <div className="error" role="alert">
      <p className="error-head">{title !== undefined && <strong>{title}: </strong>}</p>
      <p className="error-details">{message}</p>
    </div>
  );
}
