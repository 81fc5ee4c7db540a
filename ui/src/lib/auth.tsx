/**
 * Who is signed in: the key from sessionStorage and what `GET /whoami` says about it. Pages ask
 * `useAuth().need(role)` whether an action is allowed; when it is not, the control is shown
 * disabled with the reason (the same rule the API applies: read < predict < train < admin).
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, unwrap, type Schemas } from '../api/client.ts';
import { currentKey, forgetKey, storeKey } from './key-store.ts';

import { roleAllows, type Role, type WhoAmI } from './roles.ts';

export type { Role, WhoAmI };

export interface Auth {
  readonly status: 'signed-out' | 'checking' | 'signed-in';
  readonly who: WhoAmI | undefined;
  /** Why the last sign-in failed (the API's error), if it did. */
  readonly error: unknown;
  readonly signIn: (key: string) => Promise<void>;
  readonly signOut: () => void;
  /** `undefined` when the key may act with role `need`; otherwise the reason it may not. */
  readonly need: (need: Role) => string | undefined;
}

const AuthContext = createContext<Auth | undefined>(undefined);

async function whoami(): Promise<WhoAmI> {
  return unwrap(api.GET('/whoami'));
}

export function AuthProvider({ children }: { readonly children: ReactNode }) {
  const [status, setStatus] = useState<Auth['status']>(currentKey() === undefined ? 'signed-out' : 'checking');
  const [who, setWho] = useState<WhoAmI | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);

  useEffect(() => {
    if (currentKey() === undefined) return;
    whoami().then(
      (w) => {
        setWho(w);
        setStatus('signed-in');
      },
      (err: unknown) => {
        forgetKey();
        setError(err);
        setStatus('signed-out');
      },
    );
  }, []);

  const signIn = useCallback(async (key: string) => {
    setError(undefined);
    storeKey(key);
    try {
      const w = await whoami();
      setWho(w);
      setStatus('signed-in');
    } catch (err) {
      forgetKey();
      setError(err);
      setStatus('signed-out');
    }
  }, []);

  const signOut = useCallback(() => {
    forgetKey();
    setWho(undefined);
    setStatus('signed-out');
  }, []);

  const need = useCallback(
    (role: Role): string | undefined => {
      if (who === undefined) return 'sign in with an API key first';
      if (roleAllows(who.role, role)) return undefined;
      return `needs role '${role}'; this key ('${who.name}') has role '${who.role}'`;
    },
    [who],
  );

  const value = useMemo<Auth>(() => ({ status, who, error, signIn, signOut, need }), [status, who, error, signIn, signOut, need]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (auth === undefined) throw new Error('useAuth outside AuthProvider');
  return auth;
}

export type { Schemas };
