/**
 * The app's two engines in one Node thread, linked directly (the browser links the same two over
 * MessagePorts): they read public/ as the browser fetches it, and keep the datastore catalogue in
 * an in-memory IndexedDB (fake-indexeddb), so a tool gets the browser's behaviour, numbers and
 * messages without a browser. Each run starts with a fresh catalogue holding the built-in datastores.
 */
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { InferenceReady, Progress, RetrievalState } from '../src/protocol/api';
import { REPO_ROOT } from '../src/core/datastore/node';
import { DatastoreStore } from '../src/core/datastore/store';
import { InferenceEngine } from '../src/core/engine/inference';
import { nodeFolder } from '../src/core/engine/node-folder';
import { RetrievalEngine } from '../src/core/engine/retrieval';

/** What `fetch` would resolve against in the browser; the folders read from `publicDir` instead. */
const BASE_URL = 'http://retrolab.local/';

export interface NodeEngines {
  inference: InferenceEngine;
  retrieval: RetrievalEngine;
  /** The retrieval state after start-up: the built-in datastores, the active one. */
  state: RetrievalState;
  /** The loaded models and their backend. */
  ready: InferenceReady;
  dispose(): Promise<void>;
}

export async function startEngines(options: { publicDir?: string; onProgress?: (p: Progress) => void } = {}): Promise<NodeEngines> {
  const folder = nodeFolder(options.publicDir ?? join(REPO_ROOT, 'public'));
  const voyWasm = readFileSync(createRequire(import.meta.url).resolve('voy-search/voy_search_bg.wasm'));
  const retrieval = new RetrievalEngine({ folder, voyWasm: () => voyWasm, openStore: () => DatastoreStore.open(`retrolab-node-${process.pid}`) });
  const inference = new InferenceEngine({ folder });
  inference.connect(retrieval.neighbourServer);
  retrieval.useKeyBuilder(inference.keyBuilder);
  const onProgress = options.onProgress ?? (() => undefined);
  const [state, ready] = await Promise.all([retrieval.init(BASE_URL, onProgress), inference.init(BASE_URL, 'wasm', onProgress)]);
  return {
    inference,
    retrieval,
    state,
    ready,
    async dispose() {
      await inference.dispose();
      retrieval.dispose();
    },
  };
}
