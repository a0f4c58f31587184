import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import './i18n';
import { App } from './App';
import { ClientContext, RetroLabClient, installTestHook } from './client';
import './styles.css';

function preferredBackend(): 'auto' | 'webgpu' | 'wasm' {
  const wanted = new URLSearchParams(location.search).get('backend');
  return wanted === 'webgpu' || wanted === 'wasm' ? wanted : 'auto';
}

const client = new RetroLabClient(new URL(import.meta.env.BASE_URL, location.href).href, preferredBackend());
installTestHook(client);
void client.start();

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <ClientContext.Provider value={client}>
      <App />
    </ClientContext.Provider>
  </StrictMode>,
);
