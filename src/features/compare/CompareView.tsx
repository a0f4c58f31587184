import { useEffect, useId, useMemo, useState, type FormEvent, type KeyboardEvent } from 'react';
import { useAppState, useClient, type NeighbourView } from '../../client';
import { NeighbourPanel } from '../neighbours/NeighbourPanel';
import { tokensInfluencedBy } from './chunks';
import { DecodingControls } from './DecodingControls';
import { OutputColumn } from './OutputColumn';
import { RetroControls } from './RetroControls';
import { loadSettings, saveSettings, type CompareSettings } from './settings';

// WikiText-style prompts (spaces around punctuation, as the models were trained). The first two
// open articles of the WikiText-2 datastore, so RETRO's neighbours visibly hold the continuation.
const EXAMPLES: { label: string; text: string }[] = [
  {
    label: 'Simon Bradstreet',
    text: 'Simon Bradstreet ( baptized March 18 , 1603 / 4 – March 27 , 1697 ) was a colonial magistrate , businessman , diplomat , and the last governor of the Massachusetts Bay Colony .',
  },
  {
    label: 'Cyclone Graham',
    text: 'Cyclone Graham of the 2002 – 03 Australian region cyclone season was a weak tropical storm that affected Australia during late February and early March 2003 .',
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
  const ready = phase === 'ready' && models.length > 0;

  const generate = () => {
    if (!ready || generating || prompt.trim() === '') return;
    setSelectedChunk(null);
    const { exclusions, ...retroSettings } = settings.retro;
    void client.generate({
      prompt,
      models: ['gpt', 'retro'],
      decoding: settings.decoding,
      retro: {
        ...retroSettings,
        k: Math.min(retroSettings.k, retro?.neighbours ?? retroSettings.k),
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

  const retroRun = runs.retro;
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
              <button key={e.label} type="button" className="link-button" onClick={() => setPrompt(e.text)}>
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
      </div>

      <div className="columns">
        <OutputColumn modelKey="gpt" model={gpt} run={runs.gpt} generating={generating} selectedChunk={null} onSelectChunk={() => undefined} />
        <OutputColumn
          modelKey="retro"
          model={retro}
          run={retroRun}
          generating={generating}
          selectedChunk={selectedChunk}
          onSelectChunk={(c) => setSelectedChunk((current) => (current === c ? null : c))}
        />
      </div>
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
