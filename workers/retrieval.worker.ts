/// <reference lib="webworker" />
/** The retrieval worker: src/core/engine/retrieval.ts behind Comlink, linked to the inference worker. */
import * as Comlink from 'comlink';
// eslint-disable-next-line no-restricted-imports -- a Vite asset URL, which only the bundled worker entry can resolve; src/core/retrieval/voy.ts takes it as an argument
import voyWasmUrl from 'voy-search/voy_search_bg.wasm?url';
import { RetrievalEngine } from '../src/core/engine/retrieval';
import { installErrorTransfer, remoteKeyBuilder, serve, type RetrievalWorkerApi } from './wire';

installErrorTransfer();
const engine = new RetrievalEngine({ transfer: Comlink.transfer, voyWasm: () => fetch(voyWasmUrl) });

const api: RetrievalWorkerApi = Object.assign(engine, {
  // The inference worker reads neighbours and kNN-LM shards here, never through the UI thread.
  neighbourPort: (port: MessagePort) => serve(engine.neighbourServer, port),
  keyBuilderPort: (port: MessagePort) => engine.useKeyBuilder(remoteKeyBuilder(port)),
});

Comlink.expose(api);
