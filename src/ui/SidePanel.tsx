import { useEffect, useRef, useState, type ReactNode } from 'react';

/**
 * A panel opened from the output (a chunk's neighbours, a token's distribution): it takes focus when
 * it opens so a keyboard or screen-reader user lands in what they asked for, and Esc closes it and
 * puts focus back on the element that opened it, so the reading position in the column is kept.
 */
export function SidePanel({ onClose, children, label }: { onClose: () => void; children: ReactNode; label: string }) {
  const ref = useRef<HTMLDivElement>(null);
  // Read while rendering, before any effect of the panel's content can move focus into it.
  const [opener] = useState<Element | null>(() => document.activeElement);
  useEffect(() => {
    // A panel that focuses a control of its own (a slider, a heading) keeps that.
    const panel = ref.current;
    if (panel && !panel.contains(document.activeElement)) {
      // Beside the columns it is already in view: moving the page would shift what the class reads.
      panel.focus({ preventScroll: true });
      const box = panel.getBoundingClientRect();
      if (box.top < 0 || box.top > window.innerHeight - 40) panel.scrollIntoView({ block: 'nearest' });
    }
    // Closed by Esc or its × button, the panel leaves focus on nothing: back to what opened it.
    return () => {
      const lost = document.activeElement === null || document.activeElement === document.body;
      if (lost && opener instanceof HTMLElement && opener.isConnected) opener.focus();
    };
  }, [opener]);
  return (
    <div
      ref={ref}
      className="side-panel"
      role="region"
      aria-label={label}
      tabIndex={-1}
      data-testid="side-panel"
      onKeyDown={(event) => {
        if (event.key !== 'Escape') return;
        // The page-wide Esc (stop generating) must not also fire.
        event.stopPropagation();
        onClose();
      }}
    >
      {children}
    </div>
  );
}
