import { useEffect, useId, useRef } from 'react';
import { useTranslation } from 'react-i18next';
import type { ChunkReport, RunState } from '../../client';
import { displayToken, formatProbability } from '../knnlm/format';
import { NeighbourText } from '../neighbours/NeighbourPanel';

/**
 * The retrieval a generated token was predicted with: the latest one whose `end` is at or before
 * the token's position (RETRO's causal shift: a chunk's neighbours reach the predictions from its
 * last token on, which write the tokens after it; In-Context RALM's passage likewise).
 */
export function retrievalBehind(run: Pick<RunState, 'prefix' | 'prompt' | 'chunks'>, generatedIndex: number): ChunkReport | undefined {
  const position = run.prefix.length + run.prompt.length + generatedIndex;
  let found: ChunkReport | undefined;
  for (const report of run.chunks) if (report.end <= position && (!found || report.end > found.end)) found = report;
  return found;
}

/**
 * Why a column wrote one token: the probability its model gave it, the model's five most likely
 * tokens at that step, and for the retrieval columns what the model read when it predicted it.
 */
export function TokenPanel({
  run,
  index,
  column,
  retrieval,
  onClose,
}: {
  run: RunState;
  /** index among the run's generated tokens */
  index: number;
  column: string;
  /** RETRO: the neighbours the token's chunk read; In-Context RALM: the passage before the context */
  /** RETRO: the neighbours the token's chunk read; In-Context RALM: the passage before the context; REPLUG: each passage's share */
  retrieval: 'neighbours' | 'passage' | 'passages' | null;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const ids = useId();
  const panelRef = useRef<HTMLElement>(null);
  const token = run.generated[index]!;
  const alternatives = token.alternatives ?? [];
  const top = alternatives[0];
  const report = retrieval ? retrievalBehind(run, index) : undefined;

  useEffect(() => {
    panelRef.current?.focus();
  }, [index]);

  return (
    <section ref={panelRef} className="token-panel panel" aria-labelledby={`${ids}-heading`} data-testid="token-panel" tabIndex={-1}>
      <header className="panel-header">
        <h2 id={`${ids}-heading`}>
          {t('token.heading', { column })} <q className="dist-token" lang="en">{displayToken(token.text)}</q>{' '}
          <span className="muted">{t('token.position', { n: index + 1 })}</span>
        </h2>
        <button type="button" className="icon-button" aria-label={t('token.close')} onClick={onClose}>
          ×
        </button>
      </header>
      {token.probability !== undefined && (
        <p data-testid="token-probability" data-probability={token.probability}>
          {t('token.probability', { column, p: formatProbability(token.probability) })}
        </p>
      )}
      {alternatives.length > 0 && (
        <section className="dist" aria-labelledby={`${ids}-alternatives`}>
          <h3 id={`${ids}-alternatives`}>{t('token.alternatives')}</h3>
          <ol className="dist-bars">
            {alternatives.map((a) => {
              const chosen = a.id === token.id;
              return (
                <li key={a.id} className={`dist-row${chosen ? ' dist-chosen' : ''}`} data-testid="alternative" data-probability={a.probability} data-chosen={chosen ? 'true' : undefined}>
                  <span className="dist-token" lang="en" title={t('token.id', { id: a.id })}>
                    {displayToken(a.text)}
                  </span>
                  <span className="dist-bar" aria-hidden="true">
                    <span style={{ width: `${Math.max(0.5, a.probability * 100)}%` }} />
                  </span>
                  <span className="dist-value">{formatProbability(a.probability)}</span>
                </li>
              );
            })}
          </ol>
          {top && top.id !== token.id && (
            <p className="hint" data-testid="not-top-choice">
              {t('token.notTop')}
            </p>
          )}
        </section>
      )}
      {retrieval && (
        <section aria-labelledby={`${ids}-read`} data-testid="token-retrieval">
          <h3 id={`${ids}-read`}>{retrieval === 'neighbours' ? t('token.readNeighbours') : retrieval === 'passages' ? t('replug.tokenHeading') : t('token.readPassage')}</h3>
          {!report ? (
            <p className="placeholder">{t('token.readNothing')}</p>
          ) : (
            <>
              <p className="hint">
                {retrieval === 'neighbours'
                  ? t('token.neighboursOf', { chunk: report.chunk, start: report.start, end: report.end - 1 })
                  : retrieval === 'passages'
                    ? t('replug.tokenExplain', { n: report.chunk + 1 })
                    : t('token.passageOf', { n: report.chunk + 1 })}{' '}
                {t('token.highlight')}
              </p>
              {retrieval === 'passages' && token.passages && token.passages.length > 0 && (
                <table className="replug-shares" data-testid="replug-shares">
                  <thead>
                    <tr>
                      <th scope="col">{t('replug.passage')}</th>
                      <th scope="col">{t('replug.weight')}</th>
                      <th scope="col">{t('replug.probability')}</th>
                      <th scope="col">{t('replug.contribution')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {token.passages.map((share, j) => (
                      <tr key={j} data-testid="replug-share" data-weight={share.weight} data-probability={share.probability}>
                        <th scope="row" lang="en">{report.neighbours[j]?.title || `#${j + 1}`}</th>
                        <td>{formatProbability(share.weight)}</td>
                        <td>{formatProbability(share.probability)}</td>
                        <td>{formatProbability(share.weight * share.probability)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              {report.neighbours.length === 0 ? (
                <p className="placeholder">{t('neighbours.none')}</p>
              ) : (
                <ol className="neighbour-list">
                  {report.neighbours.map((n, i) => (
                    <li key={`${n.docId}:${n.chunkIndex}:${i}`} className="neighbour" data-testid="token-neighbour">
                      <div className="neighbour-head">
                        <span className="neighbour-title">{n.title}</span>
                      </div>
                      <NeighbourText neighbour={n} markIds={new Set([token.id])} />
                    </li>
                  ))}
                </ol>
              )}
            </>
          )}
        </section>
      )}
    </section>
  );
}
