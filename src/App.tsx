import { useState } from 'react';
import { CompareView } from './features/compare/CompareView';
import { LensView } from './features/lens/LensView';
import { Tabs, tabPanelProps } from './ui/Tabs';
import { DatastorePanel } from './features/datastores/DatastorePanel';
import { Notices } from './features/notices/Notices';
import { StatusBar } from './features/status/StatusBar';
import { BackendPicker } from './features/status/BackendPicker';

type View = 'compare' | 'lens';
const VIEWS: { key: View; label: string }[] = [
  { key: 'compare', label: 'Compare' },
  { key: 'lens', label: 'Perplexity lens' },
];

export function App() {
  const [view, setView] = useState<View>('compare');
  return (
    <div className="app">
      <a
        className="skip-link"
        href="#main"
        onClick={(event) => {
          // The link's promise is the prompt: focus it, not just the region around it.
          const prompt = document.querySelector<HTMLTextAreaElement>('[data-testid="prompt"]');
          if (prompt) {
            event.preventDefault();
            prompt.focus();
          }
        }}
      >
        Skip to the prompt
      </a>
      <header className="app-header">
        <div className="brand">
          <h1>
            Retro<span>Lab</span>
          </h1>
          <p className="tagline">See what retrieval does to a language model — GPT, RETRO and kNN-LM side by side, all in your browser.</p>
        </div>
        <BackendPicker />
      </header>
      <StatusBar />
      <Notices />
      <div className="layout">
        <main id="main" className="main">
          <Tabs id="view" label="Views" items={VIEWS} selected={view} onSelect={setView} />
          {/* Both stay mounted: switching tabs keeps the prompt, the outputs and the lens result. */}
          <div {...tabPanelProps('view', 'compare', view)}>
            <CompareView />
          </div>
          <div {...tabPanelProps('view', 'lens', view)}>
            <LensView active={view === 'lens'} />
          </div>
        </main>
        <DatastorePanel />
      </div>
      <footer className="app-footer">
        Models and datastores run locally in Web Workers; nothing you type or load leaves this machine.
      </footer>
    </div>
  );
}
