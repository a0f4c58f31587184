import { useEffect, useRef } from 'react';

/**
 * Calls `onEscape` when Esc is pressed anywhere on the page while `active` (a view on screen): the
 * stop key of generation, the lens and the curves.
 */
export function useEscape(onEscape: () => void, active = true): void {
  // The latest callback, so a caller's inline function does not re-subscribe on every render.
  const latest = useRef(onEscape);
  useEffect(() => {
    latest.current = onEscape;
  });
  useEffect(() => {
    if (!active) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') latest.current();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [active]);
}
