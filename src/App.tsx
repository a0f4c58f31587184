import { useEffect, useRef, useState } from 'react';
import { CompareView } from './features/compare/CompareView';
import { LensView } from './features/lens/LensView';
import { CurvesView } from './features/curves/CurvesView';
import { Tabs, tabPanelProps } from './ui/Tabs';
import { DatastorePanel } from './features/datastores/DatastorePanel';
import { Notices } from './features/notices/Notices';
import { StatusBar } from './features/status/StatusBar';
import { BackendPicker } from './features/status/BackendPicker';
import { decodeState } from './features/share/urlState';
import { useTranslation } from 'react-i18next';
import { LANGUAGES, currentLanguage } from './i18n';
import { UpdatePrompt } from './features/offline/UpdatePrompt';

type View = 'compare' | 'lens' | 'curves';

/** Typing in a field must not toggle presenter mode. */
function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

export function App() {
  const { t, i18n } = useTranslation();
  const VIEWS: { key: View; label: string }[] = [
    { key: 'compare', label: t('app.compare') },
    { key: 'lens', label: t('app.lens') },
    { key: 'curves', label: t('app.curves') },
  ];
  const [view, setView] = useState<View>('compare');
  const [initial] = useState(() => decodeState(location.search));
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [presenter, setPresenter] = useState(false);
  // The drawer's body is where CompareView portals its settings boxes; a state (not a ref) so it re-renders when mounted.
  const [settingsSlot, setSettingsSlot] = useState<HTMLElement | null>(null);
  const drawerRef = useRef<HTMLElement>(null);
  const settingsButton = useRef<HTMLButtonElement>(null);

  // P toggles presenter mode, so a teacher can switch without finding the button on a projector.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key.toLowerCase() !== 'p' || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
      event.preventDefault();
      setPresenter((on) => !on);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const openSettings = (open: boolean) => {
    setSettingsOpen(open);
    if (open) requestAnimationFrame(() => drawerRef.current?.focus());
    else settingsButton.current?.focus();
  };

  return (
    <div className={`app${presenter ? ' presenter' : ''}${settingsOpen && !presenter ? ' with-drawer' : ''}`}>
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
        {t('app.skip')}
      </a>
      <header className="app-header">
        <div className="brand">
          <h1>
            Retro<span>Lab</span>
          </h1>
          <p className="tagline">{t('app.tagline')}</p>
        </div>
        {!presenter && <StatusBar />}
        <div className="toolbar">
          {!presenter && <BackendPicker />}
          {!presenter && (
            <button
              ref={settingsButton}
              type="button"
              aria-expanded={settingsOpen}
              aria-controls="settings-drawer"
              data-testid="settings-toggle"
              onClick={() => openSettings(!settingsOpen)}
            >
              {t('app.settings')}
            </button>
          )}
          <label className="language-picker">
            <span className="visually-hidden">{t('app.language')}</span>
            <select value={currentLanguage()} onChange={(e) => void i18n.changeLanguage(e.target.value)} data-testid="language">
              {LANGUAGES.map((l) => (
                <option key={l.code} value={l.code} lang={l.code === 'zh' ? 'zh-Hans' : 'en'}>
                  {l.label}
                </option>
              ))}
            </select>
          </label>
          <button type="button" aria-pressed={presenter} aria-keyshortcuts="P" data-testid="presenter-toggle" onClick={() => setPresenter((on) => !on)}>
            {presenter ? t('app.presenterOff') : t('app.presenterOn')} <kbd>P</kbd>
          </button>
        </div>
      </header>
      <Notices />
      <UpdatePrompt />
      <div className="layout">
        <main id="main" className="main">
          <Tabs id="view" label={t('app.views')} items={VIEWS} selected={presenter ? 'compare' : view} onSelect={setView} />
          {/* Both stay mounted: switching tabs keeps the prompt, the outputs and the lens result. */}
          <div {...tabPanelProps('view', 'compare', presenter ? 'compare' : view)}>
            <CompareView initial={initial} settingsSlot={settingsSlot} presenter={presenter} />
          </div>
          <div {...tabPanelProps('view', 'lens', presenter ? 'compare' : view)}>
            <LensView active={view === 'lens' && !presenter} />
          </div>
          <div {...tabPanelProps('view', 'curves', presenter ? 'compare' : view)}>
            <CurvesView active={view === 'curves' && !presenter} />
          </div>
        </main>
        {/* Kept mounted when closed, so a build or a kNN-LM download in it keeps its progress. */}
        <aside
          id="settings-drawer"
          ref={drawerRef}
          className="drawer"
          aria-label={t('app.settings')}
          tabIndex={-1}
          hidden={!settingsOpen || presenter}
          data-testid="settings-drawer"
          onKeyDown={(event) => {
            if (event.key === 'Escape') {
              event.stopPropagation();
              openSettings(false);
            }
          }}
        >
          <header className="drawer-header">
            <h2>{t('app.settingsTitle')}</h2>
            <button type="button" className="icon-button" aria-label={t('app.closeSettings')} onClick={() => openSettings(false)}>
              ×
            </button>
          </header>
          <div ref={setSettingsSlot} />
          <DatastorePanel />
        </aside>
      </div>
      {!presenter && (
        <footer className="app-footer">
          {t('app.footer')}
        </footer>
      )}
    </div>
  );
}
