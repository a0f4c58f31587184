import type { KeyboardEvent } from 'react';
import { useTranslation } from 'react-i18next';
import type { RunState } from '../../client';
import { passageItems } from './blocks';
import { Segments, type TokenPicker } from '../compare/Segments';

/**
 * The In-Context RALM column's output: the text with a mark wherever a passage was placed before
 * the context; a mark opens that passage (click, Enter or Space).
 */
export function IcRalmText({ run, selected, onSelect, picker }: { run: RunState; selected: number | null; onSelect: (block: number) => void; picker?: TokenPicker | undefined }) {
  const { t } = useTranslation();
  const onKey = (event: KeyboardEvent, block: number) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      onSelect(block);
    }
  };
  return (
    <>
      {passageItems(run).map((item, i) => {
        if (item.kind === 'text') return <Segments key={i} segments={item.segments} picker={picker} />;
        const { report } = item;
        const passage = report.neighbours[0];
        const isSelected = selected === report.chunk;
        return (
          <span
            key={`mark-${report.chunk}`}
            className={`chunk-mark passage-mark chunk-retrieved${isSelected ? ' chunk-selected' : ''}`}
            role="button"
            tabIndex={0}
            aria-pressed={isSelected}
            aria-label={
              passage
                ? t('icralm.markLabel', { n: report.chunk + 1, end: report.end, title: passage.title })
                : t('icralm.markLabelNone', { n: report.chunk + 1, end: report.end })
            }
            title={passage ? t('icralm.markTitle', { title: passage.title }) : t('icralm.markTitleNone')}
            data-testid="icralm-passage"
            data-block={report.chunk}
            onClick={() => onSelect(report.chunk)}
            onKeyDown={(e) => onKey(e, report.chunk)}
          >
            ¶{report.chunk + 1}
          </span>
        );
      })}
    </>
  );
}
