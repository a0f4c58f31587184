import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { MAX_RAG_SEQUENCE_K, useAppState, useClient, type RagSequenceDecodeEvent, type RagSequenceDecodeResult } from '../../client';
import { useDuration } from '../../i18n/format';
import { NumberField } from '../../ui/NumberField';
import './ragseq.css';

/** Candidates stay short: the GPT's 256-token context also holds the passage and the prompt. */
const MAX_CANDIDATE_TOKENS = 32;

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * RAG-Sequence generation by thorough decoding (src/core/ragseq/decode.ts) for the compare view's
 * prompt: one greedy candidate per passage, each scored under every passage, the best marginal
 * chosen. Its own k and τ (starting from REPLUG's); Stop and Esc stop it as they stop a generation.
 */
export function ThoroughDecoding({ prompt, initial, hasDatastore }: { prompt: string; initial: { k: number; temperature: number }; hasDatastore: boolean }) {
  const client = useClient();
  const { t } = useTranslation();
  const duration = useDuration();
  const generating = useAppState((s) => s.generating);
  const [k, setK] = useState(initial.k);
  const [temperature, setTemperature] = useState(initial.temperature);
  const [maxTokens, setMaxTokens] = useState(12);
  const [running, setRunning] = useState(false);
  const [progress, setProgress] = useState<RagSequenceDecodeEvent | null>(null);
  const [result, setResult] = useState<RagSequenceDecodeResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [stopped, setStopped] = useState(false);

  const run = async (event: FormEvent) => {
    event.preventDefault();
    if (running || generating || !hasDatastore || prompt.trim() === '') return;
    setRunning(true);
    setError(null);
    setStopped(false);
    setProgress(null);
    try {
      setResult(await client.ragSequenceDecode({ prompt, settings: { k, temperature, queryLength: 32 }, maxTokens }, setProgress));
    } catch (e) {
      if (e instanceof Error && e.name === 'AbortError') setStopped(true);
      else setError(e instanceof Error ? e.message : String(e));
    } finally {
      setRunning(false);
      setProgress(null);
    }
  };

  const order = result ? result.candidates.map((_, i) => i).sort((a, b) => result.candidates[b]!.logMarginal - result.candidates[a]!.logMarginal) : [];
  const progressText = !progress
    ? t('ragseq.retrieving')
    : progress.phase === 'retrieve'
      ? t('ragseq.retrieving')
      : t(progress.phase === 'decode' ? 'ragseq.decoding' : 'ragseq.scoring', { done: progress.done, total: progress.total });

  return (
    <details className="panel ragseq-thorough" data-testid="ragseq-thorough">
      <summary>{t('ragseq.thoroughTitle')}</summary>
      <p className="hint">{t('ragseq.thoroughIntro')}</p>
      <form onSubmit={(e) => void run(e)}>
        <fieldset className="controls-row" disabled={running}>
          <NumberField label={t('ragseq.k')} value={k} min={1} max={MAX_RAG_SEQUENCE_K} title={t('ragseq.kTitle')} onChange={(v) => setK(Math.round(v))} />
          <NumberField label={t('ragseq.temperature')} value={temperature} min={0.01} max={10} step={0.01} title={t('ragseq.temperatureTitle')} onChange={setTemperature} />
          <NumberField label={t('ragseq.maxTokens')} value={maxTokens} min={1} max={MAX_CANDIDATE_TOKENS} onChange={(v) => setMaxTokens(Math.round(v))} />
        </fieldset>
        <div className="prompt-actions">
          <button type="submit" className="primary" disabled={running || generating || !hasDatastore || prompt.trim() === ''} data-testid="ragseq-decode">
            {t('ragseq.decode')}
          </button>
          <button type="button" onClick={() => client.stop()} disabled={!running} data-testid="ragseq-stop">
            {t('compare.stop')}
          </button>
          {!hasDatastore && (
            <span className="error" role="alert">
              {t('ragseq.noDatastore')}
            </span>
          )}
        </div>
      </form>
      {running && (
        <div className="progress" data-testid="ragseq-progress">
          <div className="progress-label">
            <span>{progressText}</span>
          </div>
          <progress max={1} value={progress && progress.total > 0 ? progress.done / progress.total : undefined} aria-label={t('ragseq.progressLabel')} />
        </div>
      )}
      {error && (
        <p className="error" role="alert" data-testid="ragseq-error">
          {error}
        </p>
      )}
      {stopped && <p className="muted">{t('ragseq.stopped')}</p>}
      {result && !running && (
        <div data-testid="ragseq-result">
          <p className="muted">{t('ragseq.summary', { count: result.candidates.length, k: result.prior.length, time: duration(result.seconds) })}</p>
          <h3 className="ragseq-subheading">{t('ragseq.passages')}</h3>
          <ol className="ragseq-passages">
            {result.passages.map((p, z) => (
              <li key={z} data-testid="ragseq-passage">
                <strong>
                  z{z + 1} “{p.title}”
                </strong>{' '}
                <span className="muted">
                  {t('ragseq.prior')} {percent(result.prior[z]!)}
                </span>
                <div className="ragseq-passage-text" lang="en">
                  {p.text}
                </div>
              </li>
            ))}
          </ol>
          <div className="ragseq-scroll">
            <table className="ragseq-table" data-testid="ragseq-candidates">
              <caption>{t('ragseq.candidates')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('ragseq.candidate')}</th>
                  <th scope="col">{t('ragseq.writtenBy')}</th>
                  <th scope="col">{t('ragseq.marginal')}</th>
                  {result.prior.map((_, z) => (
                    <th scope="col" key={z}>
                      {t('ragseq.underPassage', { n: z + 1 })}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {order.map((i) => {
                  const c = result.candidates[i]!;
                  const chosen = i === result.chosen;
                  return (
                    <tr key={i} className={chosen ? 'ragseq-chosen' : undefined} data-testid="ragseq-candidate" data-chosen={chosen} data-marginal={c.logMarginal}>
                      <th scope="row" lang="en">
                        {c.text}
                        {chosen && <span className="ragseq-badge"> {t('ragseq.chosen')}</span>}
                      </th>
                      <td>{c.fromPassages.map((z) => `z${z + 1}`).join(', ')}</td>
                      <td>{c.logMarginal.toFixed(2)}</td>
                      {c.perPassage.map((lp, z) => (
                        <td key={z}>{lp.toFixed(2)}</td>
                      ))}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </details>
  );
}
