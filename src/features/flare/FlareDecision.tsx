import { useTranslation } from 'react-i18next';
import type { ChunkReport } from '../../client';

/**
 * What FLARE saw before retrieving: the look-ahead the GPT wrote without a passage, each token with
 * its probability; the tokens below θ (they triggered the retrieval) and those below β (left out of
 * the query) marked. The neighbour panel around it shows the query the retriever got and the passage.
 */
export function FlareDecision({ report }: { report: ChunkReport }) {
  const { t } = useTranslation();
  const flare = report.flare;
  if (!flare) return null;
  const triggers = new Set(flare.triggers);
  return (
    <div className="flare-decision" data-testid="flare-decision">
      <p className="hint">{t('flare.lookaheadIntro', { end: report.end, threshold: flare.threshold })}</p>
      <p className="flare-lookahead" lang="en">
        {flare.lookahead.map((token, i) => {
          const masked = token.probability < flare.maskBelow;
          return (
            <span
              key={i}
              className={`flare-token${triggers.has(i) ? ' flare-token-trigger' : ''}${masked ? ' flare-token-masked' : ''}`}
              data-testid="flare-lookahead-token"
              data-trigger={triggers.has(i) ? 'true' : 'false'}
              data-probability={token.probability}
              title={t('flare.tokenTitle', { p: token.probability.toFixed(3) })}
            >
              {token.text}
              <sub>{token.probability.toFixed(2)}</sub>
            </span>
          );
        })}
      </p>
      <p className="hint">
        {flare.triggers.length > 0 ? t('flare.triggered', { count: flare.triggers.length, threshold: flare.threshold, mask: flare.maskBelow }) : t('flare.confident', { threshold: flare.threshold })}
      </p>
    </div>
  );
}
