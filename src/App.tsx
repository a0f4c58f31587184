import { CompareView } from './features/compare/CompareView';
import { DatastorePanel } from './features/datastores/DatastorePanel';
import { Notices } from './features/notices/Notices';
import { StatusBar } from './features/status/StatusBar';
import { BackendPicker } from './features/status/BackendPicker';

export function App() {
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to the prompt
      </a>
      <header className="app-header">
        <div className="brand">
          <h1>
            Retro<span>Lab</span>
          </h1>
          <p className="tagline">See what retrieval does to a language model — GPT and RETRO side by side, all in your browser.</p>
        </div>
        <BackendPicker />
      </header>
      <StatusBar />
      <Notices />
      <div className="layout">
        <main id="main" className="main">
          <CompareView />
        </main>
        <DatastorePanel />
      </div>
      <footer className="app-footer">
        Models and datastores run locally in Web Workers; nothing you type or load leaves this machine.
      </footer>
    </div>
  );
}
