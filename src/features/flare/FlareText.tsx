import type { KeyboardEvent } from 'react';
import { useTranslation } from 'react-i18next';
import type { RunState } from '../../client';
import { passageItems } from '../icralm/blocks';
import { Segments, type TokenPicker } from '../compare/Segments';

/**
 * The FLARE column's output: the text with a ⚑ mark wherever a look-ahead token fell below θ and
 * FLARE retrieved (the block after it was written again with the passage). Confident look-aheads
 * leave no mark: nothing was retrieved there. A mark opens the decision (click, Enter or Space).
 */
export function FlareText({ run, selected, onSelect, picker }: { run: RunState; selected: number | null; onSelect: (decision: number) => void; picker?: TokenPicker | undefined }) {
  const { t } = useTranslation();
  const onKey = (event: KeyboardEvent, decision: number) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      onSelect(decision);
    }
  };
  const retrieved = { ...run, chunks: run.chunks.filter((c) => c.flare?.retrieved) };
  return (
    <>
      {passageItems(retrieved).map((item, i) => {
        if (item.kind === 'text') return <Segments key={i} segments={item.segments} picker={picker} />;
        const { report } = item;
        const trigger = report.flare?.lookahead[report.flare.triggers[0] ?? -1];
        const isSelected = selected === report.chunk;
        return (
          <span
            key={`mark-${report.chunk}`}
            className={`chunk-mark passage-mark flare-mark chunk-retrieved${isSelected ? ' chunk-selected' : ''}`}
            role="button"
            tabIndex={0}
            aria-pressed={isSelected}
            aria-label={t('flare.markLabel', { end: report.end, token: trigger?.text.trim() ?? '', p: trigger ? trigger.probability.toFixed(3) : '' })}
            title={t('flare.markTitle', { token: trigger?.text.trim() ?? '', p: trigger ? trigger.probability.toFixed(3) : '' })}
            data-testid="flare-trigger"
            data-decision={report.chunk}
            onClick={() => onSelect(report.chunk)}
            onKeyDown={(e) => onKey(e, report.chunk)}
          >
            ⚑
          </span>
        );
      })}
    </>
  );
}
