/**
 * A modal confirmation (native <dialog>: focus stays inside, Escape cancels) that states what an
 * action will change before it is taken, and shows the API's error in place if it fails.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ErrorView } from './error-view.tsx';

export interface ConfirmRequest {
  readonly title: string;
  readonly body: ReactNode;
  readonly confirmLabel: string;
  readonly danger?: boolean;
  run(): Promise<void>;
}

export function ConfirmDialog({ request, onClose }: { readonly request: ConfirmRequest | undefined; readonly onClose: (done: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    if (request !== undefined && !dialog.open) {
      setError(undefined);
      dialog.showModal();
    }
    if (request === undefined && dialog.open) dialog.close();
  }, [request]);

  const confirm = async () => {
    if (request === undefined) return;
    setBusy(true);
    setError(undefined);
    try {
      await request.run();
      onClose(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={ref} className="confirm" aria-labelledby="confirm-title" onClose={() => request !== undefined && onClose(false)}>
      {request !== undefined && (
        <>
          <h2 id="confirm-title">{request.title}</h2>
          <div className="confirm-body">{request.body}</div>
          <ErrorView error={error} />
          <div className="confirm-actions">
            <button type="button" onClick={() => onClose(false)} disabled={busy}>
              Cancel
            </button>
            <button type="button" className={request.danger === true ? 'danger' : 'primary'} onClick={() => void confirm()} disabled={busy}>
              {busy ? 'Working…' : request.confirmLabel}
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
