/**
 * The engines' APIs (src/core/engine) and everything that crosses them: requests that carry all
 * their settings, progress as one union tagged by `kind`, and display-ready payloads. The workers
 * expose the engines unchanged with Comlink (workers/wire.ts adds the two MessagePort links), so
 * the UI, the Node tools and the tests call the same methods. Plain data only (structured clone).
 */
import type { IcRalmSettings } from './icralm';
import type { ReplugSettings, ReplugTokenShare } from './replug';
import type { RagSequenceBlock, RagSequenceDecodeEvent, RagSequenceDecodeRequest, RagSequenceDecodeResult, RagSequenceSettings } from './ragseq';
import type { FlareLookaheadToken, FlareSettings } from './flare';
import type { ExplainOptions, KnnLmSettings, KnnTokenExplanation } from './knnlm';
import type { Backend, BackendInfo, RetroSettings } from './model';
import type { IndexKind, RetrieverKind } from './retrieval';
import type { DocumentFormat } from './shard';

export type { IcRalmSettings } from './icralm';
export type { ReplugSettings, ReplugTokenShare } from './replug';
export type { RagSequenceBlock, RagSequenceCandidate, RagSequenceDecodeEvent, RagSequenceDecodeRequest, RagSequenceDecodeResult, RagSequenceSettings } from './ragseq';
export type { FlareLookaheadToken, FlareSettings } from './flare';
export type { ExplainOptions, KnnEntryView, KnnLmSettings, KnnTokenExplanation, LambdaTable, TokenProbability } from './knnlm';
// Rejections cross as SerializedError {name, message, code} (workers/wire.ts).
export type { Backend, BackendInfo, RetroSettings, SerializedError } from './model';
export type { IndexKind, RetrieverKind } from './retrieval';

/**
 * 'icralm': In-Context RALM, the GPT with a retrieved chunk before its context (src/core/icralm);
 * 'replug': REPLUG, the GPT run once per top-k passage and the runs mixed (src/core/replug);
 * 'flare': FLARE, the GPT that looks ahead and retrieves only when a look-ahead token is unsure (src/core/flare);
 * 'ragseq': RAG-Sequence, REPLUG's passages mixed per sequence by their posterior (src/core/ragseq;
 * the lens and the eval: it is no compare column, its generation is thorough decoding).
 */
export type ModelKey = 'gpt' | 'retro' | 'knnlm' | 'icralm' | 'replug' | 'flare' | 'ragseq';

/** What every progress event has, whatever it reports on. */
export interface ProgressFields {
  /** Stable key of the thing in progress, e.g. 'model:gpt:decoder.onnx', 'datastore:wikitext-2-train', 'build'. */
  target: string;
  label: string;
  done: number;
  /** null while the total is unknown */
  total: number | null;
  unit: 'bytes' | 'chunks' | 'documents' | 'steps' | 'tokens';
  /** chunks (tokens, for kNN-LM keys) per second while building */
  rate?: number;
  /** estimated seconds left */
  etaSeconds?: number;
  phase?: string;
  finished: boolean;
}

/**
 * One union for everything that loads or builds, tagged by `kind`:
 * - 'model': a model's graph file downloading, then compiling (`phase: 'compiling'`);
 * - 'datastore-copy': a built-in datastore copied from the server into this browser;
 * - 'datastore-open': a stored datastore decoded and indexed to become the active one;
 * - 'index': the active datastore's index rebuilt for another index kind;
 * - 'build': a datastore built from the user's files (chunks, then kNN-LM keys);
 * - 'knn-open': a kNN-LM datastore decoded for the GPT;
 * - 'bm25-index': the active datastore's BM25 index built, the first time a BM25 search asks for it.
 */
export type Progress =
  | (ProgressFields & { kind: 'model'; model: ModelKey; file: string })
  | (ProgressFields & { kind: 'datastore-copy'; datastoreId: string })
  | (ProgressFields & { kind: 'datastore-open'; datastoreId: string })
  | (ProgressFields & { kind: 'index'; indexKind: IndexKind })
  | (ProgressFields & { kind: 'build' })
  | (ProgressFields & { kind: 'knn-open'; datastoreId: string })
  | (ProgressFields & { kind: 'bm25-index'; datastoreId: string });

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
  /** Present when the shard also holds kNN-LM sections (keys of one GPT's weights). */
  knnlm?: KnnSectionInfo;
}

/** What a shard's kNN-LM sections hold (from its header, no keys read). */
export interface KnnSectionInfo {
  entries: number;
  /** stored key dims (after PCA) */
  dim: number;
  /** id of the GPT whose keys these are, and its decoder's sha256 */
  model: string;
  decoderSha256: string;
}

/** The built-in kNN-LM datastore the server offers (public/datastores/index.json), copied in on first use. */
export interface KnnDefaultInfo {
  id: string;
  name: string;
  description: string;
  /** file size: what the first use copies into this browser */
  bytes: number;
  knnlm: KnnSectionInfo;
  /** the chunk datastore made from the same text */
  baseId: string;
  /** already copied into IndexedDB */
  stored: boolean;
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
  /** null when the server has no kNN-LM datastore (not built: `npm run setup:knn`) */
  knnDefault: KnnDefaultInfo | null;
  /** Which kNN-LM keys serve the active datastore, as the retrieval engine decides (the client only shows it). */
  knn: KnnSources;
}

/** A datastore whose kNN-LM keys can be loaded: a stored one, or the built-in one not yet copied in. */
export interface KnnSourceInfo {
  id: string;
  name: string;
  stored: boolean;
  /** file size: what a first use copies into this browser when not `stored` */
  bytes: number;
}

/** What each use of kNN-LM keys reads for the active datastore, or null when nothing serves it. */
export interface KnnSources {
  /**
   * The kNN-LM column: the active datastore's own keys, else the built-in kNN-LM datastore (a
   * datastore of other text is still a datastore to interpolate with).
   */
  knnlm: KnnSourceInfo | null;
  /**
   * Token-aligned RETRO: the active datastore's own keys, or the built-in ones when they were made
   * from the active datastore's text; never another text's (RETRO's neighbours must come from the
   * datastore the user picked). When not null it is the same datastore as `knnlm`.
   */
  retro: KnnSourceInfo | null;
}

export type KnnUse = keyof KnnSources;

export interface TokenView {
  id: number;
  text: string;
  /** Generated tokens: the probability the column's model gave this token (before the decoding rules). */
  probability?: number;
  /** Generated tokens: the model's most likely tokens at this step, most likely first. */
  alternatives?: { id: number; text: string; probability: number }[];
  /** REPLUG's tokens: each passage's weight and the probability its run gave this token. */
  passages?: ReplugTokenShare[];
  /** kNN-LM's tokens: false when RetoMaton's pointers gave the neighbours (no search ran). */
  searched?: boolean;
  /** kNN-LM's tokens: true when the adaptive rule skipped the search (the GPT was confident, λ = 0). */
  knnSkipped?: boolean;
  /** kNN-LM's tokens: the λ this token was mixed with (0 when skipped; by distance when adaptive). */
  knnLambda?: number;
}

/** A retrieved chunk as the UI shows it (what the model itself read is model.ts's NeighbourView). */
export interface NeighbourDisplay {
  docId: number;
  title: string;
  chunkIndex: number;
  /** cosine distance to the query (dense); NaN when BM25 found it (see `score`) or for random neighbours */
  distance: number;
  /** Which retriever found it; absent: dense (RETRO's neighbours are always dense). */
  retriever?: RetrieverKind;
  /** BM25 score (bigger is better) when `retriever` is 'bm25' */
  score?: number;
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
  neighbours: NeighbourDisplay[];
  /** Embedding + index query time in the retrieval engine */
  latencyMs: number;
}

export interface BuildRequest {
  name: string;
  /** `File` is a global in browsers and in Node 20 alike. */
  files: File[];
  /** Also run the GPT over the text for kNN-LM keys (in the inference engine), stored in the same shard. */
  knnKeys?: boolean;
  /**
   * Each file's format; default from its name. The app offers .txt, .md and .jsonl; a WikiText dump
   * is for the Node tools (RetrievalEngineOptions.builds).
   */
  format?: DocumentFormat;
  /** The shard's description; default: the files it was built from. */
  description?: string;
  /** The vector index stored in the shard (default flat). */
  index?: IndexKind;
}

/**
 * The retrieval engine (src/core/engine/retrieval.ts). The worker adds the MessagePort links
 * (workers/wire.ts): `neighbourPort` serves `neighbourServer` to the inference worker, and
 * `keyBuilderPort` reaches the inference worker's `keyBuilder`. In one thread: RetrievalLinks.
 */
export interface RetrievalApi {
  /** Opens IndexedDB, copies the default datastores in on first launch, loads the active one. */
  init(baseUrl: string, onProgress: ProgressCallback): Promise<RetrievalState>;
  state(): Promise<RetrievalState>;
  setActive(id: string, onProgress?: ProgressCallback): Promise<RetrievalState>;
  setIndexKind(kind: IndexKind, onProgress?: ProgressCallback): Promise<RetrievalState>;
  /**
   * Chunks of the active datastore for a piece of text (the datastore search box, tests). Dense
   * embeds the text's last chunk of tokens; BM25 matches all its words, and builds the datastore's
   * BM25 index on first use (`onProgress` reports it as 'bm25-index').
   */
  retrieveText(text: string, k: number, excludeDocIds?: number[], retriever?: RetrieverKind, onProgress?: ProgressCallback): Promise<RetrieveResult>;
  build(request: BuildRequest, onProgress: ProgressCallback): Promise<RetrievalState & { built: DatastoreInfo }>;
  /**
   * Runs the GPT over a stored chunk datastore's text and stores its kNN-LM keys in it (what
   * `knnKeys` adds to a build), so kNN-LM and token-aligned RETRO can use it. Cancelled by
   * cancelBuild; the datastore is unchanged until the keys are stored.
   */
  addKnnKeys(id: string, onProgress: ProgressCallback): Promise<RetrievalState & { updated: DatastoreInfo }>;
  cancelBuild(): void;
  /** Copies deleted built-in datastores back in. */
  restoreDefaults(onProgress: ProgressCallback): Promise<RetrievalState>;
  importFile(file: File): Promise<RetrievalState & { imported: DatastoreInfo }>;
  exportFile(id: string): Promise<File>;
  remove(id: string): Promise<RetrievalState>;
}

/** What the retrieval engine serves to the inference engine (over a MessageChannel between the workers). */
export interface NeighbourServer {
  /** `options.random`: k chunks drawn at random (seeded by the query ids) instead of the nearest, excluded documents skipped; `options.retriever` 'bm25' matches the words of their decoded text. */
  retrieve(chunkTokenIds: number[], k: number, excludeDocIds: number[], options?: RetrieveControls): Promise<RetrievedForModel>;
  /** The documents of the active datastore the prompt comes from (the leakage control): see PromptSources. */
  promptSources(promptIds: number[]): Promise<PromptSources>;
  /**
   * The shard bytes of a stored datastore with kNN-LM sections, transferred (not copied). The
   * built-in kNN-LM datastore (KnnDefaultInfo.id) is copied into IndexedDB first if it is not yet.
   */
  knnShard(id: string, onProgress?: ProgressCallback): Promise<KnnShardBytes>;
  /** The kNN-LM keys each use reads for the active datastore (RetrievalState.knn). */
  knnSources(): Promise<KnnSources>;
}

/** How a retrieval is made beyond its query, k and exclusions. */
/** How a retrieval is made: the random-neighbour control, and the retriever (default 'dense'). */
export interface RetrieveControls {
  random?: boolean;
  retriever?: RetrieverKind;
}

/** A document of a datastore that a prompt comes from. */
export interface PromptSource {
  docId: number;
  title: string;
}

/**
 * The leakage control's search (docs/controls.md): the documents of one datastore that hold at least
 * half of the prompt's 8-token pieces (its first token left out, whose tokens depend on the text
 * before it). `known` false: the datastore cannot say (kNN-LM keys stored without their text
 * offsets have no document boundaries); `documents` is then empty.
 */
export interface PromptSources {
  known: boolean;
  documents: PromptSource[];
  /** the prompt's 8-token pieces searched for (0: the prompt is too short to find its document) */
  pieces: number;
}

/** The experiment controls a column ran with (GenerationEvent 'start'), for its badges. */
export interface ColumnControls {
  /** random neighbours or passages instead of the nearest */
  random: boolean;
  /** GenerateRequest.excludePromptDocument: what this column's datastore said about the prompt's documents, which were excluded */
  promptSources?: PromptSources;
}

/**
 * A stored kNN-LM datastore for the inference engine: its bytes, or a Blob to read section by
 * section (how kNN-LM-only shards are stored: the file is never held whole).
 */
export type KnnShardBytes = { id: string; name: string } & ({ bytes: Uint8Array } | { blob: Blob });

/** Served by the inference engine (it has the GPT) to the retrieval engine (it stores the result). */
export interface KnnKeyBuilder {
  /** Attaches kNN-LM sections to an encoded chunk shard; resolves to the new shard bytes. Rejects with name 'AbortError' on cancel. */
  attachKeys(shardBytes: Uint8Array, onProgress: ProgressCallback): Promise<Uint8Array>;
  cancel(): void;
}

export interface RetrievedForModel {
  /** Per neighbour: chunk + continuation ids, padded by the datastore to 2C with eot */
  tokenIds: number[][];
  views: NeighbourDisplay[];
  latencyMs: number;
  datastoreId: string;
}

// ---------------------------------------------------------------------------------------------
// Inference worker

/** A loaded model as the UI describes it (what the model reports about itself is model.ts's ModelInfo). */
export interface ModelDescription {
  key: ModelKey;
  id: string;
  name: string;
  architecture: 'gpt' | 'retro';
  parameters: string;
  context: number;
  chunk: number | null;
  neighbours: number | null;
  /** RETRO only: true when it retrieves token-aligned neighbours with the GPT's kNN-LM keys (manifest `retrieval`) */
  tokenAligned: boolean;
  metrics: Record<string, { token_ppl: number; word_ppl: number }>;
}

export interface InferenceReady {
  backend: BackendInfo;
  models: ModelDescription[];
}

export interface DecodingSettings {
  strategy: 'greedy' | 'sample';
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  maxTokens: number;
  /** Never write `<unk>` (Hugging Face `suppress_tokens`); perplexity still scores it. */
  suppressUnk: boolean;
  /** `repetition_penalty`; 1 = off */
  repetitionPenalty: number;
  /** `no_repeat_ngram_size`; 0 = off */
  noRepeatNgramSize: number;
  /** Stop at the end-of-text token (default true); the reading tests write their full length. */
  stopAtEndOfText?: boolean;
}

export interface GenerateRequest {
  prompt: string;
  /**
   * The prompt as token ids, used instead of encoding `prompt` (npm run eval:generate: prompts cut
   * from a tokenized text, which encoding their decoded text may not give back).
   */
  promptIds?: number[];
  models: ModelKey[];
  decoding: DecodingSettings;
  retro: RetroSettings;
  /** λ, k, T of the 'knnlm' column */
  knn: KnnLmSettings;
  /** s and l of the 'icralm' column; its passages come from the active datastore */
  icralm: IcRalmSettings;
  /** k, τ, s and l of the 'replug' column; its passages come from the active datastore */
  replug: ReplugSettings;
  /** look-ahead, θ, β and l of the 'flare' column (the defaults of src/core/flare when absent) */
  flare?: FlareSettings;
  /**
   * The leakage control (docs/controls.md): every retrieval column excludes the documents of its own
   * datastore the prompt comes from (PromptSources), as well as `retro.excludeDocIds`. Default false.
   */
  excludePromptDocument?: boolean;
}

/** The kNN-LM model the inference engine holds (the GPT wrapped with one kNN-LM datastore). */
export interface KnnModelState {
  datastoreId: string;
  name: string;
  entries: number;
  dim: number;
  /** decode + index build time */
  openMs: number;
  /** The search the kNN-LM (and token-aligned RETRO) uses by default: the shard's IVF lists when it has them, else the exact scan. */
  index: 'exact' | 'ivf';
  /** IVF lists in the shard, and how many a search scans (0 without lists). */
  lists: number;
  nprobe: number;
}

/** A token's explanation with display text for every token id in it. */
export interface KnnExplanationView extends KnnTokenExplanation {
  /** display text of each token id that appears in the explanation */
  tokenTexts: Record<number, string>;
}

export interface ChunkReport {
  /** Chunk index u in the model's token sequence (which starts at position 0 with any padding) */
  chunk: number;
  /** Token positions [start, end) of the query chunk in the model's sequence */
  start: number;
  end: number;
  neighbours: NeighbourDisplay[];
  /** REPLUG: each neighbour's weight in the mixture, in the order of `neighbours` */
  weights?: number[];
  /**
   * FLARE: the decision at `end` (the block's first position): the GPT's look-ahead, which of its
   * tokens were below θ (they triggered the retrieval; empty: confident, nothing retrieved) and the
   * masked query's text.
   */
  flare?: { lookahead: (FlareLookaheadToken & { text: string })[]; triggers: number[]; retrieved: boolean; queryText: string; threshold: number; maskBelow: number };
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
      /** Retrieval columns: the experiment controls this run used */
      controls?: ColumnControls;
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

// Perplexity lens ------------------------------------------------------------------------------

/** The lens refuses longer texts (the whole WikiText-2 test set is about 308k tokens). */
export const LENS_MAX_TOKENS = 320_000;
/** Checked before tokenizing, so a huge file is refused at once (wiki.test.tokens is 1.26 MB). */
export const LENS_MAX_CHARS = 1_500_000;

export interface ScoreRequest {
  text: string;
  /** Rows to score, in order; 'knnlm' needs a loaded kNN-LM datastore. */
  models: ModelKey[];
  /** RETRO's neighbours per chunk (<= the model's K); retrieval off when false or no datastore is active. */
  retro: { retrieval: boolean; k: number };
  /** λ, k, T of the 'knnlm' row: the row's result depends on nothing a Compare run left behind. */
  knn: KnnLmSettings;
  /** s and l of the 'icralm' row */
  icralm: IcRalmSettings;
  /** k, τ, span and l of the 'ragseq' row (default: DEFAULT_RAG_SEQUENCE_SETTINGS) */
  ragSequence?: RagSequenceSettings;
}

/**
 * A corpus-scale perplexity run (npm run eval; the app's curves later): the lens's protocol without the
 * lens's limits, for one model, by docs/manifest.md (windows of the context, stride 128).
 */
export interface EvalRequest {
  /** WikiText-formatted text (a split file): tokenized article by article, scored as one stream */
  text: string;
  model: ModelKey;
  /** RETRO: neighbours per chunk; `random` draws them from the datastore instead of searching (seeded) */
  retro: { retrieval: boolean; k: number; random?: boolean; seed?: number };
  /** kNN-LM: the headline settings; `sweep` adds more, mixed from the same forward and searches */
  knn: KnnLmSettings & { sweep?: KnnLmSettings[] };
  /**
   * In-Context RALM: `strides` adds more retrieval strides s scored on the same targets, and the GPT
   * alone on them (the stride curve). Each stride is its own pass: its blocks, so its forwards, differ.
   */
  icralm: IcRalmSettings & { strides?: number[] };
  replug: ReplugSettings;
  /** 'ragseq' (default: DEFAULT_RAG_SEQUENCE_SETTINGS) */
  ragSequence?: RagSequenceSettings;
  /** FLARE's look-ahead, θ, β, l (src/core/flare defaults when absent) */
  flare?: FlareSettings;
  /** windows per forward (default 4) */
  batch?: number;
  /** the first N windows of the protocol only */
  maxWindows?: number;
  /** windows [start, end) of the protocol only: a part of a run, which npm run eval:merge joins (GPT, RETRO, kNN-LM) */
  windows?: { start: number; end: number };
}

export interface EvalResult {
  model: ModelKey;
  name: string;
  /** tokens of the stream, and its WikiText words */
  tokens: number;
  words: number;
  /** tokens of each article, in order (paired bootstrap resamples articles) */
  articleLengths: number[];
  /** windows scored, and in the whole protocol */
  windows: number;
  totalWindows: number;
  scoredTokens: number;
  nll: number;
  tokenPpl: number;
  /** over the words in proportion to the tokens scored when only part of the text was (`wordPplEstimated`) */
  wordPpl: number;
  wordPplEstimated: boolean;
  /** log p(token j + 1) at index j (length tokens - 1), NaN for targets not scored */
  logProbs: Float32Array;
  /** where RETRO's neighbours or the passages came from; null without retrieval */
  datastoreId: string | null;
  /** kNN-LM: the GPT on the same targets, every setting of the sweep; searches RetoMaton's pointers skipped and the adaptive rule (θ) saved */
  knnlm?: { gpt: { nll: number; tokenPpl: number }; sweep: { settings: KnnLmSettings; nll: number; tokenPpl: number }[]; targetInNeighbours: number; searchesSkipped: number; searchesSaved: number };
  /** In-Context RALM with `icralm.strides`: the GPT alone on the same targets and each stride (the request's first) */
  icralm?: { gpt: { nll: number; tokenPpl: number }; strides: { stride: number; nll: number; tokenPpl: number; blocks: number; retrieved: number }[] };
  /** In-Context RALM, REPLUG, FLARE and RAG-Sequence: blocks, forwards and retrievals; RAG-Sequence's mean largest posterior after each sequence */
  passages?: { blocks: number; forwards: number; retrieved?: number; meanTopWeight?: number; lookaheadAccuracy?: number; meanTopPosterior?: number };
  seconds: number;
}

export interface ModelScore {
  model: ModelKey;
  name: string;
  /**
   * log p(token j | the most context the eval protocol gives it), natural log, one per token of
   * `ScoreResult.tokens`; NaN for the first token, which has no context and is not scored.
   */
  logProbs: Float32Array;
  nll: number;
  scoredTokens: number;
  tokenPpl: number;
  /** exp(nll / words), words by the eval's rule (docs/manifest.md) */
  wordPpl: number;
  /** RETRO: whether neighbours were retrieved; the datastore they came from */
  retrieval?: { datastoreId: string | null };
  /** RAG-Sequence: each sequence's passages, prior and posterior per token */
  ragSequence?: { blocks: RagSequenceBlock[] };
  seconds: number;
}

export interface ScoreResult {
  tokens: TokenView[];
  words: number;
  windows: number;
  scores: ModelScore[];
}

export type ScoreEvent =
  | { type: 'tokenized'; tokens: number; words: number; windows: number }
  | {
      type: 'progress';
      model: ModelKey;
      /** scored tokens, over all requested models */
      done: number;
      total: number;
      etaSeconds: number | null;
    };

export type ScoreCallback = (event: ScoreEvent) => void;

/**
 * The inference engine (src/core/engine/inference.ts). The worker adds the MessagePort links
 * (workers/wire.ts): `neighbourPort` reaches the retrieval worker's NeighbourServer, and
 * `keyBuilderPort` serves `keyBuilder` to it. In one thread: InferenceLinks.
 */
export interface InferenceApi {
  /** `wasmThreads`: onnxruntime-web's WASM threads (default: core/runtime's defaultWasmThreads when the page is cross-origin isolated, else 1). */
  init(baseUrl: string, preferredBackend: Backend | 'auto', onProgress: ProgressCallback, options?: { wasmThreads?: number }): Promise<InferenceReady>;
  generate(request: GenerateRequest, onEvent: GenerationCallback): Promise<void>;
  stop(): void;
  /** Token ids of `text` with the loaded models' tokenizer (no special tokens added); rejects before `init` finished. */
  encode(text: string): Promise<number[]>;
  /** Inverse of `encode`: special tokens kept, no clean-up of spaces; rejects before `init` finished. */
  decode(ids: number[]): Promise<string>;
  /**
   * Loads the kNN-LM keys that `use` reads for the active datastore (the retrieval engine says which:
   * KnnSources) and wraps the GPT with them (KnnDatastore.checkModel refuses other weights). A no-op
   * when they are loaded; null when the active datastore has none for that use (for 'knnlm' the
   * keys of a previous datastore are then let go, so the column cannot answer from them).
   */
  loadKnnFor(use: KnnUse, onProgress: ProgressCallback): Promise<KnnModelState | null>;
  unloadKnn(): Promise<void>;
  /**
   * Why the kNN-LM column predicted the token after sequence position `position` (from its latest
   * generation). `options.settings` re-mixes with other λ / T / smaller k without running the model.
   * `chosenTokenId` (the token the column wrote there) is checked against that run.
   */
  explainKnn(position: number, options?: ExplainOptions, chosenTokenId?: number): Promise<KnnExplanationView>;
  /** GPT tokens per second for building kNN-LM keys here (one timed window, cached). */
  keyRate(): Promise<number>;
  /**
   * Perplexity lens: per-token log-probabilities of `text` under each model by the eval protocol
   * (src/core/eval). Rejects empty or too long text, and while a generation runs; `stopScore`
   * makes it reject with name 'AbortError'. The logProbs buffers are transferred.
   */
  score(request: ScoreRequest, onEvent: ScoreCallback): Promise<ScoreResult>;
  stopScore(): void;
  /**
   * Perplexity of a whole text for one model with the loaded models and the active datastore (as
   * the lens, without its limits): `npm run eval` runs it in Node. Holds the GPT as the lens does;
   * stopScore stops it. `onProgress` gets targets scored of the targets to score.
   */
  evaluate(request: EvalRequest, onProgress: (done: number, total: number) => void): Promise<EvalResult>;
  /**
   * RAG-Sequence's thorough decoding of a continuation of `prompt` with the active datastore's top-k
   * passages (src/core/ragseq/decode.ts). Holds the GPT as a generation does; `stop` stops it.
   */
  ragSequenceDecode(request: RagSequenceDecodeRequest, onEvent: (event: RagSequenceDecodeEvent) => void): Promise<RagSequenceDecodeResult>;
}

/**
 * How the two engines reach each other in one thread (tests, CLIs). The workers make the same two
 * links over MessagePorts (workers/wire.ts), so the engines never know which it is.
 */
export interface InferenceLinks {
  /** The retrieval engine's NeighbourServer: RETRO's neighbours, In-Context RALM's passages, kNN-LM shards. */
  connect(server: NeighbourServer): void;
  /** What the retrieval engine calls to add kNN-LM keys to a datastore it builds. */
  readonly keyBuilder: KnnKeyBuilder;
}

export interface RetrievalLinks {
  readonly neighbourServer: NeighbourServer;
  useKeyBuilder(builder: KnnKeyBuilder): void;
}
