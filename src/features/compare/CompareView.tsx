import { useEffect, useId, useMemo, useRef, useState, type CSSProperties, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { createPortal } from 'react-dom';
import { useAppState, useClient, type ModelInfo, type ModelKey, type NeighbourView, type RunState } from '../../client';
import { NeighbourPanel } from '../neighbours/NeighbourPanel';
import { KnnControls } from '../knnlm/KnnControls';
import { TokenDistribution } from '../knnlm/TokenDistribution';
import { explainPosition } from '../knnlm/format';
import { IcRalmControls } from '../icralm/IcRalmControls';
import { ReplugControls } from '../replug/ReplugControls';
import { ThoroughDecoding } from '../ragseq/ThoroughDecoding';
import { IcRalmText } from '../icralm/IcRalmText';
import { FlareControls } from '../flare/FlareControls';
import { FlareText } from '../flare/FlareText';
import { FlareDecision } from '../flare/FlareDecision';
import { tokensServedBy } from '../icralm/blocks';
import { tokensInfluencedBy } from './chunks';
import { DecodingControls } from './DecodingControls';
import { OutputColumn } from './OutputColumn';
import { TokenPanel } from './TokenPanel';
import { RetroControls } from './RetroControls';
import { ExperimentControls } from './ExperimentControls';
import { loadSettings, saveSettings, type CompareSettings } from './settings';
import { SidePanel } from '../../ui/SidePanel';
import { LessonBar } from '../lessons/LessonBar';
import { LESSONS, findLesson } from '../lessons/lessons';
import { useLocalized } from '../lessons/localized';
import type { Lesson, LessonDatastore } from '../lessons/types';
import { stepSettings } from '../lessons/preset';
import { withState, type SharedState } from '../share/urlState';
import { download, exportRun, runToMarkdown } from '../share/exportRun';
import { Trans, useTranslation } from 'react-i18next';
import { useEscape } from '../../ui/useEscape';

// WikiText-style prompts (spaces around punctuation, as the models were trained). The first two
// open articles of the WikiText-2 datastore, so RETRO's neighbours visibly hold the continuation.
// An example with a `datastore` also makes that built-in datastore active (when this browser holds it).
const EXAMPLES: { label: string; text: string; datastore?: string }[] = [
  {
    label: 'Simon Bradstreet',
    text: 'Simon Bradstreet ( baptized March 18 , 1603 / 4 – March 27 , 1697 ) was a colonial magistrate , businessman , diplomat , and the last governor of the Massachusetts Bay Colony .',
  },
  {
    label: 'Cyclone Graham',
    text: 'Cyclone Graham of the 2002 – 03 Australian region cyclone season was a weak tropical storm that affected Australia during late February and early March 2003 .',
  },
  // A fact from the SQuAD paragraphs (never in training), picked by `npm run eval:generate -- --task cloze`:
  // RETRO and the kNN-LM write "$12" from the datastore, the GPT does not (docs/classroom.md).
  {
    label: 'Oil embargo (SQuAD)',
    text: 'By the end of the embargo in March 1974, the price of oil had risen from US$3 per barrel to nearly',
    datastore: 'squad-v2-paragraphs',
  },
  { label: 'Free text', text: 'The ship was launched in' },
];


/** Column titles, for the export and the announcement of a finished column. */
const COLUMN_TITLES: Record<ModelKey, string> = { gpt: 'GPT', retro: 'RETRO', knnlm: 'kNN-LM', icralm: 'In-Context RALM', replug: 'REPLUG', flare: 'FLARE', ragseq: 'RAG-Sequence' };

/** The columns whose marks open a passage panel. */
type PassageColumn = 'icralm' | 'replug' | 'flare';

/** The one panel open beside the columns: a RETRO chunk's neighbours, the passages of a passage column, a column's token. */
type Selection =
  | { kind: 'chunk'; index: number }
  | { kind: 'passage'; model: PassageColumn; index: number }
  | { kind: 'token'; model: ModelKey; index: number }
  | null;

export function CompareView({
  initial,
  settingsSlot,
  presenter,
}: {
  /** state from the link the page was opened with */
  initial: SharedState;
  /** where the settings boxes go (the drawer App owns); null while it is not mounted */
  settingsSlot: HTMLElement | null;
  presenter: boolean;
}) {
  const client = useClient();
  const { t } = useTranslation();
  const localized = useLocalized();
  const promptId = useId();
  const chunkHintId = useId();
  const phase = useAppState((s) => s.phase);
  const models = useAppState((s) => s.models);
  const runs = useAppState((s) => s.runs);
  const generating = useAppState((s) => s.generating);
  const retrieval = useAppState((s) => s.retrieval);
  const building = useAppState((s) => s.build.running);
  const [prompt, setPrompt] = useState(initial.prompt ?? EXAMPLES[0]!.text);
  const [settings, setSettings] = useState<CompareSettings>(() => initial.settings ?? loadSettings());
  const [selection, setSelection] = useState<Selection>(null);
  const [lesson, setLesson] = useState<{ lesson: Lesson; step: number } | null>(null);
  const [preparing, setPreparing] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  /** the lesson step ("id:step") the columns were last written for */
  const [writtenStep, setWrittenStep] = useState<string | null>(null);
  const knnOn = useAppState((s) => client.knnEnabled(s));
  const knnModel = useAppState((s) => s.knn.model);

  useEffect(() => saveSettings(settings), [settings]);

  // Esc stops generation from anywhere on the page.
  useEscape(() => client.stop());

  const gpt = models.find((m) => m.key === 'gpt');
  const retro = models.find((m) => m.key === 'retro');
  const activeId = retrieval?.activeId ?? null;
  const active = retrieval?.datastores.find((d) => d.id === activeId) ?? null;
  // In-Context RALM reads the active datastore; without one the column would have nothing to show.
  const icralmOn = settings.icralm.enabled && activeId !== null;
  const replugOn = settings.replug.enabled && activeId !== null;
  const flareOn = settings.flare.enabled && activeId !== null;
  const ready = phase === 'ready' && models.length > 0 && retrieval !== null;

  /** Makes a lesson's datastore active, building it from its text files the first time; an error message or null. */
  const prepareDatastore = async (d: LessonDatastore): Promise<string | null> => {
    const state = client.getState().retrieval;
    if (d.kind === 'builtin') {
      if (!state?.datastores.some((x) => x.id === d.id)) return t('lesson.missingBuiltin', { id: d.id });
      if (state.activeId !== d.id) await client.setActive(d.id);
      return null;
    }
    const existing = state?.datastores.find((x) => x.name === d.name && (!d.knnKeys || x.knnlm));
    if (existing) {
      if (state?.activeId !== existing.id) await client.setActive(existing.id);
      return null;
    }
    setPreparing(t('lesson.building', { name: d.name, count: d.files.length }));
    const files = await Promise.all(
      d.files.map(async (name) => {
        const response = await fetch(new URL(`${import.meta.env.BASE_URL}lessons/${name}`, location.href));
        if (!response.ok) throw new Error(`lessons/${name}: HTTP ${response.status}`);
        return new File([await response.blob()], name, { type: 'text/plain' });
      }),
    );
    const built = await client.build(d.name, files, true, d.knnKeys);
    return built ? null : (client.getState().build.error ?? t('lesson.buildUnfinished'));
  };

  const applyStep = async (next: Lesson, index: number, fromLink?: SharedState) => {
    const step = next.steps[index];
    if (!step) return;
    client.stop();
    setLesson({ lesson: next, step: index });
    setSelection(null);
    setPrompt(fromLink?.prompt ?? step.prompt);
    setSettings(fromLink?.settings ?? stepSettings(step));
    setPreparing(t('lesson.preparing'));
    try {
      const failure = await prepareDatastore(step.datastore);
      if (failure) client.notify(t('lesson.notReady', { reason: failure }));
      // After the datastore: turning kNN-LM on first would load whichever keys were active before.
      if (client.knnEnabled() !== step.columns.knnlm) await client.setKnnEnabled(step.columns.knnlm);
    } catch (error) {
      client.notify(t('lesson.failed', { reason: error instanceof Error ? error.message : String(error) }));
    } finally {
      setPreparing(null);
    }
  };

  // A link's state applies once the datastores are known: its lesson (with its datastore), else its datastore and columns.
  const restored = useRef(false);
  useEffect(() => {
    if (!ready || restored.current) return;
    restored.current = true;
    const linked = initial.lesson ? findLesson(initial.lesson) : undefined;
    if (linked) {
      void applyStep(linked, Math.min(initial.step ?? 0, linked.steps.length - 1), initial);
      return;
    }
    void (async () => {
      if (initial.datastore && initial.datastore !== client.getState().retrieval?.activeId && client.getState().retrieval?.datastores.some((d) => d.id === initial.datastore)) {
        await client.setActive(initial.datastore);
      }
      if (initial.knn !== undefined && initial.knn !== client.knnEnabled()) await client.setKnnEnabled(initial.knn);
    })();
    // Runs once, when ready; applyStep only reads the latest state through the client.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ready]);

  // The address bar always holds the current state, so "Copy link" (or the browser's own share) gives it.
  const builtinActive = active?.origin === 'default' ? active.id : undefined;
  useEffect(() => {
    if (!restored.current) return;
    const search = withState(location.search, {
      prompt,
      settings,
      knn: knnOn,
      datastore: lesson ? undefined : builtinActive,
      lesson: lesson?.lesson.id,
      step: lesson?.step,
    });
    if (search !== location.search) history.replaceState(history.state, '', `${location.pathname}${search}${location.hash}`);
    setCopied(false);
  }, [prompt, settings, knnOn, builtinActive, lesson, ready]);

  const generate = () => {
    if (!ready || generating || preparing || prompt.trim() === '') return;
    setSelection(null);
    setWrittenStep(lesson && `${lesson.lesson.id}:${lesson.step}`);
    const { exclusions, ...retroSettings } = settings.retro;
    const models: ModelKey[] = ['gpt', 'retro'];
    if (knnOn && knnModel) models.push('knnlm');
    if (icralmOn) models.push('icralm');
    if (replugOn) models.push('replug');
    if (flareOn) models.push('flare');
    void client.generate({
      prompt,
      models,
      knn: settings.knn,
      icralm: { stride: settings.icralm.stride, queryLength: settings.icralm.queryLength, retriever: settings.icralm.retriever ?? 'dense', randomNeighbours: settings.icralm.randomNeighbours === true },
      replug: { k: settings.replug.k, temperature: settings.replug.temperature, stride: settings.replug.stride, queryLength: settings.replug.queryLength, retriever: settings.replug.retriever ?? 'dense', randomNeighbours: settings.replug.randomNeighbours === true },
      flare: { lookahead: settings.flare.lookahead, threshold: settings.flare.threshold, maskBelow: settings.flare.maskBelow, queryLength: settings.flare.queryLength, randomNeighbours: settings.flare.randomNeighbours === true },
      excludePromptDocument: settings.experiments.excludePromptDocument,
      decoding: settings.decoding,
      retro: {
        ...retroSettings,
        k: Math.min(retroSettings.k, retro?.neighbours ?? retroSettings.k),
        retrievalStep: retroSettings.retrievalStep ?? retro?.chunk ?? 32,
        excludeDocIds: exclusions.filter((e) => e.datastoreId === activeId).map((e) => e.docId),
      },
    });
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    generate();
  };

  const onPromptKey = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      generate();
    }
  };

  const copyLink = async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      setCopied(true);
    } catch {
      // No clipboard (an insecure origin, a refused permission): the link itself, to copy by hand.
      client.notify(t('compare.copyByHand', { url: location.href }), 'info');
    }
  };

  const exportAs = (format: 'md' | 'json') => {
    const data = exportRun({
      prompt,
      datastore: active?.name ?? null,
      lesson: lesson && { id: lesson.lesson.id, title: localized(lesson.lesson.title), step: lesson.step },
      settings,
      runs,
      titles: COLUMN_TITLES,
    });
    const stamp = data.exportedAt.slice(0, 16).replace(/[:T]/g, '-');
    if (format === 'md') download(`retrolab-${stamp}.md`, 'text/markdown', runToMarkdown(data));
    else download(`retrolab-${stamp}.json`, 'application/json', `${JSON.stringify(data, null, 2)}\n`);
  };

  const columnCount = 2 + (knnOn ? 1 : 0) + (settings.icralm.enabled ? 1 : 0) + (settings.replug.enabled ? 1 : 0) + (settings.flare.enabled ? 1 : 0);
  const retroRun = runs.retro;
  const knnRun = runs.knnlm;
  const icralmRun = runs.icralm;
  const replugRun = runs.replug;
  const flareRun = runs.flare;
  const selectedChunk = selection?.kind === 'chunk' ? selection.index : null;
  const selectedToken = (model: ModelKey) => (selection?.kind === 'token' && selection.model === model ? selection.index : null);
  const selectedPassage = (model: PassageColumn) => (selection?.kind === 'passage' && selection.model === model ? selection.index : null);
  const toggleChunk = (index: number) => setSelection((current) => (current?.kind === 'chunk' && current.index === index ? null : { kind: 'chunk', index }));
  const togglePassage = (model: PassageColumn) => (index: number) =>
    setSelection((current) => (current?.kind === 'passage' && current.model === model && current.index === index ? null : { kind: 'passage', model, index }));
  const toggleToken = (model: ModelKey) => (index: number) =>
    setSelection((current) => (current?.kind === 'token' && current.model === model && current.index === index ? null : { kind: 'token', model, index }));

  const panel = useMemo(() => {
    if (selectedChunk === null || !retroRun) return null;
    const report = retroRun.chunks.find((c) => c.chunk === selectedChunk);
    if (!report) return null;
    const next = retroRun.chunks.find((c) => c.chunk > selectedChunk);
    const sequence = [...retroRun.prefix, ...retroRun.prompt, ...retroRun.generated];
    const firstGenerated = retroRun.prefix.length + retroRun.prompt.length;
    const influenced = tokensInfluencedBy(report, next, sequence, firstGenerated);
    const queryText = sequence
      .slice(report.start, report.end)
      .map((t) => t.text)
      .join('');
    return { report, queryText, influenced };
  }, [selectedChunk, retroRun]);

  // The same GPT under each method; the test perplexity a column shows is the method's own, measured
  // by npm run eval with its default settings on the built-in datastore (the GPT manifest's metrics).
  const methodModel = (metric: 'wt2_test_icralm' | 'wt2_test_knnlm' | 'wt2_test_replug' | 'wt2_test_flare'): ModelInfo | undefined => {
    const m = gpt?.metrics[metric];
    return gpt && { ...gpt, metrics: m ? { wt2_test: m } : {} };
  };
  const icralmModel = methodModel('wt2_test_icralm');
  const passageSelection = selection?.kind === 'passage' ? selection : null;
  const passageRun = passageSelection ? runs[passageSelection.model] : undefined;
  const passageStride = passageSelection?.model === 'replug' ? settings.replug.stride : passageSelection?.model === 'flare' ? settings.flare.lookahead : settings.icralm.stride;
  const passagePanel = useMemo(() => {
    if (!passageSelection || !passageRun) return null;
    const at = passageRun.chunks.findIndex((c) => c.chunk === passageSelection.index);
    const report = passageRun.chunks[at];
    if (!report) return null;
    const sequence = [...passageRun.prefix, ...passageRun.prompt, ...passageRun.generated];
    const served = tokensServedBy(report, passageRun.chunks[at + 1], sequence, passageStride);
    // FLARE's query ends with the look-ahead, which is not in the text: the report carries it.
    const queryText =
      report.flare?.queryText ??
      sequence
        .slice(report.start, report.end)
        .map((t) => t.text)
        .join('');
    const firstGenerated = passageRun.prefix.length + passageRun.prompt.length;
    return { model: passageSelection.model, report, queryText, served, writtenIsGenerated: report.end >= firstGenerated };
  }, [passageSelection, passageRun, passageStride]);

  const exclude = (n: NeighbourView) => {
    if (!activeId) return;
    setSettings((s) => ({
      ...s,
      retro: { ...s.retro, exclusions: [...s.retro.exclusions, { datastoreId: activeId, docId: n.docId, title: n.title }] },
    }));
  };
  const isExcluded = (docId: number) => settings.retro.exclusions.some((e) => e.datastoreId === activeId && e.docId === docId);
  const close = () => setSelection(null);

  let side: { label: string; content: ReactNode } | null = null;
  const tokenRun = selection?.kind === 'token' ? runs[selection.model] : undefined;
  if (selection?.kind === 'token' && selection.model === 'knnlm' && knnRun?.generated[selection.index]) {
    side = {
      label: t('compare.panelToken'),
      content: (
        <TokenDistribution position={explainPosition(knnRun.prefix.length, knnRun.prompt.length, selection.index)} token={knnRun.generated[selection.index]!} onClose={close} />
      ),
    };
  } else if (selection?.kind === 'token' && tokenRun?.generated[selection.index]) {
    const column = COLUMN_TITLES[selection.model];
    side = {
      label: t('token.panel', { column }),
      content: (
        <TokenPanel
          run={tokenRun}
          index={selection.index}
          column={column}
          retrieval={selection.model === 'retro' ? 'neighbours' : selection.model === 'icralm' || selection.model === 'flare' ? 'passage' : selection.model === 'replug' ? 'passages' : null}
          onClose={close}
        />
      ),
    };
  } else if (passagePanel) {
    const replug = passagePanel.model === 'replug';
    const flare = passagePanel.model === 'flare';
    side = {
      label: replug ? t('replug.panel') : flare ? t('flare.panel') : t('compare.panelPassage'),
      content: (
        <NeighbourPanel
          report={passagePanel.report}
          queryText={passagePanel.queryText}
          written={passagePanel.served}
          writtenIsGenerated={passagePanel.writtenIsGenerated}
          onClose={close}
          onExclude={exclude}
          excluded={isExcluded}
          labels={{
            id: replug ? 'replug-passages' : flare ? 'flare-passage' : 'icralm-passage',
            heading: (
              <>
                {replug
                  ? t('replug.heading', { n: passagePanel.report.chunk + 1 })
                  : flare
                    ? t('flare.heading', { end: passagePanel.report.end })
                    : t('neighbours.passageHeading', { n: passagePanel.report.chunk + 1 })}{' '}
                <span className="muted">
                  {t('neighbours.passageDetail', { end: passagePanel.report.end, start: passagePanel.report.start, last: passagePanel.report.end - 1 })}
                </span>
              </>
            ),
            queryLabel: flare ? t('flare.query') : t('neighbours.passageQuery'),
            modelName: replug ? 'REPLUG' : flare ? 'FLARE' : 'In-Context RALM',
          }}
        >
          {flare && <FlareDecision report={passagePanel.report} />}
        </NeighbourPanel>
      ),
    };
  } else if (panel) {
    side = {
      label: t('compare.panelChunk'),
      content: (
        <NeighbourPanel
          report={panel.report}
          queryText={panel.queryText}
          written={panel.influenced.tokens}
          writtenIsGenerated={panel.influenced.generated}
          onClose={close}
          onExclude={exclude}
          excluded={isExcluded}
        />
      ),
    };
  }

  // Announced once per column as it finishes (each line is added, so a screen reader reads only the new one).
  const finished = (Object.entries(runs) as [ModelKey, RunState | undefined][]).filter(([, r]) => r && r.status !== 'running' && r.status !== 'waiting');
  const lessonIndex = lesson ? LESSONS.indexOf(lesson.lesson) : -1;
  const stepWritten = lesson !== null && writtenStep === `${lesson.lesson.id}:${lesson.step}`;
  const hasRuns = Object.keys(runs).length > 0 && !generating;

  const settingsBoxes = (
    <div className="settings-grid">
      <DecodingControls value={settings.decoding} onChange={(decoding) => setSettings((s) => ({ ...s, decoding }))} disabled={generating} />
      <RetroControls
        value={settings.retro}
        onChange={(r) => setSettings((s) => ({ ...s, retro: r }))}
        model={retro}
        activeDatastoreId={activeId}
        disabled={generating}
      />
      <KnnControls value={settings.knn} onChange={(knn) => setSettings((s) => ({ ...s, knn }))} disabled={generating} />
      <IcRalmControls
        value={settings.icralm}
        onChange={(icralm) => setSettings((s) => ({ ...s, icralm }))}
        activeDatastoreName={active?.name ?? null}
        disabled={generating}
      />
      <ReplugControls
        value={settings.replug}
        onChange={(replug) => setSettings((s) => ({ ...s, replug }))}
        activeDatastoreName={active?.name ?? null}
        disabled={generating}
      />
      <FlareControls
        value={settings.flare}
        onChange={(flare) => setSettings((s) => ({ ...s, flare }))}
        activeDatastoreName={active?.name ?? null}
        disabled={generating}
      />
      <ExperimentControls settings={settings} onChange={setSettings} knnOn={knnOn} disabled={generating} />
    </div>
  );

  return (
    <section className="compare" aria-label={t('compare.region')}>
      {settingsSlot && createPortal(settingsBoxes, settingsSlot)}
      {lesson && !presenter && (
        <LessonBar
          lesson={lesson.lesson}
          step={lesson.step}
          index={lessonIndex}
          count={LESSONS.length}
          preparing={preparing ?? (building ? t('lesson.buildingAny') : null)}
          busy={generating || preparing !== null}
          written={stepWritten}
          onStep={(i) => void applyStep(lesson.lesson, i)}
          onClose={() => setLesson(null)}
        />
      )}
      <form className="prompt-form panel" onSubmit={onSubmit}>
        <div className="prompt-row">
          <label htmlFor={promptId} className="prompt-label">
            {t('compare.prompt')}
          </label>
          <label className="lesson-picker">
            <span className="hint">{t('compare.lesson')}</span>
            <select
              data-testid="lesson-picker"
              value={lesson?.lesson.id ?? ''}
              disabled={generating || preparing !== null || !ready}
              onChange={(e) => {
                const picked = findLesson(e.target.value);
                if (picked) void applyStep(picked, 0);
                else setLesson(null);
              }}
            >
              <option value="">{t('compare.noLesson')}</option>
              {LESSONS.map((l, i) => (
                <option key={l.id} value={l.id}>
                  {i + 1}. {localized(l.title)}
                </option>
              ))}
            </select>
          </label>
        </div>
        <textarea
          id={promptId}
          data-testid="prompt"
          lang="en"
          value={prompt}
          rows={2}
          onChange={(e) => setPrompt(e.target.value)}
          onKeyDown={onPromptKey}
          placeholder={t('compare.placeholder')}
          aria-describedby={`${promptId}-keys`}
        />
        <div className="prompt-actions">
          <button type="submit" className="primary" data-testid="generate" disabled={!ready || generating || preparing !== null || prompt.trim() === ''}>
            {t('compare.generate')}
          </button>
          <button type="button" data-testid="stop" onClick={() => client.stop()} disabled={!generating}>
            {t('compare.stop')}
          </button>
          <span id={`${promptId}-keys`} className="hint keys-hint">
            <Trans i18nKey="compare.keys" components={[<kbd key="0" />, <kbd key="1" />, <kbd key="2" />, <kbd key="3" />]} />
          </span>
          <span className="examples">
            <span className="hint">{t('compare.try')}</span>
            {EXAMPLES.map((e) => (
              <button
                key={e.label}
                type="button"
                lang={e.label === 'Free text' ? undefined : 'en'}
                className="link-button"
                disabled={generating}
                title={e.datastore ? t('compare.exampleDatastore', { id: e.datastore }) : undefined}
                onClick={() => {
                  setPrompt(e.text);
                  if (e.datastore && activeId !== e.datastore && retrieval?.datastores.some((d) => d.id === e.datastore)) void client.setActive(e.datastore);
                }}
              >
                {e.label === 'Free text' ? t('compare.freeText') : e.label}
              </button>
            ))}
          </span>
          <span className="share">
            <button type="button" className="link-button" data-testid="copy-link" onClick={() => void copyLink()}>
              {copied ? t('compare.copied') : t('compare.copyLink')}
            </button>
            <button type="button" className="link-button" data-testid="export-md" disabled={!hasRuns} onClick={() => exportAs('md')}>
              {t('compare.exportMd')}
            </button>
            <button type="button" className="link-button" data-testid="export-json" disabled={!hasRuns} onClick={() => exportAs('json')}>
              {t('compare.exportJson')}
            </button>
          </span>
        </div>
      </form>

      <div className={`stage${side ? ' stage-with-panel' : ''}`}>
        <div className={`columns${columnCount > 2 ? ' columns-many' : ''}`} style={{ '--columns': columnCount } as CSSProperties} data-testid="columns">
          <OutputColumn
            modelKey="gpt"
            model={gpt}
            run={runs.gpt}
            generating={generating}
            selectedChunk={null}
            onSelectChunk={() => undefined}
            selectedToken={selectedToken('gpt')}
            onSelectToken={toggleToken('gpt')}
          />
          <OutputColumn
            modelKey="retro"
            model={retro}
            run={retroRun}
            generating={generating}
            selectedChunk={selectedChunk}
            onSelectChunk={toggleChunk}
            chunkHintId={chunkHintId}
            selectedToken={selectedToken('retro')}
            onSelectToken={toggleToken('retro')}
          />
          {knnOn && (
            <OutputColumn
              modelKey="knnlm"
              model={gpt && knnModel ? { ...methodModel('wt2_test_knnlm')!, name: `${gpt.name} + “${knnModel.name}”` } : gpt}
              run={knnRun}
              generating={generating}
              selectedChunk={null}
              onSelectChunk={() => undefined}
              selectedToken={selectedToken('knnlm')}
              onSelectToken={toggleToken('knnlm')}
            />
          )}
          {settings.icralm.enabled && (
            <OutputColumn
              modelKey="icralm"
              name="In-Context RALM"
              model={icralmModel}
              run={icralmRun}
              generating={generating}
              selectedChunk={null}
              onSelectChunk={() => undefined}
              selectedToken={selectedToken('icralm')}
              onSelectToken={toggleToken('icralm')}
              body={icralmRun && ((picker) => <IcRalmText run={icralmRun} selected={selectedPassage('icralm')} onSelect={togglePassage('icralm')} picker={picker} />)}
            />
          )}
          {settings.replug.enabled && (
            <OutputColumn
              modelKey="replug"
              name="REPLUG"
              model={methodModel('wt2_test_replug')}
              run={replugRun}
              generating={generating}
              selectedChunk={null}
              onSelectChunk={() => undefined}
              selectedToken={selectedToken('replug')}
              onSelectToken={toggleToken('replug')}
              body={replugRun && ((picker) => <IcRalmText run={replugRun} selected={selectedPassage('replug')} onSelect={togglePassage('replug')} picker={picker} />)}
            />
          )}
          {settings.flare.enabled && (
            <OutputColumn
              modelKey="flare"
              name="FLARE"
              model={methodModel('wt2_test_flare')}
              run={flareRun}
              generating={generating}
              selectedChunk={null}
              onSelectChunk={() => undefined}
              selectedToken={selectedToken('flare')}
              onSelectToken={toggleToken('flare')}
              body={flareRun && ((picker) => <FlareText run={flareRun} selected={selectedPassage('flare')} onSelect={togglePassage('flare')} picker={picker} />)}
            />
          )}
        </div>
        {side && (
          <SidePanel label={side.label} onClose={close}>
            {side.content}
          </SidePanel>
        )}
      </div>
      {ready && <ThoroughDecoding prompt={prompt} initial={settings.replug} hasDatastore={activeId !== null} />}
      <span id={chunkHintId} hidden>
        {t('compare.chunkHint')}
      </span>
      <div className="visually-hidden" aria-live="polite" data-testid="announcer">
        {finished.map(([key, run]) => (
          <p key={key}>
            {run!.status === 'done'
              ? t('compare.finished', { column: COLUMN_TITLES[key], count: run!.generated.length })
              : run!.status === 'stopped'
                ? t('compare.stoppedAnnounce', { column: COLUMN_TITLES[key], count: run!.generated.length })
                : t('compare.failedAnnounce', { column: COLUMN_TITLES[key] })}
          </p>
        ))}
      </div>
      {!side && !generating && !presenter && (
        <p className="hint center">
          {retroRun && retroRun.chunks.length > 0 && `${t('compare.hintChunk')} `}
          {Object.values(runs).some((r) => r && r.generated.length > 0) && `${t('compare.hintToken')} `}
          {icralmRun && icralmRun.chunks.length > 0 && t('compare.hintPassage')}
        </p>
      )}
    </section>
  );
}
