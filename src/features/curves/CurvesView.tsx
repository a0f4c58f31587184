import { useEffect, useId, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { Trans, useTranslation } from 'react-i18next';
import { DEFAULT_ICRALM_SETTINGS, DEFAULT_KNN_SETTINGS, DEFAULT_REPLUG_SETTINGS, LENS_MAX_CHARS, MAX_KNN_K, useAppState, useClient, type EvalRequest, type EvalResult, type KnnLmSettings } from '../../client';
import { useDuration } from '../../i18n/format';
import { NumberField } from '../../ui/NumberField';
import { ProgressBar } from '../../ui/ProgressBar';
import { Switch } from '../../ui/Switch';
import { CurvePlot, formatPpl } from './CurvePlot';
import { CURVE_AXES, CURVE_FAMILIES, STRIDE_VALUES, curveSweep, curvesOf, familyOf, fractionCurveOf, fractionSweep, strideCurveOf, type CurveFamily, type SettingAxis } from './curves';
import './curves.css';
import { useEscape } from '../../ui/useEscape';
import { useLoadOnce } from '../../ui/useLoadOnce';

type Source = 'wikitext' | 'text';

/** Windows scored by default: 4 windows of 256 tokens at stride 128 are ~640 targets, seconds on WASM. */
export const DEFAULT_CURVE_WINDOWS = 4;
const MAX_CURVE_WINDOWS = 64;

const EXAMPLE_TEXT =
  'The Eiffel Tower is a wrought iron lattice tower on the Champ de Mars in Paris , France . It is named after the engineer Gustave Eiffel , whose company designed and built the tower from 1887 to 1889 .';

/**
 * Perplexity curves on a slice of text, the GPT's perplexity as a reference line, computed by the
 * inference worker (InferenceApi.evaluate): kNN-LM against λ, T and k (one forward and one search
 * pass), kNN-LM against the share of its datastore (one forward, one search per share), and
 * In-Context RALM against its retrieval stride (one pass per stride). Each family's last result stays.
 */
export function CurvesView({ active }: { active: boolean }) {
  const client = useClient();
  const { t } = useTranslation();
  const duration = useDuration();
  const ids = useId();
  const ready = useAppState((s) => s.phase === 'ready' && s.models.length > 0);
  const generating = useAppState((s) => s.generating);
  const lensRunning = useAppState((s) => s.lens.running);
  const curves = useAppState((s) => s.curves);
  const knn = useAppState((s) => s.knn);
  const knnEnabled = useAppState((s) => client.knnEnabled(s));
  const activeDatastore = useAppState((s) => s.retrieval?.activeId ?? null);

  const [source, setSource] = useState<Source>('wikitext');
  const [typed, setTyped] = useState(EXAMPLE_TEXT);
  const [windows, setWindows] = useState(DEFAULT_CURVE_WINDOWS);
  const [centre, setCentre] = useState<KnnLmSettings>({ ...DEFAULT_KNN_SETTINGS });
  const [family, setFamily] = useState<CurveFamily>('settings');
  // The last result of each family, so a new family's curves sit beside the others'.
  const [kept, setKept] = useState<Partial<Record<CurveFamily, { result: EvalResult; request: EvalRequest }>>>({});
  useEffect(() => {
    const { result, request } = curves;
    if (!result || !request) return;
    const f = familyOf(request);
    setKept((k) => (k[f]?.result === result ? k : { ...k, [f]: { result, request } }));
  }, [curves]);
  // The family of the run in progress (the client holds its request only once it is done).
  const [runningFamily, setRunningFamily] = useState<CurveFamily>('settings');

  const { value: sample, error: sampleError } = useLoadOnce(active && source === 'wikitext', () => client.loadLensSample());
  // Without the sample, the pasted text is the only source.
  useEffect(() => {
    if (sampleError) setSource('text');
  }, [sampleError]);

  // Esc stops a running evaluation while the view is on screen.
  useEscape(() => client.stopEvaluate(), active);

  const text = source === 'text' ? typed : (sample ?? '');
  const maxK = Math.min(MAX_KNN_K, knn.model?.entries ?? MAX_KNN_K);
  const inputProblem =
    text.trim() === ''
      ? source === 'wikitext' && sample === null
        ? t('lens.loadingSample')
        : t('lens.noText')
      : text.length > LENS_MAX_CHARS
        ? t('curves.tooLong', { maxChars: LENS_MAX_CHARS.toLocaleString() })
        : null;
  const usesKnn = family !== 'stride';
  // In-Context RALM retrieves its passages from the active datastore through the retrieval worker.
  const canRun = ready && (usesKnn ? !!knn.model : activeDatastore !== null) && !curves.running && !generating && !lensRunning && inputProblem === null;

  const run = (event?: FormEvent) => {
    event?.preventDefault();
    if (!canRun) return;
    const c = { ...centre, k: Math.min(centre.k, maxK) };
    const sweep = family === 'fraction' ? fractionSweep(c) : curveSweep(c, maxK);
    setRunningFamily(family);
    void client.evaluate({
      text,
      model: family === 'stride' ? 'icralm' : 'knnlm',
      retro: { retrieval: false, k: 2 },
      knn: { ...sweep[0]!, sweep: sweep.slice(1) },
      icralm: family === 'stride' ? { ...DEFAULT_ICRALM_SETTINGS, stride: STRIDE_VALUES[0]!, strides: [...STRIDE_VALUES] } : DEFAULT_ICRALM_SETTINGS,
      replug: DEFAULT_REPLUG_SETTINGS,
      maxWindows: windows,
    });
  };

  const shown = useMemo(() => {
    const read = <T,>(f: () => T) => {
      try {
        return { value: f(), error: null };
      } catch (error) {
        return { value: null, error: error instanceof Error ? error.message : String(error) };
      }
    };
    const centreOf = (request: EvalRequest) => ({ lambda: request.knn.lambda, k: request.knn.k, temperature: request.knn.temperature });
    const settings = kept.settings
      ? read(() => {
          const { result, request } = kept.settings!;
          const maxK = Math.max(...[request.knn, ...(request.knn.sweep ?? [])].map((s) => s.k));
          return { curves: curvesOf(result, centreOf(request), maxK), result };
        })
      : null;
    const fraction = kept.fraction ? read(() => ({ curve: fractionCurveOf(kept.fraction!.result, centreOf(kept.fraction!.request)), result: kept.fraction!.result })) : null;
    const stride = kept.stride ? read(() => ({ curve: strideCurveOf(kept.stride!.result, kept.stride!.request.icralm.stride), result: kept.stride!.result })) : null;
    return { settings, fraction, stride, error: settings?.error ?? fraction?.error ?? stride?.error ?? null };
  }, [kept]);

  const axisLabel: Record<SettingAxis, string> = { lambda: t('curves.lambda'), temperature: t('curves.temperature'), k: t('curves.k') };
  const familyLabel: Record<CurveFamily, string> = { settings: t('curves.familySettings'), fraction: t('curves.familyFraction'), stride: t('curves.familyStride') };
  const progress = curves.progress;

  return (
    <section className="curves" aria-labelledby={`${ids}-title`} data-testid="curves">
      {/* noValidate: the fields clamp what they take, and a step mismatch must not block the run silently. */}
      <form className="panel curves-input" onSubmit={run} noValidate>
        <h2 id={`${ids}-title`} className="lens-title">
          {t('app.curves')}
        </h2>
        <p className="hint">{t('curves.intro')}</p>

        <fieldset className="lens-sources" data-testid="curves-family">
          <legend className="field-label">{t('curves.family')}</legend>
          {CURVE_FAMILIES.map((value) => (
            <label key={value} className="lens-radio">
              <input type="radio" name={`${ids}-family`} value={value} checked={family === value} onChange={() => setFamily(value)} data-testid={`curves-family-${value}`} />
              {familyLabel[value]}
            </label>
          ))}
        </fieldset>
        {family === 'fraction' && <p className="hint">{t('curves.fractionHint')}</p>}
        {family === 'stride' && <p className="hint">{t('curves.strideHint')}</p>}
        {family === 'stride' && (
          <p className="hint" data-testid="curves-retro-note">
            {t('curves.retroNote')}
          </p>
        )}
        {family === 'stride' && ready && activeDatastore === null && (
          <p className="error" role="alert" data-testid="curves-no-datastore">
            {t('curves.noDatastore')}
          </p>
        )}

        {usesKnn && !knn.model && (
          <div className="curves-knn" data-testid="curves-knn-off">
            <p className="muted">{t('curves.knnOff')}</p>
            <Switch label={t('curves.knnSwitch')} checked={knnEnabled} disabled={!ready || knn.loading} onChange={(on) => void client.setKnnEnabled(on)} />
            {knn.loading && (knn.progress ? <ProgressBar progress={knn.progress} testId="curves-knn-progress" /> : <p className="muted">{t('knn.loading')}</p>)}
            {knn.error && knnEnabled && (
              <p className="error" role="alert">
                {knn.error}
              </p>
            )}
          </div>
        )}

        <fieldset className="lens-sources">
          <legend className="field-label">{t('lens.text')}</legend>
          {(
            [
              ['wikitext', t('lens.sourceWikitext')],
              ['text', t('lens.sourceText')],
            ] as const
          ).map(([value, label]) => (
            <label key={value} className="lens-radio">
              <input
                type="radio"
                name={`${ids}-source`}
                value={value}
                checked={source === value}
                disabled={value === 'wikitext' && !!sampleError}
                onChange={() => setSource(value)}
                data-testid={`curves-source-${value}`}
              />
              {label}
            </label>
          ))}
        </fieldset>
        {source === 'wikitext' && sample === null && !sampleError && <p className="muted">{t('lens.loadingSample')}</p>}
        {sampleError && <p className="error">{sampleError}</p>}
        {source === 'text' && (
          <div className="lens-source-body">
            <label htmlFor={`${ids}-text`} className="visually-hidden">
              {t('lens.textLabel')}
            </label>
            <textarea id={`${ids}-text`} data-testid="curves-text" lang="en" rows={4} value={typed} onChange={(e) => setTyped(e.target.value)} placeholder={t('lens.placeholder')} />
          </div>
        )}

        <div className="controls-row curves-settings">
          <NumberField label={t('curves.windows')} value={windows} min={1} max={MAX_CURVE_WINDOWS} onChange={(v) => setWindows(Math.round(v))} title={t('curves.windowsHint')} />
          {usesKnn && (
            <>
              <NumberField label={t('settings.lambda')} value={centre.lambda} min={0} max={0.99} step={0.05} onChange={(v) => setCentre((c) => ({ ...c, lambda: v }))} />
              <NumberField label={t('settings.knnK')} value={centre.k} min={1} max={maxK} onChange={(v) => setCentre((c) => ({ ...c, k: Math.round(v) }))} />
              <NumberField label={t('curves.temperature')} value={centre.temperature} min={0.5} max={1000} step={0.5} onChange={(v) => setCentre((c) => ({ ...c, temperature: v }))} />
            </>
          )}
        </div>
        {usesKnn && <p className="hint">{t(family === 'fraction' ? 'curves.fractionCentreHint' : 'curves.centreHint')}</p>}

        <div className="prompt-actions">
          <button type="submit" className="primary" data-testid="curves-run" disabled={!canRun}>
            {t('curves.run')}
          </button>
          <button type="button" data-testid="curves-stop" onClick={() => client.stopEvaluate()} disabled={!curves.running}>
            {t('compare.stop')}
          </button>
          <span className="hint">
            <Trans i18nKey="lens.escStops" components={[<kbd key="0" />]} />
          </span>
          {inputProblem && !curves.running && (
            <span className="muted" data-testid="curves-input-problem">
              {inputProblem}
            </span>
          )}
          {(generating || lensRunning) && <span className="muted">{t('curves.busy')}</span>}
        </div>
      </form>

      {curves.running && (
        <div className="panel progress" data-testid="curves-progress">
          <div className="progress-label">
            <span>{t(runningFamily === 'stride' ? 'curves.computingStride' : runningFamily === 'fraction' ? 'curves.computingFraction' : 'curves.computing')}</span>
            <span className="progress-detail">
              {progress ? t(runningFamily === 'stride' ? 'curves.progressTargets' : 'curves.progress', { done: progress.done.toLocaleString(), total: progress.total.toLocaleString() }) : ''}
            </span>
          </div>
          <progress max={1} value={progress ? progress.done / Math.max(1, progress.total) : undefined} aria-label={t('curves.progressLabel')} />
        </div>
      )}
      {(curves.error ?? shown.error) && (
        <div className="panel error" role="alert" data-testid="curves-error">
          {curves.error ?? shown.error}{' '}
          {curves.error && (
            <button type="button" className="link-button" onClick={() => client.clearCurvesError()}>
              {t('app.dismiss')}
            </button>
          )}
        </div>
      )}
      {curves.stopped && !curves.running && <p className="muted" data-testid="curves-stopped">{curves.result ? t('lens.stoppedKept') : t('lens.stopped')}</p>}

      {shown.settings?.value && (
        <ResultPanel
          suffix=""
          title={familyLabel.settings}
          gpt={shown.settings.value.curves.gpt.tokenPpl}
          summary={t('curves.summary', {
            ...summaryOf(shown.settings.value.curves, duration(shown.settings.value.result.seconds)),
            hits: (shown.settings.value.curves.targetInNeighbours * 100).toFixed(1),
          })}
        >
          <div className="curves-grid">
            {CURVE_AXES.map((axis) => (
              <CurvePlot key={axis} axis={axis} points={shown.settings!.value!.curves.curves[axis]} gpt={shown.settings!.value!.curves.gpt.tokenPpl} label={axisLabel[axis]} />
            ))}
          </div>
        </ResultPanel>
      )}
      {(shown.fraction?.value || shown.stride?.value) && (
        <div className="curves-grid">
          {shown.fraction?.value && (
            <ResultPanel
              suffix="-fraction"
              title={familyLabel.fraction}
              gpt={shown.fraction.value.curve.gpt.tokenPpl}
              summary={t('curves.summaryFraction', {
                ...summaryOf(shown.fraction.value.curve, duration(shown.fraction.value.result.seconds)),
                entries: (knn.model?.entries ?? 0).toLocaleString(),
              })}
            >
              <CurvePlot axis="fraction" points={shown.fraction.value.curve.points} gpt={shown.fraction.value.curve.gpt.tokenPpl} label={t('curves.fraction')} />
            </ResultPanel>
          )}
          {shown.stride?.value && (
            <ResultPanel
              suffix="-stride"
              title={familyLabel.stride}
              gpt={shown.stride.value.curve.gpt.tokenPpl}
              summary={t('curves.summaryStride', summaryOf(shown.stride.value.curve, duration(shown.stride.value.result.seconds)))}
            >
              <CurvePlot axis="stride" points={shown.stride.value.curve.points} gpt={shown.stride.value.curve.gpt.tokenPpl} label={t('curves.stride')} />
            </ResultPanel>
          )}
        </div>
      )}
    </section>
  );
}

/** The figures every family's summary line states: targets, windows, the GPT alone, time (already worded). */
function summaryOf(curve: { scoredTokens: number; windows: number; totalWindows: number; gpt: { tokenPpl: number } }, seconds: string) {
  return {
    tokens: curve.scoredTokens.toLocaleString(),
    windows: curve.windows.toLocaleString(),
    total: curve.totalWindows.toLocaleString(),
    gpt: formatPpl(curve.gpt.tokenPpl),
    seconds,
  };
}

/** One family's results: its title, the summary line (the GPT's perplexity in data-gpt, for tests) and its plots. */
function ResultPanel({ suffix, title, gpt, summary, children }: { suffix: '' | '-fraction' | '-stride'; title: string; gpt: number; summary: string; children: ReactNode }) {
  return (
    <div className="panel curves-results" data-testid={`curves-results${suffix}`}>
      <h3 className="curves-family-title">{title}</h3>
      <p className="curves-summary" data-testid={`curves-summary${suffix}`} data-gpt={gpt}>
        {summary}
      </p>
      {children}
    </div>
  );
}
