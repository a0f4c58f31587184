/**
 * The inference engine: loads GPT and RETRO with the runtime and streams their generations, hosts
 * the kNN-LM and In-Context RALM columns on the same GPT, and scores texts for the perplexity lens.
 * RETRO's neighbours and In-Context RALM's passages come from the retrieval engine's NeighbourServer
 * (`connect`), so the datastore lives in one place. The browser runs it in a worker
 * (workers/inference.worker.ts); Node tests run it in their own thread.
 *
 * The GPT has one ONNX session and one KV cache: every column, the lens, the kNN-LM key pass and the
 * key-rate measurement run on it one at a time, which `gptHolder` decides.
 */
import { isTokenAligned, keysMatchDecoder, type ModelManifest } from '../../protocol/manifest';
import type { ChunkRetrieval, GeneratedToken } from '../../protocol/model';
import type {
  Backend,
  BackendInfo,
  ChunkReport,
  ColumnControls,
  EvalRequest,
  EvalResult,
  ExplainOptions,
  GenerateRequest,
  GenerationCallback,
  InferenceApi,
  InferenceLinks,
  InferenceReady,
  KnnExplanationView,
  KnnKeyBuilder,
  KnnLmSettings,
  KnnModelState,
  KnnUse,
  ModelDescription,
  ModelKey,
  NeighbourDisplay,
  NeighbourServer,
  ProgressCallback,
  PromptSources,
  RagSequenceDecodeEvent,
  RagSequenceDecodeRequest,
  RagSequenceDecodeResult,
  ScoreCallback,
  ScoreRequest,
  ScoreResult,
  TokenView,
} from '../../protocol/api';
import { alignedNeighbourSource } from '../knnlm/aligned';
import { knnPromptSources } from '../knnlm/controls';
import { KnnLmModel } from '../knnlm/model';
import type { KeyBatchModel } from '../knnlm/build';
import { Runtime, type ModelFiles } from '../runtime';
import { GptModel, RetroModel, readManifest, type LanguageModel, type NeighbourSource, type RetrievedNeighbour } from '../models';
import { generate as runGeneration } from '../generate';
import { detokenizeWikiText, loadTokenizer, type RetroTokenizer } from '../tokenizer';
import { blockQuery, separatorTokens, trimPadding } from '../icralm';
import { passageWeights } from '../replug/types';
import { thoroughDecode, validateRagSequenceSettings } from '../ragseq';
import { TokenBytes, TokenTexts } from './token-text';
import { KnnHost } from './knnlm-host';
import { IcRalmHost } from './icralm-host';
import { ReplugHost } from './replug-host';
import { FlareHost } from './flare-host';
import { icRalmScorer, ragSequenceScorer, scoreText, serverEvalStore, type LensModel } from './score';
import { evaluateRequest } from './evaluate';
import { inThread, type Transfer } from './transfer';
import { fetchFolder, type FolderOpener } from './folder';

interface Loaded {
  key: ModelKey;
  model: LanguageModel;
  manifest: ModelManifest;
}

export interface InferenceEngineOptions {
  /** Default: fetch from `baseUrl` (the browser). Node passes its public/ folder (nodeFolder). */
  folder?: FolderOpener;
  /** Default: nothing crosses a thread. The worker passes Comlink's `transfer`. */
  transfer?: Transfer;
  /** WASM threads (default: the runtime's choice; Node tools pass their core count) */
  wasmThreads?: number;
  /**
   * Key datastores with this model instead of the loaded GPT session: `npm run setup:knn -- --workers N` passes its
   * pool of worker threads (cli/key-pool.ts). It must be the same GPT (the key host checks its decoder sha256).
   */
  keyModel?: KeyBatchModel;
}

const ALIGNED_NEEDS_KNN =
  'This RETRO retrieves with the GPT’s kNN-LM keys: the active datastore needs them. Use WikiText-2 train, or give your datastore kNN-LM keys (“Add kNN-LM keys” in the datastore list).';

/** How often streamed tokens are flushed to the UI: fewer messages, still smooth to the eye. */
const FLUSH_MS = 40;

/** What may hold the GPT session, and what a request that finds it held is told. */
type GptJob = 'generation' | 'lens' | 'keys';

/**
 * A request's kNN-LM settings as the whole of them: the optional ones it leaves out (RetoMaton's
 * pointers, the adaptive θ and λ table) are off, not whatever an earlier request set.
 */
function knnRequestSettings(knn: KnnLmSettings): KnnLmSettings {
  return { pointers: 0, skipAbove: 0, lambdaTable: undefined, search: undefined, randomNeighbours: false, ...knn };
}

/** The documents a column excludes for the leakage control: those its datastore found, none when it could not say. */
function sourceIds(controls: ColumnControls | undefined): number[] {
  return controls?.promptSources?.documents.map((d) => d.docId) ?? [];
}

export class InferenceEngine implements InferenceApi, InferenceLinks {
  private runtime: Runtime | null = null;
  private tokenizer: RetroTokenizer | null = null;
  private texts: TokenTexts | null = null;
  private readonly models = new Map<ModelKey, Loaded>();
  private server: NeighbourServer | null = null;
  private controller: AbortController | null = null;
  private scoreController: AbortController | null = null;
  /** Set at init from the RETRO manifest: its neighbours come from kNN-LM keys, not the chunk datastore. */
  private retroIsTokenAligned = false;
  /** Full neighbour views of the retrievals RETRO made, matched to its reports by query ids. */
  private pendingViews: { query: number[]; views: NeighbourDisplay[]; latencyMs: number }[] = [];
  private readonly folder: FolderOpener;
  private readonly transfer: Transfer;
  private readonly wasmThreads: number | undefined;
  private readonly knn: KnnHost;
  /** The 'icralm' column: the GPT with the active datastore's top chunk before its context. */
  private readonly icralm: IcRalmHost;
  /** The 'replug' column: the GPT run once per top-k passage of the active datastore, the runs mixed. */
  private readonly replug: ReplugHost;
  /** The 'flare' column: the GPT that looks ahead and retrieves only when a look-ahead token is unsure. */
  private readonly flare: FlareHost;
  private readonly alignedNeighbours: NeighbourSource;

  constructor(options: InferenceEngineOptions = {}) {
    this.folder = options.folder ?? fetchFolder;
    this.transfer = options.transfer ?? inThread;
    this.wasmThreads = options.wasmThreads;
    const passageDeps = { gpt: () => this.loadedGpt(), tokenizer: () => this.loadedTokenizer(), server: () => this.connectedServer() };
    this.icralm = new IcRalmHost(passageDeps);
    this.replug = new ReplugHost(passageDeps);
    this.flare = new FlareHost(passageDeps);
    this.knn = new KnnHost({
      gpt: () => this.loadedGpt(),
      tokenizer: () => this.loadedTokenizer(),
      texts: () => this.loadedTexts(),
      server: () => this.connectedServer(),
      busy: () => this.controller !== null || this.scoreController !== null,
      transfer: this.transfer,
      ...(options.keyModel ? { keyModel: options.keyModel } : {}),
    });
    /**
     * Token-aligned RETRO (src/core/knnlm/aligned.ts): the GPT's knn_key at the chunk's last token,
     * searched in the loaded kNN-LM datastore; a match at p gives the chunk ending at p and the chunk
     * after it. The GPT session is free here: the columns generate one after another.
     */
    this.alignedNeighbours = alignedNeighbourSource({
      queryGpt: () => this.loadedGpt(),
      datastore: () => this.knn.datastore,
      chunk: () => this.models.get('retro')!.manifest.hyperparameters.chunk!,
      missing: ALIGNED_NEEDS_KNN,
      onRetrieved: (query, kept, latencyMs) => {
        const tt = this.loadedTexts();
        const tk = this.loadedTokenizer();
        const C = this.models.get('retro')!.manifest.hyperparameters.chunk!;
        const views: NeighbourDisplay[] = kept.map(({ match: m, place, tokenIds }) => {
          const chunkLength = Math.min(C, tokenIds.length);
          const text = detokenizeWikiText(tk.decode(tokenIds.slice(0, chunkLength)));
          const continuationText = detokenizeWikiText(tk.decode(tokenIds.slice(chunkLength)));
          return { docId: place.docId, title: place.title, chunkIndex: m.entry, distance: m.distance, text, continuationText, tokens: tt.standalone(tokenIds), chunkLength };
        });
        this.pendingViews.push({ query: [...query], views, latencyMs });
      },
    });
  }

  /** RETRO's neighbours: token-aligned from the kNN-LM keys, else chunks from the retrieval engine. */
  private readonly neighbourSource: NeighbourSource = async (chunkTokenIds, k, options) => {
    if (this.retroIsTokenAligned) return this.alignedNeighbours(chunkTokenIds, k, options);
    const result = await this.connectedServer().retrieve(chunkTokenIds, k, [...(options.excludeDocIds ?? [])], { random: options.random === true });
    this.pendingViews.push({ query: [...chunkTokenIds], views: result.views, latencyMs: result.latencyMs });
    return result.tokenIds.map((tokenIds, i): RetrievedNeighbour => {
      const view = result.views[i];
      return view ? { tokenIds, distance: view.distance, title: view.title, text: view.text, docId: view.docId } : { tokenIds };
    });
  };

  /** What holds the GPT session now, if anything. */
  private gptHolder(): GptJob | null {
    if (this.controller) return 'generation';
    if (this.scoreController) return 'lens';
    if (this.knn.building) return 'keys';
    return null;
  }

  // --- InferenceLinks ---------------------------------------------------------------------------

  connect(server: NeighbourServer): void {
    this.server = server;
  }

  get keyBuilder(): KnnKeyBuilder {
    return this.knn.keyBuilder;
  }

  // --- InferenceApi -----------------------------------------------------------------------------

  async init(baseUrl: string, preferred: Backend | 'auto', onProgress: ProgressCallback, options: { wasmThreads?: number } = {}): Promise<InferenceReady> {
    const wasmThreads = options.wasmThreads ?? this.wasmThreads;
    const runtime = await Runtime.create({ prefer: preferred, ...(wasmThreads ? { wasmThreads } : {}) });
    this.runtime = runtime;
    const ids = await this.readIndex(baseUrl);
    const manifests: { files: ModelFiles; manifest: ModelManifest }[] = [];
    for (const id of ids) {
      const files = this.folder(baseUrl, `models/${id}/`);
      manifests.push({ files, manifest: await readManifest(files) });
    }
    const gptEntry = manifests.find((m) => m.manifest.architecture === 'gpt');
    const retroEntry = manifests.find((m) => m.manifest.architecture === 'retro');
    if (!gptEntry || !retroEntry) throw new Error('models/index.json must list one GPT and one RETRO model.');
    this.retroIsTokenAligned = isTokenAligned(retroEntry.manifest);
    if (this.retroIsTokenAligned && !keysMatchDecoder(gptEntry.manifest.onnx.decoder, retroEntry.manifest.retrieval!.query_decoder_sha256)) {
      throw new Error(`${retroEntry.manifest.id} queries with the knn_key of ${retroEntry.manifest.retrieval!.query_model} decoder ${retroEntry.manifest.retrieval!.query_decoder_sha256.slice(0, 12)}…, but the shipped GPT is ${gptEntry.manifest.onnx.decoder.sha256.slice(0, 12)}…: re-ship the pair.`);
    }

    const tokenizerFile = retroEntry.manifest.tokenizer.file;
    const tokenizerJson: unknown = JSON.parse(await retroEntry.files.text(tokenizerFile));
    this.tokenizer = loadTokenizer(tokenizerJson, { id: retroEntry.manifest.tokenizer.id });
    this.texts = new TokenTexts(new TokenBytes(tokenizerJson));

    // Sizes come from the manifest: a compressed or chunked response has no content-length.
    const reporter = (key: ModelKey, manifest: ModelManifest) => {
      const sizes = new Map<string, number>();
      for (const graph of [manifest.onnx.decoder, manifest.onnx.encoder]) if (graph) sizes.set(graph.file, graph.bytes);
      const report = (file: string, loaded: number, finished: boolean) => {
        const total = sizes.get(file) ?? null;
        onProgress({
          kind: 'model',
          model: key,
          file,
          target: `model:${key}:${file}`,
          label: `${manifest.name}: ${file}`,
          done: loaded,
          total,
          unit: 'bytes',
          phase: !finished && total !== null && loaded >= total ? 'compiling' : undefined,
          finished,
        });
      };
      return {
        onProgress: (file: string, loaded: number) => report(file, loaded, false),
        finish: () => sizes.forEach((bytes, file) => report(file, bytes, true)),
      };
    };
    // One after the other: two graphs compiling at once only slows both on a small machine.
    const gptProgress = reporter('gpt', gptEntry.manifest);
    const gpt = await GptModel.fromManifest(runtime, gptEntry.files, gptEntry.manifest, { onProgress: gptProgress.onProgress });
    gptProgress.finish();
    this.models.set('gpt', { key: 'gpt', model: gpt, manifest: gptEntry.manifest });
    const retroProgress = reporter('retro', retroEntry.manifest);
    const retro = await RetroModel.fromManifest(runtime, retroEntry.files, retroEntry.manifest, {
      onProgress: retroProgress.onProgress,
      neighbourSource: this.neighbourSource,
    });
    retroProgress.finish();
    this.models.set('retro', { key: 'retro', model: retro, manifest: retroEntry.manifest });
    const loaded = [...this.models.values()];
    return { backend: summarizeBackend(loaded), models: loaded.map((l) => describeModel(l.key, l.manifest)) };
  }

  async generate(request: GenerateRequest, onEvent: GenerationCallback): Promise<void> {
    const tokenizer = this.tokenizer;
    if (!tokenizer || !this.texts) throw new Error('The models are still loading.');
    const controller = await this.holdGptForGeneration();
    const signal = controller.signal;
    try {
      const promptIds = request.promptIds ?? tokenizer.encode(request.prompt);
      if (promptIds.length === 0) throw new RangeError('The prompt is empty after tokenization.');
      const sources = this.promptSourceFinder(promptIds, request.excludePromptDocument === true);
      for (const key of request.models) {
        const controls = await this.columnControls(key, request, sources);
        const excluded = sourceIds(controls);
        const loaded =
          key === 'knnlm' ? this.knnLoaded(request, excluded) : key === 'icralm' ? this.icralmLoaded(request, excluded) : key === 'replug' ? this.replugLoaded(request, excluded) : key === 'flare' ? this.flareLoaded(request, excluded) : this.models.get(key);
        if (!loaded) throw new Error(`Model ${key} is not loaded.`);
        if (signal.aborted) {
          await onEvent({ type: 'done', model: key, generated: 0, tokensPerSecond: 0, stopped: true, ms: 0 });
          continue;
        }
        await this.generateOne(loaded, promptIds, request, onEvent, signal, controls);
      }
    } finally {
      this.controller = null;
      this.pendingViews = [];
    }
  }

  stop(): void {
    this.controller?.abort();
  }

  /**
   * The leakage control's searches for one request, each run at most once: in the active chunk
   * datastore (In-Context RALM, REPLUG, FLARE, chunk RETRO) and in the loaded kNN-LM keys (kNN-LM,
   * token-aligned RETRO). Null when the request keeps the prompt's documents in.
   */
  private promptSourceFinder(promptIds: readonly number[], on: boolean): { chunks: () => Promise<PromptSources>; keys: () => PromptSources } | null {
    if (!on) return null;
    let chunks: Promise<PromptSources> | null = null;
    let keys: PromptSources | null = null;
    return {
      chunks: () => (chunks ??= this.connectedServer().promptSources([...promptIds])),
      keys: () => {
        const store = this.knn.datastore;
        // No keys loaded: the column fails with its own message; nothing can be said here.
        return (keys ??= store ? knnPromptSources(store, promptIds) : { known: false, documents: [], pieces: 0 });
      },
    };
  }

  /** What a retrieval column runs with beyond its own settings: the random control and the prompt's documents it excludes. */
  private async columnControls(key: ModelKey, request: GenerateRequest, sources: ReturnType<InferenceEngine['promptSourceFinder']>): Promise<ColumnControls | undefined> {
    const fromKeys = key === 'knnlm' || (key === 'retro' && this.retroIsTokenAligned);
    const random =
      key === 'retro' ? request.retro.randomNeighbours === true
      : key === 'knnlm' ? request.knn.randomNeighbours === true
      : key === 'icralm' ? request.icralm.randomNeighbours === true
      : key === 'replug' ? request.replug.randomNeighbours === true
      : key === 'flare' ? request.flare?.randomNeighbours === true
      : null;
    if (random === null || (key === 'retro' && !request.retro.retrieval)) return undefined;
    if (!sources) return { random };
    return { random, promptSources: fromKeys ? sources.keys() : await sources.chunks() };
  }

  async encode(text: string): Promise<number[]> {
    return this.loadedTokenizer().encode(text);
  }

  async decode(ids: number[]): Promise<string> {
    return this.loadedTokenizer().decode(ids);
  }

  async score(request: ScoreRequest, onEvent: ScoreCallback): Promise<ScoreResult> {
    const tk = this.loadedTokenizer();
    const controller = this.holdGptForScoring('scoring');
    try {
      const server = this.server;
      const result = await scoreText(
        request,
        {
          tokenizer: tk,
          tokenViews: (ids) => {
            const tt = this.loadedTexts();
            tt.start();
            return tt.views(ids);
          },
          model: (key) => this.lensModel(key, request),
          neighbours: server ? serverEvalStore(server) : null,
        },
        onEvent,
        controller.signal,
      );
      return this.transfer(result, result.scores.map((s) => s.logProbs.buffer as ArrayBuffer));
    } finally {
      this.scoreController = null;
    }
  }

  /** Takes the GPT for a generation (stop stops it), or says what holds it. */
  private async holdGptForGeneration(): Promise<AbortController> {
    // A speed measurement for the custom-datastore form may hold the GPT for a fraction of a second.
    await this.knn.idle();
    const holder = this.gptHolder();
    if (holder === 'generation') throw new Error('A generation is already running.');
    if (holder === 'keys') throw new Error('kNN-LM keys are being built with the GPT: wait for the datastore build to finish (or cancel it).');
    if (holder === 'lens') throw new Error('The perplexity lens is scoring a text: stop it (or wait) before generating.');
    const controller = new AbortController();
    this.controller = controller;
    return controller;
  }

  /** Takes the GPT for the lens or an evaluation (stopScore stops either), or says what holds it. */
  private holdGptForScoring(verb: string): AbortController {
    const holder = this.gptHolder();
    if (holder === 'generation') throw new Error(`A generation is running: stop it (or wait) before ${verb}.`);
    if (holder === 'keys') throw new Error('kNN-LM keys are being built with the GPT: wait for the datastore build to finish (or cancel it).');
    if (holder === 'lens') throw new Error('The lens is already scoring a text.');
    const controller = new AbortController();
    this.scoreController = controller;
    return controller;
  }

  stopScore(): void {
    this.scoreController?.abort();
  }

  async evaluate(request: EvalRequest, onProgress: (done: number, total: number) => void): Promise<EvalResult> {
    const controller = this.holdGptForScoring('evaluating');
    try {
      const tk = this.loadedTokenizer();
      const gpt = this.loadedGpt();
      const store = this.knn.datastore;
      const datastoreId = this.knn.state?.datastoreId;
      const eotId = gpt.manifest.tokenizer.eot_id;
      const result = await evaluateRequest(
        request,
        {
          tokenizer: tk,
          gpt,
          lensModel: (key) => this.lensModel(key, { knn: request.knn, icralm: request.icralm, ...(request.ragSequence ? { ragSequence: request.ragSequence } : {}) }),
          knn: store && datastoreId ? { store, datastoreId } : null,
          server: this.server,
          separator: separatorTokens('newline', (t) => tk.encode(t), eotId),
          eotId,
        },
        onProgress,
        controller.signal,
      );
      return this.transfer(result, [result.logProbs.buffer as ArrayBuffer]);
    } finally {
      this.scoreController = null;
    }
  }

  async ragSequenceDecode(request: RagSequenceDecodeRequest, onEvent: (event: RagSequenceDecodeEvent) => void): Promise<RagSequenceDecodeResult> {
    const tk = this.loadedTokenizer();
    const gpt = this.loadedGpt();
    const server = this.connectedServer();
    const { k, temperature, queryLength } = request.settings;
    validateRagSequenceSettings({ k, temperature, queryLength, span: request.maxTokens });
    // Held as a generation: `stop` (Esc) aborts it between tokens and between forwards.
    const controller = await this.holdGptForGeneration();
    try {
      const started = performance.now();
      const promptIds = tk.encode(request.prompt);
      if (promptIds.length === 0) throw new RangeError('The prompt is empty after tokenization.');
      const eotId = gpt.manifest.tokenizer.eot_id;
      void onEvent({ type: 'progress', phase: 'retrieve', done: 0, total: 1 });
      const found = await server.retrieve(blockQuery(promptIds, promptIds.length, queryLength).query, k, []);
      const views = found.views.slice(0, k);
      const passages = found.tokenIds.slice(0, k).map((ids, j) => ({ tokenIds: trimPadding(ids, eotId), distance: views[j]?.distance ?? 1 }));
      const prior = passageWeights(passages, temperature);
      const { candidates, chosen } = await thoroughDecode(gpt, promptIds, {
        passages,
        prior,
        separator: separatorTokens('newline', (t) => tk.encode(t), eotId),
        maxTokens: request.maxTokens,
        stopTokenId: eotId,
        signal: controller.signal,
        onProgress: (phase, done, total) => void onEvent({ type: 'progress', phase, done, total }),
      });
      return {
        passages: views.map((v) => ({ title: v.title, text: `${v.text} ${v.continuationText}`.trim(), distance: v.distance })),
        prior: passages.length > 0 ? prior : [1],
        candidates: candidates.map((c) => ({ ...c, text: detokenizeWikiText(tk.decode(c.tokenIds)) })),
        chosen,
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      this.controller = null;
    }
  }

  async loadKnnFor(use: KnnUse, onProgress: ProgressCallback): Promise<KnnModelState | null> {
    const source = (await this.connectedServer().knnSources())[use];
    if (!source) {
      // RETRO without keys retrieves nothing and leaves the column's keys alone; the kNN-LM column
      // must not go on answering from the keys of a datastore that is no longer the active one's.
      if (use === 'knnlm') await this.knn.unload();
      return null;
    }
    if (this.knn.state?.datastoreId === source.id) return this.knn.state;
    if (this.controller) throw new Error('A generation is running: wait for it to finish.');
    return this.knn.load(source.id, onProgress);
  }

  unloadKnn(): Promise<void> {
    return this.knn.unload();
  }

  async explainKnn(position: number, options?: ExplainOptions, chosenTokenId?: number): Promise<KnnExplanationView> {
    return this.knn.explain(position, options, chosenTokenId);
  }

  keyRate(): Promise<number> {
    return this.knn.keyRate();
  }

  /** Releases the ONNX sessions (Node tools and tests; a worker just ends). */
  async dispose(): Promise<void> {
    await this.knn.unload();
    for (const { model } of this.models.values()) await model.dispose();
    this.models.clear();
  }

  // --- columns ----------------------------------------------------------------------------------

  /** The 'knnlm' column's model with this request's λ, k, T, random control and the prompt's documents excluded. */
  private knnLoaded(request: GenerateRequest, promptDocIds: readonly number[]): Loaded | undefined {
    const model = this.knn.active;
    if (!model) throw new Error('kNN-LM is on but no kNN-LM datastore is loaded.');
    const gpt = this.models.get('gpt');
    if (!gpt) return undefined;
    model.setSettings(knnRequestSettings(request.knn));
    model.setExcludedDocuments(promptDocIds);
    return { key: 'knnlm', model, manifest: gpt.manifest };
  }

  /** The 'replug' column's model with this request's k, τ, s, l and excluded documents. */
  private replugLoaded(request: GenerateRequest, promptDocIds: readonly number[]): Loaded | undefined {
    const gpt = this.models.get('gpt');
    return gpt ? { key: 'replug', model: this.replug.prepare(request, promptDocIds), manifest: gpt.manifest } : undefined;
  }

  /** The 'flare' column's model with this request's look-ahead, θ, β, l and excluded documents. */
  private flareLoaded(request: GenerateRequest, promptDocIds: readonly number[]): Loaded | undefined {
    const gpt = this.models.get('gpt');
    return gpt ? { key: 'flare', model: this.flare.prepare(request, promptDocIds), manifest: gpt.manifest } : undefined;
  }

  /** The 'icralm' column's model with this request's s, l and excluded documents. */
  private icralmLoaded(request: GenerateRequest, promptDocIds: readonly number[]): Loaded | undefined {
    const gpt = this.models.get('gpt');
    return gpt ? { key: 'icralm', model: this.icralm.prepare(request, promptDocIds), manifest: gpt.manifest } : undefined;
  }

  private loadedGpt(): GptModel {
    const gpt = this.models.get('gpt')?.model;
    if (!(gpt instanceof GptModel)) throw new Error('The GPT is still loading.');
    return gpt;
  }

  private connectedServer(): NeighbourServer {
    if (!this.server) throw new Error('The retrieval engine is not connected.');
    return this.server;
  }

  private loadedTokenizer(): RetroTokenizer {
    if (!this.tokenizer) throw new Error('The tokenizer is not loaded yet: wait until the models have loaded.');
    return this.tokenizer;
  }

  private loadedTexts(): TokenTexts {
    if (!this.texts) throw new Error('The models are still loading.');
    return this.texts;
  }

  private takeViews(query: readonly number[]): { views: NeighbourDisplay[]; latencyMs: number } {
    const i = this.pendingViews.findIndex((p) => sameIds(p.query, query));
    if (i < 0) return { views: [], latencyMs: 0 };
    const [match] = this.pendingViews.splice(i, 1);
    return match!;
  }

  private async readIndex(baseUrl: string): Promise<string[]> {
    const folder = this.folder(baseUrl, 'models/');
    let json: { models?: unknown };
    try {
      json = JSON.parse(await folder.text('index.json')) as { models?: unknown };
    } catch (error) {
      throw new Error(`${folder.location}index.json: ${error instanceof Error ? error.message : String(error)}. The app ships its models in public/models/.`, { cause: error });
    }
    if (!Array.isArray(json.models)) throw new Error(`${folder.location}index.json: expected {"models": [ids]}`);
    return json.models.filter((m): m is string => typeof m === 'string');
  }

  private async generateOne({ key, model }: Loaded, promptIds: number[], request: GenerateRequest, onEvent: GenerationCallback, signal: AbortSignal, controls?: ColumnControls): Promise<void> {
    const tt = this.loadedTexts();
    const started = performance.now();
    const isRetro = model instanceof RetroModel;
    if (isRetro) {
      const r = request.retro;
      model.setOptions({
        retrieval: r.retrieval,
        k: r.k,
        retrievalStep: r.retrievalStep,
        leftPad: r.leftPad,
        retroPlusPlus: r.retroPlusPlus,
        excludeDocIds: [...r.excludeDocIds, ...sourceIds(controls)],
        randomNeighbours: r.randomNeighbours === true,
      });
    }
    this.pendingViews = [];
    let announced = false;
    let buffer: TokenView[] = [];
    let lastFlush = performance.now();
    let tokensPerSecond = 0;

    const announce = () => {
      if (announced) return;
      announced = true;
      const sequence = model.sequence;
      const prefixLength = model.prefixLength;
      tt.start();
      const prefix = tt.views(sequence.slice(0, prefixLength));
      const prompt = tt.views(promptIds);
      const chunk = isRetro ? (model.manifest.hyperparameters.chunk ?? null) : null;
      void onEvent({ type: 'start', model: key, prefix, prompt, chunk, paddingId: model.manifest.tokenizer.eot_id, ...(controls ? { controls } : {}) });
    };

    const report = (retrievals: readonly ChunkRetrieval[]) => {
      for (const r of retrievals) {
        const { views, latencyMs } = this.takeViews(r.queryTokenIds);
        if (r.chunkIndex < 0) continue; // RETRO++'s context retrieval: shown as the grey prefix.
        const end = r.position + 1;
        const chunkReport: ChunkReport = { chunk: r.chunkIndex, start: end - r.queryTokenIds.length, end, neighbours: views, latencyMs };
        void onEvent({ type: 'chunk', model: key, report: chunkReport });
      }
    };

    // In-Context RALM's retrievals: one per block, shown like RETRO's chunks (icralm-host.ts).
    const reportPassages = () => {
      const host = key === 'icralm' ? this.icralm : key === 'replug' ? this.replug : key === 'flare' ? this.flare : null;
      if (!host) return;
      for (const chunkReport of host.takeReports()) void onEvent({ type: 'chunk', model: key, report: chunkReport });
    };

    const flush = () => {
      if (buffer.length === 0) return;
      void onEvent({ type: 'tokens', model: key, tokens: buffer, tokensPerSecond });
      buffer = [];
      lastFlush = performance.now();
    };

    const d = request.decoding;
    let reportedCount = 0;
    const summary = await runGeneration(
      model,
      promptIds,
      {
        maxNewTokens: d.maxTokens,
        temperature: d.strategy === 'greedy' ? 0 : d.temperature,
        topK: d.strategy === 'greedy' ? 0 : d.topK,
        topP: d.strategy === 'greedy' ? 1 : d.topP,
        seed: d.seed,
        suppressTokens: d.suppressUnk ? [model.manifest.tokenizer.unk_id] : [],
        repetitionPenalty: d.repetitionPenalty,
        noRepeatNgramSize: d.noRepeatNgramSize,
        ...(d.stopAtEndOfText === false ? { stopTokenId: null } : {}),
      },
      {
        signal,
        onToken: (token: GeneratedToken) => {
          announce();
          report(token.retrievals);
          reportPassages();
          reportedCount += token.retrievals.length;
          tokensPerSecond = token.tokensPerSecond;
          buffer.push({
            ...tt.next(token.tokenId),
            probability: token.modelProbability,
            alternatives: token.alternatives.map((a) => ({ id: a.tokenId, text: tt.standalone([a.tokenId])[0]!.text, probability: a.probability })),
            ...(key === 'replug' ? { passages: this.replug.shares(token.tokenId) } : {}),
            ...(model instanceof KnnLmModel ? { searched: model.lastSearched, knnSkipped: model.lastSkipped, knnLambda: model.lastLambda } : {}),
          });
          if (performance.now() - lastFlush >= FLUSH_MS) flush();
        },
      },
    );
    announce();
    // Retrievals of a run that produced no token (stopped at once) arrive only in the summary.
    report(summary.retrievals.slice(reportedCount));
    reportPassages();
    flush();
    // Awaited: the UI must have every token and chunk before `generate` resolves.
    await onEvent({
      type: 'done',
      model: key,
      generated: summary.tokenIds.length,
      tokensPerSecond: summary.tokensPerSecond,
      stopped: summary.stoppedBy === 'abort',
      ms: performance.now() - started,
    });
  }

  // --- perplexity lens (score.ts) ----------------------------------------------------------------

  /** The lens's row for `key`, set up from this request alone (λ, k, T; s and l), or why there is none. */
  private lensModel(key: ModelKey, request: Pick<ScoreRequest, 'knn' | 'icralm' | 'ragSequence'>): LensModel | string {
    const gpt = this.models.get('gpt');
    if (key === 'knnlm') {
      const knnModel = this.knn.active;
      if (!knnModel || !gpt) return 'kNN-LM is off: turn it on in the compare view (it loads a kNN-LM datastore) to score with it.';
      knnModel.setSettings(knnRequestSettings(request.knn));
      knnModel.setExcludedDocuments([]);
      // Its forwardBatch returns the mixture's log-probabilities, which the eval's log-softmax keeps.
      return { key, name: 'kNN-LM', model: knnModel, context: gpt.manifest.hyperparameters.context };
    }
    if (key === 'icralm') {
      if (!gpt || !(gpt.model instanceof GptModel)) return 'In-Context RALM needs the GPT, which is not loaded yet.';
      if (!this.server) return 'In-Context RALM needs the retrieval engine, which is not connected.';
      const tk = this.loadedTokenizer();
      const eotId = gpt.manifest.tokenizer.eot_id;
      const separator = separatorTokens('newline', (t) => tk.encode(t), eotId);
      return { key, name: 'In-Context RALM', model: gpt.model, context: gpt.manifest.hyperparameters.context, ownScorer: icRalmScorer(gpt.model, this.server, eotId, separator, request.icralm) };
    }
    if (key === 'ragseq') {
      if (!gpt || !(gpt.model instanceof GptModel)) return 'RAG-Sequence needs the GPT, which is not loaded yet.';
      if (!this.server) return 'RAG-Sequence needs the retrieval engine, which is not connected.';
      const tk = this.loadedTokenizer();
      const eotId = gpt.manifest.tokenizer.eot_id;
      const separator = separatorTokens('newline', (t) => tk.encode(t), eotId);
      return { key, name: 'RAG-Sequence', model: gpt.model, context: gpt.manifest.hyperparameters.context, ownScorer: ragSequenceScorer(gpt.model, this.server, eotId, separator, request.ragSequence) };
    }
    const loaded = this.models.get(key);
    if (!loaded) return `Model ${key} is not loaded yet.`;
    const hp = loaded.manifest.hyperparameters;
    const lens: LensModel = { key, name: loaded.manifest.name, model: loaded.model as GptModel | RetroModel, context: hp.context };
    if (loaded.model instanceof RetroModel) {
      const { chunk, neighbours, neighbour_len } = loaded.model.hp;
      lens.retro = { chunk, K: neighbours, neighbourLen: neighbour_len, eotId: loaded.manifest.tokenizer.eot_id };
      if (this.retroIsTokenAligned) {
        const store = this.knn.datastore;
        const datastoreId = this.knn.state?.datastoreId;
        lens.retro.aligned = store && datastoreId && gpt ? { queryModel: gpt.model as GptModel, store, datastoreId } : { missing: ALIGNED_NEEDS_KNN };
      }
    }
    return lens;
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function parameterCount(manifest: ModelManifest): string {
  const n = (manifest as ModelManifest & { parameters?: number }).parameters;
  if (typeof n !== 'number') return `${manifest.hyperparameters.n_layer} layers`;
  return `${(n / 1e6).toFixed(1)}M params`;
}

function describeModel(key: ModelKey, manifest: ModelManifest): ModelDescription {
  const hp = manifest.hyperparameters;
  const metrics: ModelDescription['metrics'] = {};
  for (const [name, m] of Object.entries(manifest.metrics ?? {})) {
    if (m && 'token_ppl' in m && typeof m.token_ppl === 'number' && typeof m.word_ppl === 'number') metrics[name] = { token_ppl: m.token_ppl, word_ppl: m.word_ppl };
  }
  return {
    key,
    id: manifest.id,
    name: manifest.name,
    architecture: manifest.architecture,
    parameters: parameterCount(manifest),
    context: hp.context,
    chunk: hp.chunk ?? null,
    neighbours: hp.neighbours ?? null,
    tokenAligned: isTokenAligned(manifest),
    metrics,
  };
}

/** One line for the status bar from the backends the loaded graphs actually run on. */
function summarizeBackend(loaded: Loaded[]): BackendInfo {
  const infos = loaded.map((l) => l.model.info.backend);
  const gpu = infos.filter((b) => b.backend === 'webgpu');
  if (gpu.length === infos.length && gpu[0]) return { backend: 'webgpu', reason: gpu[0].reason };
  // Node tools on onnxruntime-node: every graph on the native CPU provider.
  const native = infos.filter((b) => b.backend === 'cpu');
  if (native.length === infos.length && native[0]) return native[0];
  const wasm = infos.find((b) => b.backend === 'wasm') ?? infos[0];
  const reason = wasm?.reason ?? 'WASM';
  return { backend: 'wasm', reason: gpu.length ? `${reason} (some graphs on WebGPU)` : reason };
}
