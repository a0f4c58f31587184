import type { KeyboardEvent } from 'react';
import { useTranslation } from 'react-i18next';
import type { TokenView } from '../../client';
import type { Segment } from './chunks';

/** Makes a column's generated tokens clickable: each opens what the model predicted when it wrote it. */
export interface TokenPicker {
  /** the run's generated tokens in display form (detokenizeTokens), one entry per token */
  shown: TokenView[];
  selected: number | null;
  onSelect: (index: number) => void;
  /** the column's title, for the buttons' labels */
  column: string;
}

function TokenButton({ picker, index }: { picker: TokenPicker; index: number }) {
  const { t } = useTranslation();
  const token = picker.shown[index];
  if (!token) return null;
  const onKey = (event: KeyboardEvent) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      picker.onSelect(index);
    }
  };
  const selected = picker.selected === index;
  return (
    <span
      className={`seg seg-generated token-button${selected ? ' token-selected' : ''}`}
      role="button"
      tabIndex={0}
      aria-pressed={selected}
      aria-label={t('column.tokenButton', { index: index + 1, text: token.text, title: picker.column })}
      data-token-index={index}
      data-testid="generated-token"
      onClick={(event) => {
        // inside a RETRO chunk, the chunk's own click would open its neighbours instead
        event.stopPropagation();
        picker.onSelect(index);
      }}
      onKeyDown={onKey}
    >
      {token.text}
    </span>
  );
}

/** A run's text as segments; with a picker, generated segments become one button per token. */
export function Segments({ segments, picker }: { segments: Segment[]; picker?: TokenPicker | undefined }) {
  const { t } = useTranslation();
  return (
    <>
      {segments.map((s, i) =>
        s.kind === 'padding' ? (
          <span key={i} className="seg seg-padding" title={t('column.paddingTitle')}>
            {t('column.padding', { count: s.count })}
          </span>
        ) : s.kind === 'generated' && picker && s.from !== undefined ? (
          Array.from({ length: s.count }, (_, j) => <TokenButton key={`${i}:${j}`} picker={picker} index={s.from! + j} />)
        ) : (
          <span key={i} className={`seg seg-${s.kind}`} title={s.kind === 'prefix' ? t('column.prefixTitle') : undefined}>
            {s.text}
          </span>
        ),
      )}
    </>
  );
}
