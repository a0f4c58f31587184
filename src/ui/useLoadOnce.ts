import { useEffect, useRef, useState } from 'react';

/**
 * Loads a value the first time `wanted` is true (the WikiText-2 sample of the lens and the curves
 * when their view is first shown with it selected), and keeps it, or the error, from then on. A
 * load still running when the component goes away is ignored.
 */
export function useLoadOnce<T>(wanted: boolean, load: () => Promise<T>): { value: T | null; error: string | null } {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  // The latest loader without re-running the effect when the caller passes a new closure.
  const loader = useRef(load);
  loader.current = load;
  useEffect(() => {
    if (!wanted || value !== null || error !== null) return;
    let cancelled = false;
    loader
      .current()
      .then((loaded) => !cancelled && setValue(loaded))
      .catch((e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
    };
  }, [wanted, value, error]);
  return { value, error };
}
