import { useEffect, useId, useMemo, useState, type ChangeEvent, type FormEvent } from 'react';
import type { TFunction } from 'i18next';
import { Trans, useTranslation } from 'react-i18next';
import { DEFAULT_ICRALM_SETTINGS, DEFAULT_KNN_SETTINGS, DEFAULT_RAG_SEQUENCE_SETTINGS, MAX_RAG_SEQUENCE_K, MAX_RAG_SEQUENCE_SPAN, LENS_MAX_CHARS, LENS_MAX_TOKENS, splitWikiTextArticles, useAppState, useClient, type ModelKey, type ModelScore } from '../../client';
import { useDuration } from '../../i18n/format';
import { differenceLegend, lossLegend, type LegendEntry } from './colour';
import { legendWords } from './legend';
import { compareLosses, pages } from './summary';
import { MODEL_LABELS } from './labels';
import { TokenMap, type ColourMode } from './TokenMap';
import { PassagePosterior } from './PassagePosterior';
import { NumberField } from '../../ui/NumberField';
import './lens.css';
import { useEscape } from '../../ui/useEscape';
import { useLoadOnce } from '../../ui/useLoadOnce';

type Source = 'wikitext' | 'text' | 'file';

/** Spans drawn at once; longer texts are paged so the view stays responsive. */
const PAGE_TOKENS = 5_000;
/** Chars per token of this tokenizer on WikiText (for the size hints before tokenizing). */
const CHARS_PER_TOKEN = 3.9;
const ALL_ARTICLES = -1;

const EXAMPLE_TEXT =
  'The Eiffel Tower is a wrought iron lattice tower on the Champ de Mars in Paris , France . It is named after the engineer Gustave Eiffel , whose company designed and built the tower from 1887 to 1889 .';


function approxTokens(chars: number, t: TFunction): string {
  const n = chars / CHARS_PER_TOKEN;
  return n >= 1000 ? t('lens.approxKTokens', { n: (n / 1000).toFixed(n >= 10_000 ? 0 : 1) }) : t('lens.approxTokens', { n: Math.max(1, Math.round(n)) });
}

function formatPpl(x: number): string {
  if (!Number.isFinite(x)) return '—';
  return x >= 100 ? x.toFixed(1) : x.toFixed(2);
}

function Legend({ entries, title }: { entries: LegendEntry[]; title: string }) {
  return (
    <figure className="lens-legend" data-testid="lens-legend" aria-label={title}>
      <figcaption>{title}</figcaption>
      <ol>
        {entries.map((e) => (
          <li key={e.value}>
            <span className="lens-legend-swatch" style={{ background: e.swatch.background }} aria-hidden="true" />
            {e.label}
          </li>
        ))}
      </ol>
    </figure>
  );
}

export function LensView({ active }: { active: boolean }) {
  const client = useClient();
  const { t } = useTranslation();
  const duration = useDuration();
  const ids = useId();
  const phase = useAppState((s) => s.phase);
  const models = useAppState((s) => s.models);
  const lens = useAppState((s) => s.lens);
  const generating = useAppState((s) => s.generating);
  const knnLoaded = useAppState((s) => s.knn.model !== null);
  const hasDatastore = useAppState((s) => !!s.retrieval?.activeId);

  const [source, setSource] = useState<Source>('wikitext');
  const [typed, setTyped] = useState(EXAMPLE_TEXT);
  const [file, setFile] = useState<{ name: string; text: string } | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);
  const [article, setArticle] = useState(0);
  const [chosen, setChosen] = useState<ModelKey[]>(['gpt', 'retro']);
  const [retrieval, setRetrieval] = useState(true);
  const [mode, setMode] = useState<ColourMode>({ kind: 'loss', model: 'gpt' });
  const [page, setPage] = useState(0);
  const [ragSequence, setRagSequence] = useState({ ...DEFAULT_RAG_SEQUENCE_SETTINGS });

  // The sample is fetched once, when the lens is first shown with it selected.
  const { value: sampleText, error: sampleError } = useLoadOnce(active && source === 'wikitext', () => client.loadLensSample());
  const sample = useMemo(() => (sampleText === null ? null : { text: sampleText, articles: splitWikiTextArticles(sampleText) }), [sampleText]);
  // Without the sample, the other sources remain.
  useEffect(() => {
    if (sampleError) setSource('text');
  }, [sampleError]);

  // Esc stops a running score while the lens is on screen.
  useEscape(() => client.stopScore(), active);

  const text = useMemo(() => {
    if (source === 'text') return typed;
    if (source === 'file') return file?.text ?? '';
    if (!sample) return '';
    return article === ALL_ARTICLES ? sample.text : (sample.articles[article]?.text ?? '');
  }, [source, typed, file, sample, article]);

  // GPT and RETRO always; kNN-LM once the compare view loaded it; In-Context RALM with a datastore.
  const rows: { key: ModelKey; name: string; note: string | null }[] = [
    ...models.map((m) => ({ key: m.key, name: t('lens.modelName', { label: MODEL_LABELS[m.key], name: m.name }), note: null })),
    { key: 'knnlm', name: MODEL_LABELS.knnlm, note: knnLoaded ? null : t('lens.knnNote') },
    { key: 'icralm', name: t('lens.icralmRow', { name: MODEL_LABELS.icralm }), note: hasDatastore ? null : t('lens.icralmNote') },
    { key: 'ragseq', name: t('ragseq.lensRow', { name: MODEL_LABELS.ragseq, k: ragSequence.k, span: ragSequence.span }), note: hasDatastore ? null : t('lens.icralmNote') },
  ];
  const available = models.length > 0 ? rows.filter((r) => r.note === null).map((r) => r.key) : [];
  const ready = phase === 'ready' && models.length > 0;
  const selected = available.filter((k) => chosen.includes(k));
  const tooLong = text.length > LENS_MAX_CHARS;
  const inputProblem =
    text.trim() === ''
      ? source === 'wikitext' && !sample
        ? t('lens.loadingSample')
        : t('lens.noText')
      : tooLong
        ? t('lens.tooLong', { chars: text.length.toLocaleString(), maxChars: LENS_MAX_CHARS.toLocaleString(), maxTokens: LENS_MAX_TOKENS.toLocaleString() })
        : selected.length === 0
          ? t('lens.chooseModel')
          : null;
  const canRun = ready && !lens.running && !generating && inputProblem === null;

  const run = (event?: FormEvent) => {
    event?.preventDefault();
    if (!canRun) return;
    setPage(0);
    const retro = models.find((m) => m.key === 'retro');
    // The lens scores kNN-LM and In-Context RALM with their tuned defaults (docs/knnlm.md), not the Compare view's controls.
    void client.score({ text, models: selected, retro: { retrieval, k: retro?.neighbours ?? 2 }, knn: DEFAULT_KNN_SETTINGS, icralm: DEFAULT_ICRALM_SETTINGS, ragSequence });
  };

  const onFile = async (event: ChangeEvent<HTMLInputElement>) => {
    const picked = event.target.files?.[0];
    event.target.value = '';
    if (!picked) return;
    setFileError(null);
    // Checked on the size first: a huge file is refused without reading it into memory.
    if (picked.size > LENS_MAX_CHARS * 4) {
      setFileError(t('lens.fileTooBig', { name: picked.name, mb: (picked.size / 1e6).toFixed(1), maxChars: LENS_MAX_CHARS.toLocaleString() }));
      return;
    }
    if (!/\.(txt|md|markdown|tokens|raw)$/i.test(picked.name)) {
      setFileError(t('lens.fileNotText', { name: picked.name }));
      return;
    }
    const content = await picked.text();
    if (content.includes('\u0000')) {
      setFileError(t('lens.fileBinary', { name: picked.name }));
      return;
    }
    setFile({ name: picked.name, text: content });
    setSource('file');
  };

  const result = lens.result;
  const scores = useMemo(() => result?.scores ?? [], [result]);
  const scoredKeys = useMemo(() => scores.map((s) => s.model), [scores]);
  // Keep the colour mode on models the result has (stable per mode and result, so spans are not redrawn).
  const shownMode: ColourMode | null = useMemo(() => {
    if (scoredKeys.length === 0) return null;
    if (mode.kind === 'loss') return scoredKeys.includes(mode.model) ? mode : { kind: 'loss', model: scoredKeys[0]! };
    if (scoredKeys.includes(mode.a) && scoredKeys.includes(mode.b) && mode.a !== mode.b) return mode;
    return scoredKeys.length > 1 ? { kind: 'difference', a: scoredKeys[0]!, b: scoredKeys[1]! } : { kind: 'loss', model: scoredKeys[0]! };
  }, [mode, scoredKeys]);

  const comparison = useMemo(() => {
    if (shownMode?.kind !== 'difference') return null;
    const a = scores.find((s) => s.model === shownMode.a)!;
    const b = scores.find((s) => s.model === shownMode.b)!;
    return { a, b, summary: compareLosses(a.logProbs, b.logProbs) };
  }, [shownMode, scores]);

  const tokenPages = useMemo(() => pages(result?.tokens.length ?? 0, PAGE_TOKENS), [result]);
  const currentPage = tokenPages[Math.min(page, tokenPages.length - 1)]!;
  const progress = lens.progress;
  const nameOf = (key: ModelKey) => MODEL_LABELS[key];

  return (
    <section className="lens" aria-labelledby={`${ids}-title`} data-testid="lens">
      <form className="panel lens-input" onSubmit={run}>
        <h2 id={`${ids}-title`} className="lens-title">
          {t('app.lens')}
        </h2>
        <p className="hint">
          <Trans i18nKey="lens.intro" components={[<code key="0" />]} />
        </p>
        <fieldset className="lens-sources">
          <legend className="field-label">{t('lens.text')}</legend>
          {(
            [
              ['wikitext', t('lens.sourceWikitext')],
              ['text', t('lens.sourceText')],
              ['file', t('lens.sourceFile')],
            ] as const
          ).map(([value, label]) => (
            <label key={value} className="lens-radio">
              <input type="radio" name={`${ids}-source`} value={value} checked={source === value} onChange={() => setSource(value)} data-testid={`lens-source-${value}`} />
              {label}
            </label>
          ))}
        </fieldset>

        {source === 'wikitext' && (
          <div className="lens-source-body">
            {sampleError ? (
              <p className="error">{sampleError}</p>
            ) : !sample ? (
              <p className="muted">{t('lens.loadingSample')}</p>
            ) : (
              <label className="field">
                <span className="field-label">{t('lens.article')}</span>
                <select value={article} onChange={(e) => setArticle(Number(e.target.value))} data-testid="lens-article">
                  {sample.articles.map((a, i) => (
                    <option key={i} value={i}>
                      {i + 1}. {a.title || t('lens.untitled')} ({approxTokens(a.text.length, t)})
                    </option>
                  ))}
                  <option value={ALL_ARTICLES}>
                    {t('lens.wholeSet', { count: sample.articles.length, tokens: approxTokens(sample.text.length, t) })}
                  </option>
                </select>
              </label>
            )}
          </div>
        )}
        {source === 'text' && (
          <div className="lens-source-body">
            <label htmlFor={`${ids}-text`} className="visually-hidden">
              {t('lens.textLabel')}
            </label>
            <textarea
              id={`${ids}-text`}
              data-testid="lens-text"
              lang="en"
              rows={5}
              value={typed}
              onChange={(e) => setTyped(e.target.value)}
              placeholder={t('lens.placeholder')}
            />
          </div>
        )}
        {source === 'file' && (
          <div className="lens-source-body">
            <p className="muted">
              {file ? t('lens.fileSummary', { name: file.name, chars: file.text.length.toLocaleString(), tokens: approxTokens(file.text.length, t) }) : t('lens.noFile')}
            </p>
          </div>
        )}
        <div className="lens-file">
          <label className="button-like">
            {t('lens.chooseFile')}
            <input type="file" accept=".txt,.md,.markdown,.tokens,.raw,text/plain,text/markdown" className="visually-hidden" onChange={(e) => void onFile(e)} data-testid="lens-file" />
          </label>
          <span className="hint">{t('lens.fileHint')}</span>
        </div>
        {fileError && (
          <p className="error" role="alert">
            {fileError}
          </p>
        )}

        <fieldset className="lens-models">
          <legend className="field-label">{t('lens.models')}</legend>
          {rows.map((m) => (
            <label key={m.key} className="lens-check" title={m.note ?? undefined}>
              <input
                type="checkbox"
                checked={available.includes(m.key) && chosen.includes(m.key)}
                disabled={!available.includes(m.key)}
                onChange={(e) => setChosen((c) => (e.target.checked ? [...c.filter((k) => k !== m.key), m.key] : c.filter((k) => k !== m.key)))}
                data-testid={`lens-model-${m.key}`}
              />
              {m.name}
              {m.note && <span className="muted">{t('lens.note', { note: m.note })}</span>}
            </label>
          ))}
          <label className="lens-check">
            <input type="checkbox" checked={retrieval} onChange={(e) => setRetrieval(e.target.checked)} data-testid="lens-retrieval" />
            {t('lens.retrieval')}
          </label>
          {selected.includes('ragseq') && (
            <div className="controls-row" data-testid="lens-ragseq-controls">
              <NumberField label={t('ragseq.k')} value={ragSequence.k} min={1} max={MAX_RAG_SEQUENCE_K} title={t('ragseq.kTitle')} onChange={(v) => setRagSequence((r) => ({ ...r, k: Math.round(v) }))} />
              <NumberField label={t('ragseq.temperature')} value={ragSequence.temperature} min={0.01} max={10} step={0.01} title={t('ragseq.temperatureTitle')} onChange={(v) => setRagSequence((r) => ({ ...r, temperature: v }))} />
              <NumberField label={t('ragseq.span')} value={ragSequence.span} min={1} max={MAX_RAG_SEQUENCE_SPAN} title={t('ragseq.spanTitle')} onChange={(v) => setRagSequence((r) => ({ ...r, span: Math.round(v) }))} />
            </div>
          )}
        </fieldset>

        <div className="prompt-actions">
          <button type="submit" className="primary" data-testid="lens-run" disabled={!canRun}>
            {t('lens.run')}
          </button>
          <button type="button" data-testid="lens-stop" onClick={() => client.stopScore()} disabled={!lens.running}>
            {t('compare.stop')}
          </button>
          <span className="hint">
            <Trans i18nKey="lens.escStops" components={[<kbd key="0" />]} />
          </span>
          {inputProblem && !lens.running && (
            <span className="muted" data-testid="lens-input-problem">
              {inputProblem}
            </span>
          )}
          {generating && <span className="muted">{t('lens.generating')}</span>}
        </div>
      </form>

      {lens.running && (
        <div className="panel progress" data-testid="lens-progress">
          <div className="progress-label">
            <span>{progress ? t('lens.scoringWith', { model: nameOf(progress.model) }) : t('lens.tokenizing')}</span>
            <span className="progress-detail">
              {progress
                ? `${t('lens.progress', { done: progress.done.toLocaleString(), total: progress.total.toLocaleString() })}${progress.etaSeconds !== null ? t('lens.left', { time: duration(progress.etaSeconds) }) : ''}`
                : lens.counts
                  ? t('lens.tokens', { n: lens.counts.tokens.toLocaleString() })
                  : ''}
            </span>
          </div>
          <progress max={1} value={progress ? progress.done / Math.max(1, progress.total) : undefined} aria-label={t('lens.progressLabel')} />
        </div>
      )}
      {lens.error && (
        <div className="panel error lens-error" role="alert" data-testid="lens-error">
          {lens.error}{' '}
          <button type="button" className="link-button" onClick={() => client.clearLensError()}>
            {t('app.dismiss')}
          </button>
        </div>
      )}
      {lens.stopped && !lens.running && <p className="muted">{result ? t('lens.stoppedKept') : t('lens.stopped')}</p>}

      {result && shownMode && (
        <div className="panel lens-results" data-testid="lens-results">
          <table className="lens-table">
            <caption>
              {t('lens.caption', { tokens: result.tokens.length.toLocaleString(), words: result.words.toLocaleString(), windows: result.windows.toLocaleString() })}
            </caption>
            <thead>
              <tr>
                <th scope="col">{t('lens.model')}</th>
                <th scope="col">{t('lens.tokenPpl')}</th>
                <th scope="col">{t('lens.wordPpl')}</th>
                <th scope="col">{t('lens.scoredTokens')}</th>
                <th scope="col">{t('lens.time')}</th>
              </tr>
            </thead>
            <tbody>
              {scores.map((s: ModelScore) => (
                <tr key={s.model} data-testid={`lens-row-${s.model}`}>
                  <th scope="row">
                    {MODEL_LABELS[s.model]} <span className="muted">{s.name}</span>
                    {s.retrieval && <span className="muted"> {s.retrieval.datastoreId ? t('lens.withRetrieval') : t('lens.noRetrieval')}</span>}
                  </th>
                  <td data-testid={`lens-token-ppl-${s.model}`} data-value={s.tokenPpl}>
                    {formatPpl(s.tokenPpl)}
                  </td>
                  <td data-testid={`lens-word-ppl-${s.model}`} data-value={s.wordPpl}>
                    {formatPpl(s.wordPpl)}
                  </td>
                  <td>{s.scoredTokens.toLocaleString()}</td>
                  <td>{duration(s.seconds)}</td>
                </tr>
              ))}
            </tbody>
          </table>

          <fieldset className="lens-colour">
            <legend className="field-label">{t('lens.colourBy')}</legend>
            <label className="lens-radio">
              <input
                type="radio"
                name={`${ids}-mode`}
                checked={shownMode.kind === 'loss'}
                onChange={() => setMode({ kind: 'loss', model: shownMode.kind === 'loss' ? shownMode.model : shownMode.a })}
                data-testid="lens-mode-loss"
              />
              {t('lens.lossUnder')}
            </label>
            <select
              aria-label={t('lens.lossModel')}
              value={shownMode.kind === 'loss' ? shownMode.model : scoredKeys[0]}
              disabled={shownMode.kind !== 'loss'}
              onChange={(e) => setMode({ kind: 'loss', model: e.target.value as ModelKey })}
              data-testid="lens-loss-model"
            >
              {scores.map((s) => (
                <option key={s.model} value={s.model}>
                  {MODEL_LABELS[s.model]}
                </option>
              ))}
            </select>
            <label className="lens-radio">
              <input
                type="radio"
                name={`${ids}-mode`}
                checked={shownMode.kind === 'difference'}
                disabled={scores.length < 2}
                onChange={() => setMode({ kind: 'difference', a: scoredKeys[0]!, b: scoredKeys[1]! })}
                data-testid="lens-mode-difference"
              />
              {t('lens.difference')}
            </label>
            <select
              aria-label={t('lens.diffA')}
              value={shownMode.kind === 'difference' ? shownMode.a : scoredKeys[0]}
              disabled={shownMode.kind !== 'difference'}
              onChange={(e) => shownMode.kind === 'difference' && setMode({ ...shownMode, a: e.target.value as ModelKey })}
              data-testid="lens-diff-a"
            >
              {scores.map((s) => (
                <option key={s.model} value={s.model}>
                  {MODEL_LABELS[s.model]}
                </option>
              ))}
            </select>
            <span aria-hidden="true">−</span>
            <select
              aria-label={t('lens.diffB')}
              value={shownMode.kind === 'difference' ? shownMode.b : (scoredKeys[1] ?? scoredKeys[0])}
              disabled={shownMode.kind !== 'difference'}
              onChange={(e) => shownMode.kind === 'difference' && setMode({ ...shownMode, b: e.target.value as ModelKey })}
              data-testid="lens-diff-b"
            >
              {scores.map((s) => (
                <option key={s.model} value={s.model}>
                  {MODEL_LABELS[s.model]}
                </option>
              ))}
            </select>
          </fieldset>

          {shownMode.kind === 'loss' ? (
            <Legend title={t('lens.legendLossTitle', { model: nameOf(shownMode.model) })} entries={lossLegend(undefined, undefined, legendWords(t))} />
          ) : (
            <Legend
              title={t('lens.legendDiffTitle', { a: nameOf(shownMode.a), b: nameOf(shownMode.b) })}
              entries={differenceLegend(nameOf(shownMode.a), nameOf(shownMode.b), undefined, legendWords(t))}
            />
          )}
          {comparison && (
            <p className="muted" data-testid="lens-comparison">
              {t('lens.comparison', {
                b: nameOf(comparison.b.model),
                a: nameOf(comparison.a.model),
                betterB: comparison.summary.betterB.toLocaleString(),
                betterA: comparison.summary.betterA.toLocaleString(),
                same: comparison.summary.same.toLocaleString(),
                mean: comparison.summary.meanDelta.toFixed(3),
              })}
            </p>
          )}

          {tokenPages.length > 1 && (
            <nav className="lens-pages" aria-label={t('lens.pages')}>
              <button type="button" onClick={() => setPage((p) => Math.max(0, p - 1))} disabled={page === 0}>
                {t('lens.previous')}
              </button>
              <span>
                {t('lens.pageRange', { from: (currentPage.from + 1).toLocaleString(), to: currentPage.to.toLocaleString(), total: result.tokens.length.toLocaleString() })}
              </span>
              <button type="button" onClick={() => setPage((p) => Math.min(tokenPages.length - 1, p + 1))} disabled={page >= tokenPages.length - 1}>
                {t('lens.next')}
              </button>
            </nav>
          )}
          <TokenMap tokens={result.tokens} scores={scores} mode={shownMode} from={currentPage.from} to={currentPage.to} />
          {scores.map((s) => s.ragSequence && <PassagePosterior key={s.model} tokens={result.tokens} score={s} />)}
        </div>
      )}
    </section>
  );
}
