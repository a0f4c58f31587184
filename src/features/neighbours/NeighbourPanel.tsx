import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { detokenizeWikiText, type ChunkReport, type NeighbourView, type TokenView } from '../../client';
import { detokenizeTokens, sharedTokenMask } from '../compare/chunks';

/** A neighbour's chunk and continuation; marks the tokens shared with `written`, or exactly the tokens in `markIds`. */
export function NeighbourText({ neighbour, written = [], markIds }: { neighbour: NeighbourView; written?: TokenView[]; markIds?: ReadonlySet<number> }) {
  const { t } = useTranslation();
  const mask = markIds ? neighbour.tokens.map((token) => markIds.has(token.id)) : sharedTokenMask(neighbour.tokens, written);
  const display = detokenizeTokens(neighbour.tokens);
  const parts = (from: number, to: number) =>
    display.slice(from, to).map((t, i) =>
      mask[from + i] ? (
        <mark key={from + i} className="shared">
          {t.text}
        </mark>
      ) : (
        <span key={from + i}>{t.text}</span>
      ),
    );
  return (
    <p className="neighbour-text" lang="en">
      <span className="neighbour-chunk">{parts(0, neighbour.chunkLength)}</span>
      {neighbour.tokens.length > neighbour.chunkLength && (
        <span className="continuation" title={t('neighbours.continuationTitle')}>
          <span className="continuation-tag">{t('neighbours.continuation')}</span>
          {parts(neighbour.chunkLength, neighbour.tokens.length)}
        </span>
      )}
    </p>
  );
}

/** What the panel says when it shows another model's retrieval (In-Context RALM's passages); RETRO's wording by default. */
export interface NeighbourPanelLabels {
  heading: ReactNode;
  queryLabel: string;
  /** the model that read the neighbours, in the highlight hint */
  modelName: string;
  /** element id and test id prefix */
  id: string;
}

export function NeighbourPanel({
  report,
  queryText,
  written,
  writtenIsGenerated,
  onClose,
  onExclude,
  excluded,
  labels,
  children,
}: {
  report: ChunkReport;
  queryText: string;
  written: TokenView[];
  writtenIsGenerated: boolean;
  onClose: () => void;
  onExclude: (neighbour: NeighbourView) => void;
  excluded: (docId: number) => boolean;
  labels?: NeighbourPanelLabels;
  /** What the model saw before it retrieved (FLARE's look-ahead), shown above the query */
  children?: ReactNode;
}) {
  const { t } = useTranslation();
  const headingId = `${labels?.id ?? 'neighbours'}-${report.chunk}`;
  const modelName = labels?.modelName ?? 'RETRO';
  const preview = detokenizeWikiText(written.map((t) => t.text).join('')).trim().slice(0, 80);
  return (
    <section className="neighbours panel" aria-labelledby={headingId} data-testid={labels ? `${labels.id}-panel` : 'neighbour-panel'}>
      <header className="panel-header">
        <h2 id={headingId}>
          {labels?.heading ?? (
            <>
              {t('neighbours.heading', { chunk: report.chunk })} <span className="muted">{t('neighbours.tokens', { start: report.start, end: report.end - 1 })}</span>
            </>
          )}
        </h2>
        <span className="muted" data-testid="neighbour-latency">
          {t('neighbours.latency', { ms: report.latencyMs.toFixed(1) })}
        </span>
        <button type="button" className="icon-button" aria-label={t('neighbours.close')} onClick={onClose}>
          ×
        </button>
      </header>
      {children}
      {labels && report.neighbours[0] && (
        <p className="hint" data-testid="passage-retriever" data-retriever={report.neighbours[0].retriever ?? 'dense'}>
          {t('retriever.foundBy', { retriever: t(`retriever.${report.neighbours[0].retriever ?? 'dense'}`) })}
        </p>
      )}
      <p className="query">
        <span className="field-label">{labels?.queryLabel ?? t('neighbours.query')}</span> <span lang="en">{detokenizeWikiText(queryText)}</span>
      </p>
      <p className="hint">
        {preview ? (
          <>
            <mark className="shared">{t('neighbours.highlighted')}</mark>{' '}
            {t(writtenIsGenerated ? 'neighbours.highlightWrote' : 'neighbours.highlightRead', { model: modelName })} <q lang="en">{preview}…</q>
          </>
        ) : (
          t('neighbours.nothingYet', { model: modelName })
        )}
      </p>
      {report.neighbours.length === 0 ? (
        <p className="placeholder">{t('neighbours.none')}</p>
      ) : (
        <ol className="neighbour-list">
          {report.neighbours.map((n, i) => (
            <li key={`${n.docId}:${n.chunkIndex}:${i}`} className="neighbour" data-testid="neighbour">
              <div className="neighbour-head">
                <span className="neighbour-title" data-testid="neighbour-title">
                  {detokenizeWikiText(n.title) || t('neighbours.document', { id: n.docId })}
                </span>
                {n.retriever === 'bm25' ? (
                  <span className="distance" title={t('retriever.scoreTitle')} data-testid="neighbour-score" data-score={n.score}>
                    {t('retriever.score', { value: (n.score ?? 0).toFixed(2) })}
                  </span>
                ) : (
                  <span className="distance" title={t('neighbours.distanceTitle')}>
                    {Number.isFinite(n.distance) ? t('neighbours.distance', { value: n.distance.toFixed(3) }) : t('neighbours.randomDistance')}
                  </span>
                )}
                {report.weights?.[i] !== undefined && (
                  <span className="weight" title={t('neighbours.weightTitle')} data-testid="neighbour-weight" data-weight={report.weights[i]}>
                    {t('neighbours.weight', { value: report.weights[i]!.toFixed(3) })}
                  </span>
                )}
                <button
                  type="button"
                  className="link-button"
                  disabled={excluded(n.docId)}
                  onClick={() => onExclude(n)}
                >
                  {excluded(n.docId) ? t('neighbours.excluded') : t('neighbours.exclude')}
                </button>
              </div>
              <NeighbourText neighbour={n} written={written} />
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
