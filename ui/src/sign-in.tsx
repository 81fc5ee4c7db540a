import { useState, type FormEvent } from 'react';
import { ErrorView } from './components/error-view.tsx';
import { useAuth } from './lib/auth.tsx';

/** The key, entered once: kept in this tab's session storage until sign-out or the tab closes. */
export function SignIn() {
  const auth = useAuth();
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (key.trim() === '') return;
    setBusy(true);
    await auth.signIn(key.trim());
    setBusy(false);
  };
  return (
    <div className="sign-in">
      <h1>Sign in</h1>
      <p>
        Enter an API key. It stays in this browser tab only (session storage) and is sent with every request as <code>X-API-Key</code>. The
        key's role decides which actions are enabled.
      </p>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-describedby="api-key-hint"
          required
        />
        <p id="api-key-hint" className="hint">
          A key printed by <code>modelplane keys create</code>, the <code>API_KEY</code> variable, or <code>data/admin.key</code> after the first start.
        </p>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
      <ErrorView error={auth.error} title="Sign-in failed" />
    </div>
  );
}
