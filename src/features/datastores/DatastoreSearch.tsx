import { useId, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { detokenizeWikiText, useAppState, useClient, type NeighbourView, type RetrieverKind } from '../../client';
import { ProgressBar } from '../../ui/ProgressBar';
import { RetrieverSelect } from '../../ui/RetrieverSelect';
import { NumberField } from '../../ui/NumberField';

const MAX_RESULTS = 20;

type SearchState =
  | { status: 'idle' }
  | { status: 'searching' }
  | { status: 'done'; retriever: RetrieverKind; neighbours: NeighbourView[]; latencyMs: number }
  | { status: 'error'; message: string };

/**
 * The active datastore's search box: a text, dense or BM25, k; each result's document, text and
 * score (BM25) or cosine distance (dense). BM25's index is built on the first search (a progress bar).
 */
export function DatastoreSearch({ activeName }: { activeName: string | null }) {
  const client = useClient();
  const { t } = useTranslation();
  const headingId = useId();
  const queryId = useId();
  const [query, setQuery] = useState('');
  const [retriever, setRetriever] = useState<RetrieverKind>('bm25');
  const [k, setK] = useState(5);
  const [state, setState] = useState<SearchState>({ status: 'idle' });
  const indexing = useAppState((s) => Object.values(s.progress).find((p) => p.kind === 'bm25-index' && !p.finished) ?? null);
  const searching = state.status === 'searching';

  const search = async (event: FormEvent) => {
    event.preventDefault();
    if (searching) return;
    if (query.trim() === '') {
      setState({ status: 'error', message: t('search.empty') });
      return;
    }
    setState({ status: 'searching' });
    try {
      const result = await client.retrieveText(query, k, [], retriever);
      setState({ status: 'done', retriever, neighbours: result.neighbours, latencyMs: result.latencyMs });
    } catch (error) {
      setState({ status: 'error', message: error instanceof Error ? error.message : String(error) });
    }
  };

  return (
    <section className="datastore-search" aria-labelledby={headingId} data-testid="datastore-search">
      <h3 id={headingId}>{t('search.heading')}</h3>
      <form onSubmit={(e) => void search(e)} role="search" aria-labelledby={headingId}>
        <div className="field">
          <label htmlFor={queryId}>{t('search.query')}</label>
          <input id={queryId} type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder={t('search.placeholder')} lang="en" />
        </div>
        <div className="controls-row">
          <RetrieverSelect label={t('search.retriever')} value={retriever} onChange={setRetriever} />
          <NumberField label={t('search.k')} value={k} min={1} max={MAX_RESULTS} onChange={(v) => setK(Math.round(v))} title={t('search.kTitle')} />
          <button type="submit" disabled={searching || activeName === null}>
            {t('search.submit')}
          </button>
        </div>
      </form>
      {activeName === null && <p className="hint">{t('search.noActive')}</p>}
      {searching && (
        <div role="status" data-testid="search-status">
          {indexing ? <ProgressBar progress={indexing} /> : <p className="muted">{t('search.searching')}</p>}
        </div>
      )}
      {state.status === 'error' && (
        <p className="error" role="alert" data-testid="search-error">
          {state.message}
        </p>
      )}
      {state.status === 'done' &&
        (state.neighbours.length === 0 ? (
          <p className="placeholder" role="status" data-testid="search-none">
            {t('search.none')}
          </p>
        ) : (
          <>
            <p className="muted" role="status" data-testid="search-summary">
              {t('search.summary', { n: state.neighbours.length, retriever: t(`retriever.${state.retriever}`), ms: state.latencyMs.toFixed(1) })}
            </p>
            <ol className="neighbour-list search-results" data-testid="search-results">
              {state.neighbours.map((n, i) => (
                <li key={`${n.docId}:${n.chunkIndex}:${i}`} className="neighbour" data-testid="search-result" data-retriever={n.retriever ?? 'dense'}>
                  <div className="neighbour-head">
                    <span className="neighbour-title" data-testid="search-result-title">
                      {detokenizeWikiText(n.title) || t('neighbours.document', { id: n.docId })}
                    </span>
                    {n.retriever === 'bm25' ? (
                      <span className="distance" title={t('retriever.scoreTitle')} data-testid="search-result-score" data-score={n.score}>
                        {t('retriever.score', { value: (n.score ?? 0).toFixed(2) })}
                      </span>
                    ) : (
                      <span className="distance" title={t('retriever.distanceTitle')} data-testid="search-result-score" data-distance={n.distance}>
                        {t('neighbours.distance', { value: n.distance.toFixed(3) })}
                      </span>
                    )}
                  </div>
                  <p className="neighbour-text" lang="en" data-testid="search-result-text">
                    <span className="neighbour-chunk">{n.text}</span>
                    {n.continuationText && (
                      <span className="continuation" title={t('neighbours.continuationTitle')}>
                        <span className="continuation-tag">{t('neighbours.continuation')}</span>
                        {n.continuationText}
                      </span>
                    )}
                  </p>
                </li>
              ))}
            </ol>
          </>
        ))}
    </section>
  );
}
