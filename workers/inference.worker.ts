/// <reference lib="webworker" />
/**
 * Inference worker: loads GPT and RETRO with the models engineer's runtime and streams their
 * generations to the UI. RETRO's neighbours come from the retrieval worker over a MessageChannel
 * (`connect`), so the datastore lives in one place and the UI thread only renders.
 */
import * as Comlink from 'comlink';
import { isTokenAligned, type ModelManifest } from '../src/protocol/manifest';
import { alignedNeighbourSource } from '../src/core/knnlm/aligned';
import type { ChunkRetrieval, GeneratedToken } from '../src/protocol/model';
import { Runtime, fetchModelFiles, type ModelFiles } from '../src/core/runtime';
import { GptModel, RetroModel, readManifest, type LanguageModel, type NeighbourSource, type RetrievedNeighbour } from '../src/core/models';
import { generate as runGeneration } from '../src/core/generate';
import { detokenizeWikiText, loadTokenizer, type RetroTokenizer } from '../src/core/tokenizer';
import type {
  Backend,
  BackendInfo,
  ChunkReport,
  GenerateRequest,
  GenerationCallback,
  InferenceReady,
  InferenceWorkerApi,
  ModelInfo,
  ModelKey,
  NeighbourServer,
  NeighbourView,
  ProgressCallback,
  ScoreCallback,
  ScoreRequest,
  ScoreResult,
  TokenView,
} from './protocol';
import { TokenBytes, TokenTexts } from './token-text';
import { KnnHost } from './knnlm-host';
import { IcRalmHost } from './icralm-host';
import { DEFAULT_KNN_SETTINGS, type KnnLmModel } from '../src/core/knnlm';
import { icRalmScorer, scoreText, serverEvalStore, type LensModel } from './score';
import { separatorTokens } from '../src/core/icralm';

interface Loaded {
  key: ModelKey;
  model: LanguageModel;
  manifest: ModelManifest;
}

let runtime: Runtime | null = null;
let tokenizer: RetroTokenizer | null = null;
let texts: TokenTexts | null = null;
const models = new Map<ModelKey, Loaded>();
let server: Comlink.Remote<NeighbourServer> | null = null;
let controller: AbortController | null = null;

/** The 'icralm' column: the GPT with the active datastore's top chunk before its context. */
const icralm = new IcRalmHost({
  gpt: loadedGpt,
  tokenizer: loadedTokenizer,
  server: connectedServer,
});

const knn = new KnnHost({
  gpt: loadedGpt,
  tokenizer: loadedTokenizer,
  texts: () => {
    if (!texts) throw new Error('The models are still loading.');
    return texts;
  },
  server: connectedServer,
  // A generation or a lens pass holds the GPT session.
  busy: () => controller !== null || scoreController !== null,
});

/**
 * The kNN-LM (the worker's GPT + the loaded kNN-LM datastore), or null while kNN-LM is off. It
 * shares the GPT session with the 'gpt' column: use it only when no generation runs.
 */
export function activeKnnModel(): KnnLmModel | null {
  return knn.active;
}

/** Full neighbour views of the retrievals RETRO made, matched to its reports by query ids. */
let pendingViews: { query: number[]; views: NeighbourView[]; latencyMs: number }[] = [];

const neighbourSource: NeighbourSource = async (chunkTokenIds, k, options) => {
  if (retroIsTokenAligned) return alignedNeighbours(chunkTokenIds, k, options);
  const result = await connectedServer().retrieve(chunkTokenIds, k, [...(options.excludeDocIds ?? [])]);
  pendingViews.push({ query: [...chunkTokenIds], views: result.views, latencyMs: result.latencyMs });
  return result.tokenIds.map((tokenIds, i): RetrievedNeighbour => {
    const view = result.views[i];
    return view ? { tokenIds, distance: view.distance, title: view.title, text: view.text, docId: view.docId } : { tokenIds };
  });
};

/** Set at init from the RETRO manifest: its neighbours come from kNN-LM keys, not the chunk datastore. */
let retroIsTokenAligned = false;

const ALIGNED_NEEDS_KNN =
  'This RETRO retrieves with the GPT’s kNN-LM keys: the active datastore needs them. Use WikiText-2 train, or rebuild your datastore with “Also build kNN-LM keys” ticked.';

/**
 * Token-aligned RETRO (src/core/knnlm/aligned.ts): the GPT's knn_key at the chunk's last token,
 * searched in the loaded kNN-LM datastore; a match at p gives the chunk ending at p and the chunk
 * after it. The GPT session is free here: the columns generate one after another.
 */
const alignedNeighbours = alignedNeighbourSource({
  queryGpt: loadedGpt,
  datastore: () => knn.datastore,
  chunk: () => models.get('retro')!.manifest.hyperparameters.chunk!,
  missing: ALIGNED_NEEDS_KNN,
  onRetrieved: (query, kept, latencyMs) => {
    const tt = texts!;
    const C = models.get('retro')!.manifest.hyperparameters.chunk!;
    const views: NeighbourView[] = kept.map(({ match: m, place, tokenIds }) => {
      const chunkLength = Math.min(C, tokenIds.length);
      const text = detokenizeWikiText(loadedTokenizer().decode(tokenIds.slice(0, chunkLength)));
      const continuationText = detokenizeWikiText(loadedTokenizer().decode(tokenIds.slice(chunkLength)));
      return { docId: place.docId, title: place.title, chunkIndex: m.entry, distance: m.distance, text, continuationText, tokens: tt.standalone(tokenIds), chunkLength };
    });
    pendingViews.push({ query: [...query], views, latencyMs });
  },
});

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function takeViews(query: readonly number[]): { views: NeighbourView[]; latencyMs: number } {
  const i = pendingViews.findIndex((p) => sameIds(p.query, query));
  if (i < 0) return { views: [], latencyMs: 0 };
  const [match] = pendingViews.splice(i, 1);
  return match!;
}

function parameterCount(manifest: ModelManifest): string {
  const n = (manifest as ModelManifest & { parameters?: number }).parameters;
  if (typeof n !== 'number') return `${manifest.hyperparameters.n_layer} layers`;
  return `${(n / 1e6).toFixed(1)}M params`;
}

function modelInfo(key: ModelKey, manifest: ModelManifest): ModelInfo {
  const hp = manifest.hyperparameters;
  const metrics: ModelInfo['metrics'] = {};
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
  const wasm = infos.find((b) => b.backend === 'wasm') ?? infos[0];
  const reason = wasm?.reason ?? 'WASM';
  return { backend: 'wasm', reason: gpu.length ? `${reason} (some graphs on WebGPU)` : reason };
}

async function readIndex(baseUrl: string): Promise<string[]> {
  const url = new URL('models/index.json', baseUrl);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url.pathname}: HTTP ${response.status}. The app ships its models in public/models/.`);
  const json = (await response.json()) as { models?: unknown };
  if (!Array.isArray(json.models)) throw new Error(`${url.pathname}: expected {"models": [ids]}`);
  return json.models.filter((m): m is string => typeof m === 'string');
}

const api: InferenceWorkerApi = {
  async init(baseUrl: string, preferred: Backend | 'auto', onProgress: ProgressCallback): Promise<InferenceReady> {
    runtime = await Runtime.create({ prefer: preferred });
    const ids = await readIndex(baseUrl);
    const manifests: { files: ModelFiles; manifest: ModelManifest }[] = [];
    for (const id of ids) {
      const files = fetchModelFiles(new URL(`models/${id}/`, baseUrl).href);
      manifests.push({ files, manifest: await readManifest(files) });
    }
    const gptEntry = manifests.find((m) => m.manifest.architecture === 'gpt');
    const retroEntry = manifests.find((m) => m.manifest.architecture === 'retro');
    if (!gptEntry || !retroEntry) throw new Error('models/index.json must list one GPT and one RETRO model.');
    retroIsTokenAligned = isTokenAligned(retroEntry.manifest);
    if (retroIsTokenAligned && retroEntry.manifest.retrieval!.query_decoder_sha256 !== gptEntry.manifest.onnx.decoder.sha256) {
      throw new Error(`${retroEntry.manifest.id} queries with the knn_key of ${retroEntry.manifest.retrieval!.query_model} decoder ${retroEntry.manifest.retrieval!.query_decoder_sha256.slice(0, 12)}…, but the shipped GPT is ${gptEntry.manifest.onnx.decoder.sha256.slice(0, 12)}…: re-ship the pair.`);
    }

    const tokenizerFile = retroEntry.manifest.tokenizer.file;
    const tokenizerJson: unknown = JSON.parse(await retroEntry.files.text(tokenizerFile));
    tokenizer = loadTokenizer(tokenizerJson, { id: retroEntry.manifest.tokenizer.id });
    texts = new TokenTexts(new TokenBytes(tokenizerJson));

    // Sizes come from the manifest: a compressed or chunked response has no content-length.
    const reporter = (key: ModelKey, manifest: ModelManifest) => {
      const sizes = new Map<string, number>();
      for (const graph of [manifest.onnx.decoder, manifest.onnx.encoder]) if (graph) sizes.set(graph.file, graph.bytes);
      const report = (file: string, loaded: number, finished: boolean) => {
        const total = sizes.get(file) ?? null;
        onProgress({
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
    models.set('gpt', { key: 'gpt', model: gpt, manifest: gptEntry.manifest });
    const retroProgress = reporter('retro', retroEntry.manifest);
    const retro = await RetroModel.fromManifest(runtime, retroEntry.files, retroEntry.manifest, {
      onProgress: retroProgress.onProgress,
      neighbourSource,
    });
    retroProgress.finish();
    models.set('retro', { key: 'retro', model: retro, manifest: retroEntry.manifest });
    const loaded = [...models.values()];
    return { backend: summarizeBackend(loaded), models: loaded.map((l) => modelInfo(l.key, l.manifest)) };
  },

  connect(port: MessagePort): void {
    server = Comlink.wrap<NeighbourServer>(port);
  },

  async generate(request: GenerateRequest, onEvent: GenerationCallback): Promise<void> {
    if (!tokenizer || !texts) throw new Error('The models are still loading.');
    // A speed measurement for the custom-datastore form may hold the GPT for a fraction of a second.
    await knn.idle();
    if (controller) throw new Error('A generation is already running.');
    if (knn.building) throw new Error('kNN-LM keys are being built with the GPT: wait for the datastore build to finish (or cancel it).');
    if (scoreController) throw new Error('The perplexity lens is scoring a text: stop it (or wait) before generating.');
    controller = new AbortController();
    const signal = controller.signal;
    try {
      const promptIds = tokenizer.encode(request.prompt);
      if (promptIds.length === 0) throw new RangeError('The prompt is empty after tokenization.');
      for (const key of request.models) {
        const loaded = key === 'knnlm' ? knnLoaded(request) : key === 'icralm' ? icralmLoaded(request) : models.get(key);
        if (!loaded) throw new Error(`Model ${key} is not loaded.`);
        if (signal.aborted) {
          await onEvent({ type: 'done', model: key, generated: 0, tokensPerSecond: 0, stopped: true, ms: 0 });
          continue;
        }
        await generateOne(loaded, promptIds, request, onEvent, signal);
      }
    } finally {
      controller = null;
      pendingViews = [];
    }
  },

  stop(): void {
    controller?.abort();
  },

  async encode(text: string): Promise<number[]> {
    return loadedTokenizer().encode(text);
  },

  async decode(ids: number[]): Promise<string> {
    return loadedTokenizer().decode(ids);
  },

  async score(request: ScoreRequest, onEvent: ScoreCallback): Promise<ScoreResult> {
    return scoreForLens(request, onEvent);
  },

  stopScore(): void {
    scoreController?.abort();
  },

  loadKnn(datastoreId, onProgress) {
    if (controller) return Promise.reject(new Error('A generation is running: wait for it to finish.'));
    return knn.load(datastoreId, onProgress);
  },

  unloadKnn() {
    return knn.unload();
  },

  async explainKnn(position, options, chosenTokenId) {
    return knn.explain(position, options, chosenTokenId);
  },

  keyRate() {
    return knn.keyRate();
  },

  connectKeyBuilder(port: MessagePort): void {
    Comlink.expose(knn.keyBuilder, port);
  },
};

/** The 'knnlm' column's model with this request's λ, k, T. */
function knnLoaded(request: GenerateRequest): Loaded | undefined {
  const model = knn.active;
  if (!model) throw new Error('kNN-LM is on but no kNN-LM datastore is loaded.');
  const gpt = models.get('gpt');
  if (!gpt) return undefined;
  model.setSettings(request.knn ?? DEFAULT_KNN_SETTINGS);
  return { key: 'knnlm', model, manifest: gpt.manifest };
}

/** The 'icralm' column's model with this request's s, l and excluded documents. */
function icralmLoaded(request: GenerateRequest): Loaded | undefined {
  const gpt = models.get('gpt');
  return gpt ? { key: 'icralm', model: icralm.prepare(request), manifest: gpt.manifest } : undefined;
}

function loadedGpt(): GptModel {
  const gpt = models.get('gpt')?.model;
  if (!(gpt instanceof GptModel)) throw new Error('The GPT is still loading.');
  return gpt;
}

function connectedServer(): Comlink.Remote<NeighbourServer> {
  if (!server) throw new Error('The retrieval worker is not connected.');
  return server;
}

function loadedTokenizer(): RetroTokenizer {
  if (!tokenizer) throw new Error('The tokenizer is not loaded yet: wait until the models have loaded.');
  return tokenizer;
}

/** How often streamed tokens are flushed to the UI: fewer messages, still smooth to the eye. */
const FLUSH_MS = 40;

async function generateOne(
  { key, model }: Loaded,
  promptIds: number[],
  request: GenerateRequest,
  onEvent: GenerationCallback,
  signal: AbortSignal,
): Promise<void> {
  const tt = texts!;
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
      excludeDocIds: r.excludeDocIds,
    });
  }
  pendingViews = [];
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
    void onEvent({ type: 'start', model: key, prefix, prompt, chunk, paddingId: model.manifest.tokenizer.eot_id });
  };

  const report = (retrievals: readonly ChunkRetrieval[]) => {
    for (const r of retrievals) {
      const { views, latencyMs } = takeViews(r.queryTokenIds);
      if (r.chunkIndex < 0) continue; // RETRO++'s context retrieval: shown as the grey prefix.
      const end = r.position + 1;
      const chunkReport: ChunkReport = { chunk: r.chunkIndex, start: end - r.queryTokenIds.length, end, neighbours: views, latencyMs };
      void onEvent({ type: 'chunk', model: key, report: chunkReport });
    }
  };

  // In-Context RALM's retrievals: one per block, shown like RETRO's chunks (workers/icralm-host.ts).
  const reportPassages = () => {
    if (key !== 'icralm') return;
    for (const chunkReport of icralm.takeReports()) void onEvent({ type: 'chunk', model: key, report: chunkReport });
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
    },
    {
      signal,
      onToken: (token: GeneratedToken) => {
        announce();
        report(token.retrievals);
        reportPassages();
        reportedCount += token.retrievals.length;
        tokensPerSecond = token.tokensPerSecond;
        buffer.push(tt.next(token.tokenId));
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

// --- perplexity lens (workers/score.ts) ----------------------------------------------------------

let scoreController: AbortController | null = null;

function lensModel(key: ModelKey): LensModel | string {
  const gpt = models.get('gpt');
  if (key === 'knnlm') {
    const knnModel = activeKnnModel();
    if (!knnModel || !gpt) return 'kNN-LM is off: turn it on in the compare view (it loads a kNN-LM datastore) to score with it.';
    // Its forwardBatch returns the mixture's log-probabilities, which the eval's log-softmax keeps.
    return { key, name: 'kNN-LM', model: knnModel, context: gpt.manifest.hyperparameters.context };
  }
  if (key === 'icralm') {
    if (!gpt || !(gpt.model instanceof GptModel)) return 'In-Context RALM needs the GPT, which is not loaded yet.';
    if (!server) return 'In-Context RALM needs the retrieval worker, which is not connected.';
    const tk = loadedTokenizer();
    const eotId = gpt.manifest.tokenizer.eot_id;
    const separator = separatorTokens('newline', (t) => tk.encode(t), eotId);
    return { key, name: 'In-Context RALM', model: gpt.model, context: gpt.manifest.hyperparameters.context, ownScorer: icRalmScorer(gpt.model, server, eotId, separator) };
  }
  const loaded = models.get(key);
  if (!loaded) return `Model ${key} is not loaded yet.`;
  const hp = loaded.manifest.hyperparameters;
  const lens: LensModel = { key, name: loaded.manifest.name, model: loaded.model as GptModel | RetroModel, context: hp.context };
  if (loaded.model instanceof RetroModel) {
    const { chunk, neighbours, neighbour_len } = loaded.model.hp;
    lens.retro = { chunk, K: neighbours, neighbourLen: neighbour_len, eotId: loaded.manifest.tokenizer.eot_id };
    if (retroIsTokenAligned) {
      const store = knn.datastore;
      const datastoreId = knn.state?.datastoreId;
      lens.retro.aligned = store && datastoreId && gpt ? { queryModel: gpt.model as GptModel, store, datastoreId } : { missing: ALIGNED_NEEDS_KNN };
    }
  }
  return lens;
}

async function scoreForLens(request: ScoreRequest, onEvent: ScoreCallback): Promise<ScoreResult> {
  const tk = loadedTokenizer();
  if (controller) throw new Error('A generation is running: stop it (or wait) before scoring.');
  if (knn.building) throw new Error('kNN-LM keys are being built with the GPT: wait for the datastore build to finish (or cancel it).');
  if (scoreController) throw new Error('The lens is already scoring a text.');
  scoreController = new AbortController();
  try {
    const result = await scoreText(
      request,
      {
        tokenizer: tk,
        tokenViews: (ids) => {
          texts!.start();
          return texts!.views(ids);
        },
        model: lensModel,
        neighbours: server ? serverEvalStore(server) : null,
      },
      onEvent,
      scoreController.signal,
    );
    return Comlink.transfer(result, result.scores.map((s) => s.logProbs.buffer as ArrayBuffer));
  } finally {
    scoreController = null;
  }
}

Comlink.expose(api);
