import { useEffect, useId, useMemo, useState, type CSSProperties, type FormEvent, type KeyboardEvent } from 'react';
import { useAppState, useClient, type ModelInfo, type ModelKey, type NeighbourView } from '../../client';
import { NeighbourPanel } from '../neighbours/NeighbourPanel';
import { KnnControls } from '../knnlm/KnnControls';
import { TokenDistribution } from '../knnlm/TokenDistribution';
import { explainPosition } from '../knnlm/format';
import { IcRalmControls } from '../icralm/IcRalmControls';
import { IcRalmText } from '../icralm/IcRalmText';
import { tokensServedBy } from '../icralm/blocks';
import { tokensInfluencedBy } from './chunks';
import { DecodingControls } from './DecodingControls';
import { OutputColumn } from './OutputColumn';
import { RetroControls } from './RetroControls';
import { loadSettings, saveSettings, type CompareSettings } from './settings';

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

export function CompareView() {
  const client = useClient();
  const promptId = useId();
  const phase = useAppState((s) => s.phase);
  const models = useAppState((s) => s.models);
  const runs = useAppState((s) => s.runs);
  const generating = useAppState((s) => s.generating);
  const retrieval = useAppState((s) => s.retrieval);
  const [prompt, setPrompt] = useState(EXAMPLES[0]!.text);
  const [settings, setSettings] = useState<CompareSettings>(loadSettings);
  const [selectedChunk, setSelectedChunk] = useState<number | null>(null);
  const [selectedToken, setSelectedToken] = useState<number | null>(null);
  const [selectedPassage, setSelectedPassage] = useState<number | null>(null);
  const knnOn = useAppState((s) => client.knnEnabled(s));
  const knnModel = useAppState((s) => s.knn.model);

  useEffect(() => saveSettings(settings), [settings]);

  // Esc stops generation from anywhere on the page.
  useEffect(() => {
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.key === 'Escape') client.stop();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [client]);

  const gpt = models.find((m) => m.key === 'gpt');
  const retro = models.find((m) => m.key === 'retro');
  const activeId = retrieval?.activeId ?? null;
  // In-Context RALM reads the active datastore; without one the column would have nothing to show.
  const icralmOn = settings.icralm.enabled && activeId !== null;
  const ready = phase === 'ready' && models.length > 0;

  const generate = () => {
    if (!ready || generating || prompt.trim() === '') return;
    setSelectedChunk(null);
    setSelectedToken(null);
    setSelectedPassage(null);
    const { exclusions, ...retroSettings } = settings.retro;
    const models: ModelKey[] = ['gpt', 'retro'];
    if (knnOn && knnModel) models.push('knnlm');
    if (icralmOn) models.push('icralm');
    void client.generate({
      prompt,
      models,
      knn: settings.knn,
      icralm: { stride: settings.icralm.stride, queryLength: settings.icralm.queryLength },
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

  const columnCount = 2 + (knnOn ? 1 : 0) + (settings.icralm.enabled ? 1 : 0);
  const retroRun = runs.retro;
  const knnRun = runs.knnlm;
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

  const icralmRun = runs.icralm;
  // The same GPT; the perplexity shown is In-Context RALM's own (cli/eval.ts --icralm), once measured.
  const icralmMetric = gpt?.metrics.wt2_test_icralm;
  const icralmModel: ModelInfo | undefined = gpt && { ...gpt, metrics: icralmMetric ? { wt2_test: icralmMetric } : {} };
  const passagePanel = useMemo(() => {
    if (selectedPassage === null || !icralmRun) return null;
    const at = icralmRun.chunks.findIndex((c) => c.chunk === selectedPassage);
    const report = icralmRun.chunks[at];
    if (!report) return null;
    const sequence = [...icralmRun.prefix, ...icralmRun.prompt, ...icralmRun.generated];
    const served = tokensServedBy(report, icralmRun.chunks[at + 1], sequence, settings.icralm.stride);
    const queryText = sequence
      .slice(report.start, report.end)
      .map((t) => t.text)
      .join('');
    return { report, queryText, served };
  }, [selectedPassage, icralmRun, settings.icralm.stride]);

  const exclude = (n: NeighbourView) => {
    if (!activeId) return;
    setSettings((s) => ({
      ...s,
      retro: { ...s.retro, exclusions: [...s.retro.exclusions, { datastoreId: activeId, docId: n.docId, title: n.title }] },
    }));
  };
  const isExcluded = (docId: number) => settings.retro.exclusions.some((e) => e.datastoreId === activeId && e.docId === docId);

  return (
    <section className="compare" aria-label="Compare GPT and RETRO">
      <form className="prompt-form panel" onSubmit={onSubmit}>
        <label htmlFor={promptId} className="prompt-label">
          Prompt
        </label>
        <textarea
          id={promptId}
          data-testid="prompt"
          value={prompt}
          rows={3}
          onChange={(e) => setPrompt(e.target.value)}
          onKeyDown={onPromptKey}
          placeholder="Type the start of a text; both models continue it."
          aria-describedby={`${promptId}-keys`}
        />
        <div className="prompt-actions">
          <button type="submit" className="primary" data-testid="generate" disabled={!ready || generating || prompt.trim() === ''}>
            Generate
          </button>
          <button type="button" data-testid="stop" onClick={() => client.stop()} disabled={!generating}>
            Stop
          </button>
          <span id={`${promptId}-keys`} className="hint">
            <kbd>Enter</kbd> generates · <kbd>Shift</kbd>+<kbd>Enter</kbd> new line · <kbd>Esc</kbd> stops
          </span>
          <span className="examples">
            <span className="hint">Try:</span>
            {EXAMPLES.map((e) => (
              <button
                key={e.label}
                type="button"
                className="link-button"
                disabled={generating}
                title={e.datastore ? `Also makes the ${e.datastore} datastore active` : undefined}
                onClick={() => {
                  setPrompt(e.text);
                  if (e.datastore && activeId !== e.datastore && retrieval?.datastores.some((d) => d.id === e.datastore)) void client.setActive(e.datastore);
                }}
              >
                {e.label}
              </button>
            ))}
          </span>
        </div>
      </form>

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
          activeDatastoreName={retrieval?.datastores.find((d) => d.id === activeId)?.name ?? null}
          disabled={generating}
        />
      </div>

      <div className={`columns${columnCount > 2 ? ' columns-many' : ''}`} style={{ '--columns': columnCount } as CSSProperties}>
        <OutputColumn modelKey="gpt" model={gpt} run={runs.gpt} generating={generating} selectedChunk={null} onSelectChunk={() => undefined} />
        <OutputColumn
          modelKey="retro"
          model={retro}
          run={retroRun}
          generating={generating}
          selectedChunk={selectedChunk}
          onSelectChunk={(c) => setSelectedChunk((current) => (current === c ? null : c))}
        />
        {knnOn && (
          <OutputColumn
            modelKey="knnlm"
            model={gpt && knnModel ? { ...gpt, name: `${gpt.name} + “${knnModel.name}”`, metrics: {} } : gpt}
            run={knnRun}
            generating={generating}
            selectedChunk={null}
            onSelectChunk={() => undefined}
            selectedToken={selectedToken}
            onSelectToken={(i) => setSelectedToken((current) => (current === i ? null : i))}
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
            body={
              icralmRun && (
                <IcRalmText run={icralmRun} selected={selectedPassage} onSelect={(b) => setSelectedPassage((current) => (current === b ? null : b))} />
              )
            }
          />
        )}
      </div>
      {knnOn && knnRun && knnRun.generated.length > 0 && selectedToken === null && !generating && (
        <p className="hint center">Click a kNN-LM token (or focus it and press Enter) to see p_LM, p_kNN and their mixture, and the stored contexts that voted.</p>
      )}
      {knnRun && selectedToken !== null && knnRun.generated[selectedToken] && (
        <TokenDistribution
          position={explainPosition(knnRun.prefix.length, knnRun.prompt.length, selectedToken)}
          token={knnRun.generated[selectedToken]}
          onClose={() => setSelectedToken(null)}
        />
      )}
      {icralmRun && icralmRun.chunks.length > 0 && !passagePanel && !generating && (
        <p className="hint center">Click a ¶ mark in the In-Context RALM column (or focus it and press Enter) to see the passage placed before the GPT's context from there on.</p>
      )}
      {passagePanel && (
        <NeighbourPanel
          report={passagePanel.report}
          queryText={passagePanel.queryText}
          written={passagePanel.served}
          writtenIsGenerated={passagePanel.report.end >= (icralmRun?.prefix.length ?? 0) + (icralmRun?.prompt.length ?? 0)}
          onClose={() => setSelectedPassage(null)}
          onExclude={exclude}
          excluded={isExcluded}
          labels={{
            id: 'icralm-passage',
            heading: (
              <>
                In-Context RALM passage {passagePanel.report.chunk + 1}{' '}
                <span className="muted">
                  (before the context from token {passagePanel.report.end}; query tokens {passagePanel.report.start}–{passagePanel.report.end - 1})
                </span>
              </>
            ),
            queryLabel: 'Query (last l tokens)',
            modelName: 'In-Context RALM',
          }}
        />
      )}
      {retroRun && retroRun.chunks.length > 0 && !panel && (
        <p className="hint center">Click a highlighted RETRO chunk (or focus it and press Enter) to see the neighbours it retrieved.</p>
      )}
      {panel && (
        <NeighbourPanel
          report={panel.report}
          queryText={panel.queryText}
          written={panel.influenced.tokens}
          writtenIsGenerated={panel.influenced.generated}
          onClose={() => setSelectedChunk(null)}
          onExclude={exclude}
          excluded={isExcluded}
        />
      )}
    </section>
  );
}
