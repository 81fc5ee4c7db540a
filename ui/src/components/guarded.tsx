/**
 * Controls for actions that need a role. When the key lacks it the control is disabled and the
 * reason is shown beside it (and announced with it), not hidden.
 */
import { useId, type ButtonHTMLAttributes, type ReactNode } from 'react';
import { useAuth, type Role } from '../lib/auth.tsx';

type Props = ButtonHTMLAttributes<HTMLButtonElement> & { readonly need: Role; readonly children: ReactNode };

export function GuardedButton({ need, children, disabled, ...rest }: Props) {
  const reason = useAuth().need(need);
  const id = useId();
  return (
    <span className="guarded">
      <button type="button" {...rest} disabled={disabled === true || reason !== undefined} aria-describedby={reason === undefined ? rest['aria-describedby'] : id}>
        {children}
      </button>
      {reason !== undefined && (
        <span className="reason" id={id}>
          {reason}
        </span>
      )}
    </span>
  );
}
