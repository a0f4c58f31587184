import { useRef, type KeyboardEvent } from 'react';

export interface TabItem<K extends string> {
  key: K;
  label: string;
}

/**
 * A WAI-ARIA tab list: one tab in the Tab order, arrow keys / Home / End move between tabs and
 * select them. Panels are rendered by the caller with `tabPanelProps`.
 */
export function Tabs<K extends string>({ id, label, items, selected, onSelect }: { id: string; label: string; items: TabItem<K>[]; selected: K; onSelect: (key: K) => void }) {
  const refs = useRef(new Map<K, HTMLButtonElement>());
  const onKey = (event: KeyboardEvent<HTMLDivElement>) => {
    const index = items.findIndex((t) => t.key === selected);
    let next: number | null = null;
    if (event.key === 'ArrowRight') next = (index + 1) % items.length;
    else if (event.key === 'ArrowLeft') next = (index - 1 + items.length) % items.length;
    else if (event.key === 'Home') next = 0;
    else if (event.key === 'End') next = items.length - 1;
    if (next === null) return;
    event.preventDefault();
    const key = items[next]!.key;
    onSelect(key);
    refs.current.get(key)?.focus();
  };
  return (
    <div role="tablist" aria-label={label} className="view-tabs" onKeyDown={onKey}>
      {items.map((t) => (
        <button
          key={t.key}
          ref={(el) => {
            if (el) refs.current.set(t.key, el);
            else refs.current.delete(t.key);
          }}
          type="button"
          role="tab"
          id={`${id}-tab-${t.key}`}
          aria-controls={`${id}-panel-${t.key}`}
          aria-selected={t.key === selected}
          tabIndex={t.key === selected ? 0 : -1}
          className={t.key === selected ? 'view-tab view-tab-selected' : 'view-tab'}
          data-testid={`tab-${t.key}`}
          onClick={() => onSelect(t.key)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

export function tabPanelProps(id: string, key: string, selected: string) {
  return { role: 'tabpanel', id: `${id}-panel-${key}`, 'aria-labelledby': `${id}-tab-${key}`, hidden: key !== selected };
}
