// Loading what a page shows: the data, the error the API gave, and reload() for after a change
// (or when the live stream says events may have been missed). A newer load wins over an older one.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api.ts';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => Promise<void>;
  /** Replace the data in place (a live event, an edit's answer) without a round trip. */
  set: (update: (old: T | undefined) => T | undefined) => void;
}

export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const ctl = useRef<AbortController | null>(null);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    ctl.current?.abort();
    const c = (ctl.current = new AbortController());
    setLoading(true);
    try {
      const d = await load(c.signal);
      if (mine !== seq.current) return;
      setData(() => d);
      setError(undefined);
    } catch (e) {
      if (mine !== seq.current || (e as Error).name === 'AbortError') return;
      setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT_ERROR', String((e as Error).message ?? e)));
    } finally {
      if (mine === seq.current) setLoading(false);
    }
  }, deps);
  useEffect(() => {
    void reload();
    return () => ctl.current?.abort();
  }, [reload]);
  return { data, error, loading, reload, set: (u) => setData((old) => u(old)) };
}

/** A button's action: busy while it runs, and the API's error kept to show beside it. */
export function useAction<A extends unknown[], R>(fn: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const run = async (...args: A): Promise<R | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      return await fn(...args);
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT_ERROR', String((e as Error).message ?? e)));
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, clearError: () => setError(undefined) };
}
