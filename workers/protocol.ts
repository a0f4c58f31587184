/**
 * The two worker APIs as the UI sees them (types only). Both workers `expose()` an object of this
 * shape with Comlink; src/client wraps them. Payloads are plain data (structured-cloneable), already
 * decoded for display, so the UI thread never tokenizes, retrieves or runs a model.
 */

export type ModelKey = 'gpt' | 'retro';
export type Backend = 'webgpu' | 'wasm';
export type IndexKind = 'flat' | 'voy';

export interface BackendInfo {
  backend: Backend;
  /** Why this backend: adapter found and self-check passed, no adapter, forced by the user... */
  reason: string;
}

/** One progress event shape for everything that loads or builds. */
export interface Progress {
  /** Stable key of the thing in progress, e.g. 'model:gpt', 'datastore:wikitext-2-train', 'build'. */
  target: string;
  label: string;
  done: number;
  /** null while the total is unknown */
  total: number | null;
  unit: 'bytes' | 'chunks' | 'documents' | 'steps';
  /** chunks per second while building */
  rate?: number;
  /** estimated seconds left */
  etaSeconds?: number;
  phase?: string;
  finished: boolean;
}

export type ProgressCallback = (progress: Progress) => void;

// ---------------------------------------------------------------------------------------------
// Retrieval worker

export interface DatastoreInfo {
  id: string;
  name: string;
  origin: 'default' | 'custom' | 'imported';
  bytes: number;
  chunks: number;
  documents: number;
  createdAt: number;
  description?: string;
  embedderFingerprint?: string;
}

export interface StorageInfo {
  usage: number | null;
  quota: number | null;
  persisted: boolean | null;
}

export interface RetrievalState {
  datastores: DatastoreInfo[];
  activeId: string | null;
  indexKind: IndexKind;
  storage: StorageInfo;
  /** Built-in datastores the server offers that this browser does not hold (deleted) */
  missingDefaults: string[];
  /** Problems that did not stop the app (e.g. default datastores missing), shown as notices. */
  notices: string[];
}

export interface TokenView {
  id: number;
  text: string;
}

export interface NeighbourView {
  docId: number;
  title: string;
  chunkIndex: number;
  distance: number;
  /** The retrieved chunk's text, detokenized for display */
  text: string;
  /** The next chunk of the same document: the part RETRO can copy from */
  continuationText: string;
  /** Chunk + continuation ids (real tokens only, no padding), decoded one by one */
  tokens: TokenView[];
  /** How many of `tokens` belong to the chunk; the rest are the continuation */
  chunkLength: number;
}

export interface RetrieveResult {
  neighbours: NeighbourView[];
  /** Embedding + index query time in the retrieval worker */
  latencyMs: number;
}

export interface BuildRequest {
  name: string;
  files: File[];
}

export interface RetrievalWorkerApi {
  /** Opens IndexedDB, copies the default datastores in on first launch, loads the active one. */
  init(baseUrl: string, onProgress: ProgressCallback): Promise<RetrievalState>;
  state(): Promise<RetrievalState>;
  setActive(id: string, onProgress?: ProgressCallback): Promise<RetrievalState>;
  setIndexKind(kind: IndexKind, onProgress?: ProgressCallback): Promise<RetrievalState>;
  /** Neighbours of a piece of text from the active datastore (the neighbour inspector, tests). */
  retrieveText(text: string, k: number, excludeDocIds?: number[]): Promise<RetrieveResult>;
  build(request: BuildRequest, onProgress: ProgressCallback): Promise<RetrievalState & { built: DatastoreInfo }>;
  cancelBuild(): void;
  /** Copies deleted built-in datastores back in. */
  restoreDefaults(onProgress: ProgressCallback): Promise<RetrievalState>;
  importFile(file: File): Promise<RetrievalState & { imported: DatastoreInfo }>;
  exportFile(id: string): Promise<File>;
  remove(id: string): Promise<RetrievalState>;
  /** Serves `retrieve` to the inference worker over this port (Comlink on both ends). */
  connect(port: MessagePort): void;
}

/** What the retrieval worker serves to the inference worker over the MessageChannel. */
export interface NeighbourServer {
  retrieve(chunkTokenIds: number[], k: number, excludeDocIds: number[]): Promise<RetrievedForModel>;
}

export interface RetrievedForModel {
  /** Per neighbour: chunk + continuation ids, padded by the datastore to 2C with eot */
  tokenIds: number[][];
  views: NeighbourView[];
  latencyMs: number;
  datastoreId: string;
}

// ---------------------------------------------------------------------------------------------
// Inference worker

export interface ModelInfo {
  key: ModelKey;
  id: string;
  name: string;
  architecture: 'gpt' | 'retro';
  parameters: string;
  context: number;
  chunk: number | null;
  neighbours: number | null;
  metrics: Record<string, { token_ppl: number; word_ppl: number }>;
}

export interface InferenceReady {
  backend: BackendInfo;
  models: ModelInfo[];
}

export interface DecodingSettings {
  strategy: 'greedy' | 'sample';
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  maxTokens: number;
}

export interface RetroSettings {
  retrieval: boolean;
  k: number;
  /** Re-retrieve every `retrievalStep` tokens (the chunk size by default) */
  retrievalStep: number;
  /** Pad short prompts on the left so the first chunk completes and retrieval starts at once */
  leftPad: boolean;
  /** RETRO++: put the top neighbour's text into the decoder context before the prompt */
  retroPlusPlus: boolean;
  excludeDocIds: number[];
}

export interface GenerateRequest {
  prompt: string;
  models: ModelKey[];
  decoding: DecodingSettings;
  retro: RetroSettings;
}

export interface ChunkReport {
  /** Chunk index u in the model's token sequence (which starts at position 0 with any padding) */
  chunk: number;
  /** Token positions [start, end) of the query chunk in the model's sequence */
  start: number;
  end: number;
  neighbours: NeighbourView[];
  latencyMs: number;
}

export type GenerationEvent =
  | {
      type: 'start';
      model: ModelKey;
      /** Tokens before the prompt that the model sees: left padding or RETRO++ context */
      prefix: TokenView[];
      prompt: TokenView[];
      chunk: number | null;
      /** Prefix tokens with this id are left padding (end-of-text), drawn compactly */
      paddingId: number;
    }
  | { type: 'tokens'; model: ModelKey; tokens: TokenView[]; tokensPerSecond: number }
  | { type: 'chunk'; model: ModelKey; report: ChunkReport }
  | {
      type: 'done';
      model: ModelKey;
      generated: number;
      tokensPerSecond: number;
      stopped: boolean;
      /** Total wall time of this model's run, prefill included */
      ms: number;
    };

export type GenerationCallback = (event: GenerationEvent) => void;

export interface InferenceWorkerApi {
  init(baseUrl: string, preferredBackend: Backend | 'auto', onProgress: ProgressCallback): Promise<InferenceReady>;
  /** The retrieval worker's NeighbourServer, for RETRO */
  connect(port: MessagePort): void;
  generate(request: GenerateRequest, onEvent: GenerationCallback): Promise<void>;
  stop(): void;
  /** Token ids of `text` with the loaded models' tokenizer (no special tokens added); rejects before `init` finished. */
  encode(text: string): Promise<number[]>;
  /** Inverse of `encode`: special tokens kept, no clean-up of spaces; rejects before `init` finished. */
  decode(ids: number[]): Promise<string>;
}
