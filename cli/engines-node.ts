/**
 * The app's two engines in one Node thread, linked directly (the browser links the same two over
 * MessagePorts): they read public/ as the browser fetches it, and keep the datastore catalogue in
 * an in-memory IndexedDB (fake-indexeddb), so a tool gets the browser's behaviour, numbers and
 * messages without a browser. Each run starts with a fresh catalogue holding the built-in datastores
 * (unless `builtIns: false`: a tool that only builds a datastore). Builds are the tools' (TOOL_BUILDS):
 * whole corpora, WikiText dumps too, not capped by a tab's memory.
 */
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { InferenceReady, Progress, RetrievalState } from '../src/protocol/api';
import type { BackendPreference } from '../src/protocol/model';
import { REPO_ROOT } from '../src/core/datastore/node';
import { DatastoreStore } from '../src/core/datastore/store';
import { InferenceEngine } from '../src/core/engine/inference';
import { nodeFolder } from '../src/core/engine/node-folder';
import { RetrievalEngine, TOOL_BUILDS } from '../src/core/engine/retrieval';
import type { KeyBatchModel } from '../src/core/knnlm/build';

/** What `fetch` would resolve against in the browser; the folders read from `publicDir` instead. */
const BASE_URL = 'http://retrolab.local/';

export interface EngineOptions {
  /** default: the repository's public/ */
  publicDir?: string;
  onProgress?: (p: Progress) => void;
  /** copy the built-in datastores into the catalogue at start (default true) */
  builtIns?: boolean;
  /** Threads for the models (default 1) */
  threads?: number;
  /** cpu (onnxruntime-node, cli/backend.ts) or wasm (default: the app's kernels) */
  backend?: BackendPreference;
  /** Key datastores with this model (cli/key-pool.ts) instead of the engine's GPT session. */
  keyModel?: KeyBatchModel;
}

export interface NodeRetrieval {
  retrieval: RetrievalEngine;
  /** The retrieval state after start-up: the built-in datastores, the active one. */
  state: RetrievalState;
  dispose(): Promise<void>;
}

export interface NodeEngines extends NodeRetrieval {
  inference: InferenceEngine;
  /** The loaded models and their backend. */
  ready: InferenceReady;
}

let stores = 0;

function retrievalEngine(options: EngineOptions): RetrievalEngine {
  const folder = nodeFolder(options.publicDir ?? join(REPO_ROOT, 'public'));
  const voyWasm = readFileSync(createRequire(import.meta.url).resolve('voy-search/voy_search_bg.wasm'));
  return new RetrievalEngine({
    folder,
    voyWasm: () => voyWasm,
    openStore: () => DatastoreStore.open(`retrolab-node-${process.pid}-${stores++}`),
    builds: TOOL_BUILDS,
    installBuiltIns: options.builtIns ?? true,
  });
}

/** The retrieval engine alone: building, importing and searching datastores need no model session. */
export async function startRetrieval(options: EngineOptions = {}): Promise<NodeRetrieval> {
  const retrieval = retrievalEngine(options);
  const state = await retrieval.init(BASE_URL, options.onProgress ?? (() => undefined));
  return { retrieval, state, dispose: async () => retrieval.dispose() };
}

export async function startEngines(options: EngineOptions = {}): Promise<NodeEngines> {
  const retrieval = retrievalEngine(options);
  const inference = new InferenceEngine({ folder: nodeFolder(options.publicDir ?? join(REPO_ROOT, 'public')), wasmThreads: options.threads ?? 1, ...(options.keyModel ? { keyModel: options.keyModel } : {}) });
  inference.connect(retrieval.neighbourServer);
  retrieval.useKeyBuilder(inference.keyBuilder);
  const onProgress = options.onProgress ?? (() => undefined);
  const [state, ready] = await Promise.all([retrieval.init(BASE_URL, onProgress), inference.init(BASE_URL, options.backend ?? 'wasm', onProgress)]);
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

