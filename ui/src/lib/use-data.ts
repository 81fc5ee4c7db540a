/**
 * Loading data for a page: one async function, re-run when its dependencies change, with the
 * error kept as thrown (an `ApiError` carries the API's own words). Optional polling re-runs it
 * every `pollMs` while `shouldPoll` says so, without flashing a loading state.
 */
import { useCallback, useEffect, useRef, useState, type DependencyList } from 'react';

export interface Data<T> {
  readonly data: T | undefined;
  readonly error: unknown;
  readonly loading: boolean;
  reload(): void;
}

export function useData<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: DependencyList,
  poll?: { readonly pollMs: number; readonly shouldPoll?: (data: T | undefined) => boolean },
): Data<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const pollRef = useRef(poll);
  pollRef.current = poll;

  useEffect(() => {
    const controller = new AbortController();
    let timer: number | undefined;
    let stopped = false;
    const run = async (first: boolean) => {
      if (first) setState((s) => ({ ...s, loading: true }));
      try {
        const data = await loadRef.current(controller.signal);
        if (stopped) return;
        setState({ data, error: undefined, loading: false });
        const p = pollRef.current;
        if (p !== undefined && (p.shouldPoll === undefined || p.shouldPoll(data))) timer = window.setTimeout(() => void run(false), p.pollMs);
      } catch (error) {
        if (stopped || controller.signal.aborted) return;
        setState((s) => ({ data: first ? undefined : s.data, error, loading: false }));
      }
    };
    void run(true);
    return () => {
      stopped = true;
      controller.abort();
      if (timer !== undefined) window.clearTimeout(timer);
    };
  }, [...deps, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}
