import type { ReactNode } from 'react';
import { detokenizeWikiText, type ChunkReport, type NeighbourView, type TokenView } from '../../client';
import { detokenizeTokens, sharedTokenMask } from '../compare/chunks';

function NeighbourText({ neighbour, written }: { neighbour: NeighbourView; written: TokenView[] }) {
  const mask = sharedTokenMask(neighbour.tokens, written);
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
    <p className="neighbour-text">
      <span className="neighbour-chunk">{parts(0, neighbour.chunkLength)}</span>
      {neighbour.tokens.length > neighbour.chunkLength && (
        <span className="continuation" title="Continuation: the text that followed the retrieved chunk in its document">
          <span className="continuation-tag">continuation</span>
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
}: {
  report: ChunkReport;
  queryText: string;
  written: TokenView[];
  writtenIsGenerated: boolean;
  onClose: () => void;
  onExclude: (neighbour: NeighbourView) => void;
  excluded: (docId: number) => boolean;
  labels?: NeighbourPanelLabels;
}) {
  const headingId = `${labels?.id ?? 'neighbours'}-${report.chunk}`;
  const modelName = labels?.modelName ?? 'RETRO';
  const preview = detokenizeWikiText(written.map((t) => t.text).join('')).trim().slice(0, 80);
  return (
    <section className="neighbours panel" aria-labelledby={headingId} data-testid={labels ? `${labels.id}-panel` : 'neighbour-panel'}>
      <header className="panel-header">
        <h2 id={headingId}>
          {labels?.heading ?? (
            <>
              Neighbours of chunk {report.chunk} <span className="muted">(tokens {report.start}–{report.end - 1})</span>
            </>
          )}
        </h2>
        <span className="muted" data-testid="neighbour-latency">
          retrieved in {report.latencyMs.toFixed(1)} ms
        </span>
        <button type="button" className="icon-button" aria-label="Close neighbours" onClick={onClose}>
          ×
        </button>
      </header>
      <p className="query">
        <span className="field-label">{labels?.queryLabel ?? 'Query chunk'}</span> {detokenizeWikiText(queryText)}
      </p>
      <p className="hint">
        {preview ? (
          <>
            <mark className="shared">Highlighted</mark> tokens also appear in what {modelName} {writtenIsGenerated ? 'wrote' : 'read'} next (“{preview}…”).
          </>
        ) : (
          `${modelName} wrote no words after this ${labels ? 'retrieval' : 'chunk'} yet, so nothing is highlighted.`
        )}
      </p>
      {report.neighbours.length === 0 ? (
        <p className="placeholder">No neighbours: retrieval was off or every candidate was excluded.</p>
      ) : (
        <ol className="neighbour-list">
          {report.neighbours.map((n, i) => (
            <li key={`${n.docId}:${n.chunkIndex}:${i}`} className="neighbour" data-testid="neighbour">
              <div className="neighbour-head">
                <span className="neighbour-title" data-testid="neighbour-title">
                  {detokenizeWikiText(n.title) || `document ${n.docId}`}
                </span>
                <span className="distance" title="Distance between the query and this neighbour, smaller is nearer (RETRO: squared L2 between the GPT's keys; In-Context RALM: cosine between chunk embeddings)">
                  distance {n.distance.toFixed(3)}
                </span>
                <button
                  type="button"
                  className="link-button"
                  disabled={excluded(n.docId)}
                  onClick={() => onExclude(n)}
                >
                  {excluded(n.docId) ? 'excluded' : 'Exclude this document'}
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
