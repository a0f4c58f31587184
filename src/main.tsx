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

/**
 * `?threads=N` (1-16): onnxruntime-web's WASM threads instead of the default (defaultWasmThreads in
 * core/runtime: one on 2 cores, where it mostly decoded faster than two but built kNN-LM keys 1.9x slower).
 */
function wasmThreads(): number | undefined {
  const n = Number(new URLSearchParams(location.search).get('threads'));
  return Number.isInteger(n) && n >= 1 && n <= 16 ? n : undefined;
}

const client = new RetroLabClient(new URL(import.meta.env.BASE_URL, location.href).href, preferredBackend(), wasmThreads());
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
