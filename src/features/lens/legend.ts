import type { TFunction } from 'i18next';
import type { LegendWords } from './colour';

/** The legends' tick labels in the UI language (colour.ts has the English ones built in). */
export function legendWords(t: TFunction): LegendWords {
  return {
    loss: ({ value, p, last }) => t(last ? 'lens.legendLossLast' : 'lens.legendLoss', { value, p }),
    same: t('lens.legendSame'),
    better: ({ name, ratio, more }) => t(more ? 'lens.legendBetterMore' : 'lens.legendBetter', { name, ratio }),
  };
}
