/**
 * The inference engine's kNN-LM side: the KnnLmModel wrapping the engine's GPT with one kNN-LM
 * datastore (its bytes come from the retrieval engine, which owns storage), the token
 * explanations, and the kNN-LM key pass for datastores built in the browser.
 */
import { blobShardSource, decodeShard } from '../datastore/shard';
import { buildKnnShard, DEFAULT_KEY_BATCH, KnnDatastore, KnnLmModel } from '../knnlm';
import type { KeyBatchModel } from '../knnlm/build';
import type { ExplainOptions } from '../knnlm/types';
import type { GptModel, LanguageModel, StartOptions, StepOutput } from '../models';
import type { RetroTokenizer } from '../tokenizer';
import type { KnnBuildProgress } from '../../protocol/shard';
import type { KnnExplanationView, KnnKeyBuilder, KnnModelState, NeighbourServer, Progress, ProgressCallback } from '../../protocol/api';
import type { Transfer } from './transfer';
import type { TokenTexts } from './token-text';

/**
 * The GPT as the kNN-LM sees it. The GPT session is shared with the 'gpt' column (and any other
 * GPT-based one), which restarts its sequence; explanations need the kNN-LM run's own tokens, so
 * this keeps a copy of the sequence as of the kNN-LM's last call.
 */
class OwnSequenceGpt implements LanguageModel {
  private ids: number[] = [];
  private prefix = 0;

  constructor(private readonly gpt: GptModel) {}

  get info() {
    return this.gpt.info;
  }

  get manifest() {
    return this.gpt.manifest;
  }

  get sequence(): readonly number[] {
    return this.ids;
  }

  get prefixLength(): number {
    return this.prefix;
  }

  async start(promptIds: readonly number[], options?: StartOptions): Promise<StepOutput> {
    const out = await this.gpt.start(promptIds, options);
    this.ids = [...this.gpt.sequence];
    this.prefix = this.gpt.prefixLength;
    return out;
  }

  async next(tokenId: number): Promise<StepOutput> {
    const out = await this.gpt.next(tokenId);
    this.ids = [...this.gpt.sequence];
    return out;
  }

  /**
   * The generation loop samples its last token without feeding it back; the explanation of that
   * token needs it as "the token that came next".
   */
  appendSampled(tokenId: number): void {
    this.ids = [...this.ids, tokenId];
  }

  /** The engine owns the GPT. */
  async dispose(): Promise<void> {}
}

export interface KnnHostDeps {
  gpt(): GptModel;
  tokenizer(): RetroTokenizer;
  texts(): TokenTexts;
  server(): NeighbourServer;
  /** true while a generation (or another GPT job) runs: the GPT session must not be shared then */
  busy(): boolean;
  /** Marks the key pass's result bytes to be moved, not copied, when they cross to a worker. */
  transfer: Transfer;
  /** Builds keys with this model instead of `gpt()` (InferenceEngineOptions.keyModel). */
  keyModel?: KeyBatchModel;
}

/** Which datastore a custom build's keys use: PCA 64 like the default, so the same T suits both. */
const CUSTOM_PCA_DIMS = 64;
/** Below this many entries a 64-d PCA fit is poorly conditioned; the keys stay 256-d int8. */
const MIN_ENTRIES_FOR_PCA = 2048;

function abortError(): Error {
  return Object.assign(new Error('the kNN-LM key pass was cancelled'), { name: 'AbortError' });
}

export class KnnHost {
  private model: KnnLmModel | null = null;
  private gptView: OwnSequenceGpt | null = null;
  private loaded: KnnModelState | null = null;
  private loading: Promise<KnnModelState> | null = null;
  private keyController: AbortController | null = null;
  private measuredRate: number | null = null;
  private measuring: Promise<number> | null = null;

  constructor(private readonly deps: KnnHostDeps) {}

  /** The kNN-LM for the loaded datastore, or null until one is loaded. */
  get active(): KnnLmModel | null {
    return this.model;
  }

  /** The loaded kNN-LM datastore (token-aligned RETRO searches it too), or null. */
  get datastore(): KnnDatastore | null {
    return this.model?.datastore ?? null;
  }

  /** true while kNN-LM keys are being built: the GPT session is taken. */
  get building(): boolean {
    return this.keyController !== null;
  }

  get state(): KnnModelState | null {
    return this.loaded;
  }

  async load(datastoreId: string, onProgress: ProgressCallback): Promise<KnnModelState> {
    if (this.loaded?.datastoreId === datastoreId) return this.loaded;
    if (this.loading) await this.loading.catch(() => undefined);
    if (this.loaded?.datastoreId === datastoreId) return this.loaded;
    this.loading = this.open(datastoreId, onProgress);
    try {
      return await this.loading;
    } finally {
      this.loading = null;
    }
  }

  private async open(datastoreId: string, onProgress: ProgressCallback): Promise<KnnModelState> {
    const gpt = this.deps.gpt();
    const shard = await this.deps.server().knnShard(datastoreId, onProgress);
    const { id, name } = shard;
    const target = `knn-open:${id}`;
    const label = `Opening the kNN-LM datastore “${name}”`;
    onProgress({ kind: 'knn-open', datastoreId: id, target, label, done: 0, total: null, unit: 'steps', finished: false });
    const t0 = performance.now();
    try {
      // IVF lists when the shard has them (npm run setup:knn builds them): the exact scan stays a choice per request.
      // A stored Blob is read section by section, its keys streamed into the index: the file is never held whole.
      const datastore = 'blob' in shard ? await KnnDatastore.load(blobShardSource(shard.blob), { index: 'ivf' }) : KnnDatastore.open(shard.bytes, { index: 'ivf' });
      // Refuses keys made by other weights (ShardMismatchError with the two decoder hashes).
      const view = new OwnSequenceGpt(gpt);
      const model = new KnnLmModel(view, datastore);
      await this.model?.dispose();
      this.model = model;
      this.gptView = view;
      const lists = datastore.section.ivf ? datastore.section.ivf.offsets.length - 1 : 0;
      this.loaded = { datastoreId: id, name, entries: datastore.size, dim: datastore.section.dim, openMs: performance.now() - t0, index: datastore.defaultIndex, lists, nprobe: datastore.nprobe };
      return this.loaded;
    } finally {
      onProgress({ kind: 'knn-open', datastoreId: id, target, label, done: 1, total: 1, unit: 'steps', finished: true });
    }
  }

  async unload(): Promise<void> {
    await this.model?.dispose();
    this.model = null;
    this.gptView = null;
    this.loaded = null;
  }

  /**
   * `chosenTokenId`: the token the column wrote after `position`, as the UI shows it. It checks
   * that the explanation is of that run (not of a later generation or lens pass), and supplies the
   * last sampled token, which the generation loop never feeds back.
   */
  explain(position: number, options: ExplainOptions = {}, chosenTokenId?: number): KnnExplanationView {
    if (!this.model || !this.gptView) throw new Error('kNN-LM is off: turn it on and generate first.');
    if (chosenTokenId !== undefined) {
      const sequence = this.gptView.sequence;
      const after = sequence[position + 1];
      if (after === undefined && position === sequence.length - 1) this.gptView.appendSampled(chosenTokenId);
      else if (after !== chosenTokenId) throw new Error('This token is from an earlier kNN-LM run: generate again to inspect it.');
    }
    const explanation = this.model.explain(position, { topTokens: 10, topNeighbours: 12, textBefore: 200, textAfter: 60, ...options });
    const tokenTexts: Record<number, string> = {};
    const texts = this.deps.texts();
    const ids = [
      ...explanation.lm.map((t) => t.tokenId),
      ...explanation.knn.map((t) => t.tokenId),
      ...explanation.mix.map((t) => t.tokenId),
      ...explanation.neighbours.map((n) => n.tokenId),
      ...(explanation.next ? [explanation.next.tokenId] : []),
    ];
    for (const id of ids) tokenTexts[id] ??= texts.standalone([id])[0]?.text ?? '';
    return { ...explanation, tokenTexts };
  }

  /** Resolves when no short GPT job of this host (the speed measurement) holds the session. */
  async idle(): Promise<void> {
    await this.measuring?.catch(() => undefined);
  }

  /** Tokens per second the GPT keys at here: one full-context prefill, timed once. */
  keyRate(): Promise<number> {
    if (this.measuredRate !== null) return Promise.resolve(this.measuredRate);
    if (this.deps.busy() || this.building) return Promise.resolve(0);
    this.measuring ??= this.measure().finally(() => {
      this.measuring = null;
    });
    return this.measuring;
  }

  private async measure(): Promise<number> {
    const gpt = this.deps.gpt();
    const n = gpt.manifest.hyperparameters.context;
    // As the builder runs: DEFAULT_KEY_BATCH windows per forward of the knn_key-only graph.
    const windows = Array.from({ length: DEFAULT_KEY_BATCH }, (_, w) => Array.from({ length: n }, (_, i) => 100 + ((i + 37 * w) % 500)));
    // The first forward at a new shape is slower (kernels are set up, the graph is opened): time the second.
    await gpt.keysBatch(windows);
    const t0 = performance.now();
    await gpt.keysBatch(windows);
    // The builder keys `stride` new tokens per full window (half the context).
    const seconds = (performance.now() - t0) / 1000;
    this.measuredRate = seconds > 0 ? (DEFAULT_KEY_BATCH * n) / 2 / seconds : 0;
    await gpt.releaseKeyGraph();
    return this.measuredRate;
  }

  /** The model that keys datastores: the loaded GPT, or the same GPT's worker pool (InferenceEngineOptions.keyModel). */
  private keyModel(): KeyBatchModel | GptModel {
    const gpt = this.deps.gpt();
    const pool = this.deps.keyModel;
    if (!pool) return gpt;
    if (pool.manifest.onnx.decoder.sha256 !== gpt.manifest.onnx.decoder.sha256) {
      throw new Error(`the key workers run decoder ${pool.manifest.onnx.decoder.sha256.slice(0, 12)}…, the loaded GPT ${gpt.manifest.onnx.decoder.sha256.slice(0, 12)}…: keys must come from the GPT that reads them`);
    }
    return pool;
  }

  /** What the retrieval engine calls to add kNN-LM sections to a chunk datastore it is building. */
  readonly keyBuilder: KnnKeyBuilder = {
    attachKeys: async (shardBytes, onProgress) => {
      if (this.keyController) throw new Error('kNN-LM keys are already being built.');
      if (this.deps.busy()) throw new Error('A generation is running: stop it or wait, then build again.');
      const controller = new AbortController();
      this.keyController = controller;
      try {
        await this.idle();
        const base = decodeShard(shardBytes);
        const tokens = base.tokens.length;
        const pca = tokens >= MIN_ENTRIES_FOR_PCA ? CUSTOM_PCA_DIMS : undefined;
        let startedAt = performance.now();
        const result = await buildKnnShard([], {
          name: base.meta.name,
          tokenizer: this.deps.tokenizer(),
          model: this.keyModel(),
          encoding: 'int8',
          ...(pca ? { pca } : {}),
          base,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.phase === 'tokenize') startedAt = performance.now();
            void onProgress(keyProgress(p, startedAt));
          },
        });
        return this.deps.transfer(result.bytes, [result.bytes.buffer as ArrayBuffer]);
      } catch (error) {
        if (controller.signal.aborted) throw abortError();
        throw error;
      } finally {
        this.keyController = null;
        // The key graph holds a second copy of the GPT's weights in the tab: only while building.
        await this.deps.gpt().releaseKeyGraph();
      }
    },
    cancel: () => this.keyController?.abort(),
  };
}

const PHASES: Record<KnnBuildProgress['phase'], string> = {
  tokenize: 'Tokenizing for kNN-LM keys',
  keys: 'kNN-LM keys (running the GPT)',
  pca: 'Fitting the key projection',
  encode: 'Packing',
  done: 'Done',
};

function keyProgress(p: KnnBuildProgress, startedAt: number): Progress {
  const progress: Progress = {
    kind: 'build',
    target: 'build',
    label: 'Building kNN-LM keys',
    phase: PHASES[p.phase],
    done: p.done,
    total: p.total,
    unit: p.unit === 'bytes' ? 'bytes' : p.unit === 'documents' ? 'documents' : 'tokens',
    finished: false,
  };
  if (p.phase === 'keys' && p.tokensPerSecond > 0) {
    progress.rate = p.tokensPerSecond;
    progress.etaSeconds = Math.max(0, (p.total - p.done) / p.tokensPerSecond);
  } else if (p.done > 0 && p.total > p.done) {
    progress.etaSeconds = ((p.total - p.done) * (performance.now() - startedAt)) / p.done / 1000;
  }
  return progress;
}
