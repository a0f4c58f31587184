import { useId } from 'react';
import { useTranslation } from 'react-i18next';
import type { RetrieverKind } from '../client';

const KINDS: readonly RetrieverKind[] = ['dense', 'bm25'];

/** Dense (the retrieval embedder) or BM25 (the chunks' words): the search box's and the passage columns' choice. */
export function RetrieverSelect({
  label,
  value,
  onChange,
  disabled,
}: {
  label: string;
  value: RetrieverKind;
  onChange: (value: RetrieverKind) => void;
  disabled?: boolean;
}) {
  const { t } = useTranslation();
  const id = useId();
  return (
    <div className="field" title={t('retriever.title')}>
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} disabled={disabled} onChange={(e) => onChange(e.target.value === 'bm25' ? 'bm25' : 'dense')}>
        {KINDS.map((kind) => (
          <option key={kind} value={kind}>
            {t(`retriever.${kind}`)}
          </option>
        ))}
      </select>
    </div>
  );
}
