import { useEffect, useId, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { detokenizeWikiText, useClient, type KnnExplanationView, type TokenView } from '../../client';
import { displayToken, formatProbability } from './format';

type Distribution = 'lm' | 'knn' | 'mix';

function Bars({ kind, explanation }: { kind: Distribution; explanation: KnnExplanationView }) {
  const { t } = useTranslation();
  const rows = explanation[kind];
  const chosen = explanation.next?.tokenId;
  const headingId = useId();
  return (
    <section className={`dist dist-${kind}`} aria-labelledby={headingId} data-testid={`dist-${kind}`}>
      <h3 id={headingId}>{t(`knn.${kind}`)}</h3>
      {rows.length === 0 ? (
        <p className="placeholder">{t('knn.noneRetrieved')}</p>
      ) : (
        <ol className="dist-bars">
          {rows.map((row) => {
            const isChosen = row.tokenId === chosen;
            return (
              <li
                key={row.tokenId}
                className={`dist-row${isChosen ? ' dist-chosen' : ''}`}
                data-testid="dist-row"
                data-probability={row.probability}
                data-chosen={isChosen ? 'true' : undefined}
              >
                <span className="dist-token" lang="en" title={t('token.id', { id: row.tokenId })}>
                  {displayToken(explanation.tokenTexts[row.tokenId] ?? '')}
                </span>
                <span className="dist-bar" aria-hidden="true">
                  <span style={{ width: `${Math.max(0.5, row.probability * 100)}%` }} />
                </span>
                <span className="dist-value">{formatProbability(row.probability)}</span>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}

/**
 * Why the kNN-LM column wrote one token: the top tokens under p_LM, p_kNN and their mixture, and
 * the datastore contexts that voted. λ and T re-mix the stored neighbours without running the model.
 */
export function TokenDistribution({
  position,
  token,
  onClose,
}: {
  /** sequence position of the token before the clicked one (the distribution it was drawn from) */
  position: number;
  token: TokenView;
  onClose: () => void;
}) {
  const client = useClient();
  const { t } = useTranslation();
  const ids = useId();
  const panelRef = useRef<HTMLElement>(null);
  const [explanation, setExplanation] = useState<KnnExplanationView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [mixing, setMixing] = useState<{ lambda: number; temperature: number } | null>(null);

  // The run's own λ and T first; the sliders then re-mix.
  useEffect(() => {
    let cancelled = false;
    client
      .explainKnn(position, token.id, mixing ?? undefined)
      .then((e) => {
        if (cancelled) return;
        setExplanation(e);
        setError(null);
      })
      .catch((e: unknown) => !cancelled && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      cancelled = true;
    };
  }, [client, position, token.id, mixing]);

  useEffect(() => {
    panelRef.current?.focus();
  }, [position]);

  const settings = explanation?.settings;
  const lambda = mixing?.lambda ?? settings?.lambda ?? 0;
  const temperature = mixing?.temperature ?? settings?.temperature ?? 1;
  const next = explanation?.next;

  return (
    <section
      ref={panelRef}
      className="token-distribution panel"
      aria-labelledby={`${ids}-heading`}
      data-testid="token-distribution"
      tabIndex={-1}
    >
      <header className="panel-header">
        <h2 id={`${ids}-heading`}>
          {t('token.heading', { column: 'kNN-LM' })}{' '}
          <q className="dist-token" lang="en">
            {displayToken(token.text)}
          </q>{' '}
          <span className="muted">{t('knn.after', { position })}</span>
        </h2>
        <button type="button" className="icon-button" aria-label={t('knn.close')} onClick={onClose}>
          ×
        </button>
      </header>
      {error && (
        <p className="error" role="alert" data-testid="distribution-error">
          {error}
        </p>
      )}
      {explanation && (
        <>
          <div className="controls-row dist-sliders">
            <label className="slider">
              <span>
                λ = <output data-testid="mix-lambda">{lambda.toFixed(2)}</output>
              </span>
              <input
                type="range"
                min={0}
                max={1}
                step={0.01}
                value={lambda}
                aria-label={t('knn.lambdaSlider')}
                onChange={(e) => setMixing({ lambda: e.target.valueAsNumber, temperature })}
              />
            </label>
            <label className="slider">
              <span>
                T = <output data-testid="mix-temperature">{temperature.toFixed(1)}</output>
              </span>
              <input
                type="range"
                min={-1}
                max={3}
                step={0.05}
                value={Math.log10(temperature)}
                aria-label={t('knn.temperatureSlider')}
                aria-valuetext={temperature.toFixed(1)}
                onChange={(e) => setMixing({ lambda, temperature: Number((10 ** e.target.valueAsNumber).toPrecision(3)) })}
              />
            </label>
            <span className="hint">{t('knn.remix', { k: explanation.settings.k })}</span>
          </div>
          <p
            className="hint"
            data-testid="knn-retrieval"
            data-skipped={explanation.retrieval.skipped ? 'true' : 'false'}
            data-searched={explanation.retrieval.searched ? 'true' : 'false'}
            data-lambda={explanation.retrieval.lambda}
          >
            {explanation.retrieval.skipped
              ? t('knn.skippedNote', { top: formatProbability(explanation.retrieval.lmTop) })
              : t('knn.lambdaUsed', { lambda: explanation.retrieval.lambda.toFixed(2) }) +
                (explanation.settings.lambdaTable && explanation.retrieval.nearest !== undefined ? t('knn.lambdaByDistance', { distance: explanation.retrieval.nearest.toFixed(1) }) : '') +
                t('knn.lmTop', { top: formatProbability(explanation.retrieval.lmTop) })}
          </p>
          {next && (
            <p className="dist-chosen-line" data-testid="chosen-probabilities" data-lm={next.lm} data-knn={next.knn} data-mix={next.mix} data-lambda={explanation.settings.lambda}>
              <mark className="dist-chosen-token" lang="en">
                {displayToken(explanation.tokenTexts[next.tokenId] ?? token.text)}
              </mark>
              {t('knn.chosen', { lm: formatProbability(next.lm), knn: formatProbability(next.knn), mix: formatProbability(next.mix) })}
            </p>
          )}
          <div className="dist-grid">
            <Bars kind="lm" explanation={explanation} />
            <Bars kind="knn" explanation={explanation} />
            <Bars kind="mix" explanation={explanation} />
          </div>
          <h3>{t('knn.contexts')}</h3>
          {explanation.neighbours.length === 0 ? (
            <p className="placeholder">{t('knn.noNeighbours')}</p>
          ) : (
            <ol className="knn-contexts">
              {explanation.neighbours.map((n) => (
                <li key={n.entry} className="knn-context" data-testid="knn-context" data-distance={n.distance} data-weight={n.weight}>
                  <div className="neighbour-head">
                    <span className="neighbour-title" data-testid="knn-context-title">
                      {detokenizeWikiText(n.title) || (n.docId >= 0 ? t('neighbours.document', { id: n.docId }) : t('knn.entry'))}
                    </span>
                    <span className="distance" title={t('knn.distanceTitle')}>
                      {t('neighbours.distance', { value: n.distance.toFixed(2) })}
                    </span>
                    <span className="weight" title={t('knn.weightTitle')}>
                      {t('knn.weight', { value: formatProbability(n.weight) })}
                    </span>
                  </div>
                  <p className="neighbour-text" lang="en">
                    <span className="muted">…</span>
                    {detokenizeWikiText(n.textBefore)}
                    <mark className="knn-value" title={t('knn.valueTitle')}>
                      {n.tokenText}
                    </mark>
                    <span className="muted">{detokenizeWikiText(n.textAfter)}…</span>
                  </p>
                </li>
              ))}
            </ol>
          )}
        </>
      )}
      {!explanation && !error && <p className="muted">{t('knn.reading')}</p>}
    </section>
  );
}
