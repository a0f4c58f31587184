import type { ModelManifest } from '../../protocol/manifest';
import type { ModelInfo } from '../../protocol/model';
import { InferenceError, ModelLoadError, type ModelFiles, type Runtime, type RuntimeSession } from '../runtime';
import { keepOutputs } from '../runtime/onnx-prune';
import {
  Serial,
  cacheFeeds,
  cacheLayout,
  checkTokenIds,
  defaultOverflowDrop,
  disposeCache,
  emptyCache,
  flattenBatch,
  presentCache,
  type CacheLayout,
  type KvCache,
} from './decoder';
import { loadGraph, readManifest } from './manifest';
import type { LanguageModel, StartOptions, StepOutput } from './types';

export interface ModelLoadOptions {
  /** Check file sizes and sha256 against the manifest (default true). */
  verify?: boolean;
  onProgress?: (file: string, loaded: number, total: number | undefined) => void;
  /**
   * Tokens dropped from the front when the context fills up; the cache is rebuilt from the rest.
   * Default: a quarter of the context (a multiple of the chunk for RETRO).
   */
  overflowDrop?: number;
}

export function gptInputs(layout: CacheLayout): string[] {
  return ['input_ids', ...layout.past];
}

export function gptOutputs(layout: CacheLayout): string[] {
  return ['logits', ...layout.present, 'knn_key'];
}

/** A fixed short input both backends must agree on. */
export function probeIds(vocabSize: number, length = 8): number[] {
  return Array.from({ length }, (_, i) => (17 + 389 * i) % vocabSize);
}

/** GPT decoder with a KV cache (docs/manifest.md, "GPT: decoder.int8.onnx"). */
export class GptModel implements LanguageModel {
  readonly manifest: ModelManifest;
  readonly info: ModelInfo;
  private readonly runtime: Runtime;
  private readonly decoder: RuntimeSession;
  private readonly vocab: number;
  private readonly overflowDrop: number;
  private readonly serial = new Serial();
  private tokens: number[] = [];
  private cacheStart = 0;
  private cache: KvCache | null = null;
  private readonly layout: CacheLayout;
  /** false for a fork: the decoder session belongs to the GptModel it was forked from. */
  private ownsDecoder = true;
  /** Where the decoder came from, to open its knn_key-only cut on first use (keysBatch). */
  private readonly files: ModelFiles;
  private keyGraph: Promise<RuntimeSession> | null = null;

  private constructor(runtime: Runtime, manifest: ModelManifest, decoder: RuntimeSession, overflowDrop: number | undefined, files: ModelFiles) {
    this.runtime = runtime;
    this.manifest = manifest;
    this.layout = cacheLayout(manifest);
    this.decoder = decoder;
    this.files = files;
    const hp = manifest.hyperparameters;
    this.vocab = hp.vocab_size;
    this.overflowDrop = overflowDrop ?? defaultOverflowDrop(hp.context);
    if (this.overflowDrop < 1 || this.overflowDrop >= hp.context) throw new RangeError(`overflowDrop must be in 1..${hp.context - 1}`);
    this.info = {
      id: manifest.id,
      name: manifest.name,
      architecture: 'gpt',
      vocabSize: hp.vocab_size,
      context: hp.context,
      backend: decoder.backend,
    };
  }

  static async load(runtime: Runtime, files: ModelFiles, options: ModelLoadOptions = {}): Promise<GptModel> {
    const manifest = await readManifest(files);
    return GptModel.fromManifest(runtime, files, manifest, options);
  }

  static async fromManifest(runtime: Runtime, files: ModelFiles, manifest: ModelManifest, options: ModelLoadOptions = {}): Promise<GptModel> {
    if (manifest.architecture !== 'gpt') throw new ModelLoadError('bad-manifest', `${manifest.id}: architecture is ${manifest.architecture}, not gpt`);
    const spec = manifest.onnx.decoder;
    const layout = cacheLayout(manifest);
    const decoder = await loadGraph(runtime, files, manifest, spec, {
      inputs: gptInputs(layout),
      outputs: gptOutputs(layout),
      deviceOutputs: layout.present,
      probe: {
        output: 'logits',
        feeds: () => {
          const ids = probeIds(manifest.hyperparameters.vocab_size);
          return { input_ids: runtime.int64(ids, [1, ids.length]), ...cacheFeeds(layout, emptyCache(runtime, manifest, layout)) };
        },
      },
      ...(options.verify === undefined ? {} : { verify: options.verify }),
      ...(options.onProgress ? { onProgress: (l: number, t: number | undefined) => options.onProgress!(spec.file, l, t) } : {}),
    });
    return new GptModel(runtime, manifest, decoder, options.overflowDrop, files);
  }

  get sequence(): readonly number[] {
    return this.tokens;
  }

  /**
   * A second sequence on the same loaded weights: its own tokens and KV cache, the same decoder
   * session (no second copy of the model). REPLUG runs one per passage. Calls on a fork and on its
   * parent are not serialised against each other: callers run them one after another.
   */
  fork(): GptModel {
    const fork = new GptModel(this.runtime, this.manifest, this.decoder, this.overflowDrop, this.files);
    fork.ownsDecoder = false;
    return fork;
  }

  get prefixLength(): number {
    return 0;
  }

  start(promptIds: readonly number[], options: StartOptions = {}): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (promptIds.length === 0) throw new RangeError('start() needs at least one token');
      checkTokenIds(promptIds, this.vocab);
      this.reset();
      this.tokens = [...promptIds];
      const context = this.manifest.hyperparameters.context;
      this.cacheStart = Math.max(0, this.tokens.length - context);
      const out = await this.feed(this.tokens.slice(this.cacheStart), options.allLogits === true);
      return { ...out, restarted: this.cacheStart > 0 };
    });
  }

  next(tokenId: number): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (!this.cache) throw new InferenceError('next() before start()');
      checkTokenIds([tokenId], this.vocab);
      this.tokens.push(tokenId);
      const context = this.manifest.hyperparameters.context;
      if (this.cache.length + 1 <= context) return { ...(await this.feed([tokenId], false)), restarted: false };
      disposeCache(this.cache);
      this.cache = null;
      this.cacheStart = this.tokens.length - (context - this.overflowDrop);
      return { ...(await this.feed(this.tokens.slice(this.cacheStart), false)), restarted: true };
    });
  }

  /**
   * Several tokens after the held sequence in one call on the KV cache (the graph takes any number
   * of new tokens beside the past): what `next` does token by token, with one forward in place of
   * `tokenIds.length`. RETRO's query key uses it to catch the GPT up by a chunk (8 tokens) at once.
   */
  extend(tokenIds: readonly number[]): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (!this.cache) throw new InferenceError('extend() before start()');
      if (tokenIds.length === 0) throw new RangeError('extend() needs at least one token');
      checkTokenIds(tokenIds, this.vocab);
      this.tokens.push(...tokenIds);
      const context = this.manifest.hyperparameters.context;
      if (this.cache.length + tokenIds.length <= context) return { ...(await this.feed(tokenIds, false)), restarted: false };
      disposeCache(this.cache);
      this.cache = null;
      this.cacheStart = this.tokens.length - (context - this.overflowDrop);
      return { ...(await this.feed(this.tokens.slice(this.cacheStart), false)), restarted: true };
    });
  }

  /**
   * One forward over B equal-length sequences from an empty cache (eval and tests): logits
   * [B, T, vocab]. Runs the same graph and code path as `start`.
   */
  forwardBatch(sequences: readonly (readonly number[])[]): Promise<Float32Array> {
    return this.serial.run(() => this.runFresh(this.decoder, sequences, 'logits', 'forwardBatch'));
  }

  /**
   * The knn_key of every position of B equal-length sequences, each from an empty cache: [B, T,
   * d_model], the keys `start(ids, { allLogits: true })` returns, from one forward of a cut of the
   * decoder that keeps only the knn_key output (keepOutputs): no 8,192-way logits, no KV cache out.
   * The kNN-LM key builders use it (~2x fewer operations per window than the whole graph).
   */
  keysBatch(sequences: readonly (readonly number[])[]): Promise<Float32Array> {
    return this.serial.run(async () => {
      this.keyGraph ??= this.openKeyGraph();
      return this.runFresh(await this.keyGraph, sequences, 'knn_key', 'keysBatch');
    });
  }

  /** One forward of `graph` over B equal-length sequences from an empty cache; the values of one output. */
  private async runFresh(graph: RuntimeSession, sequences: readonly (readonly number[])[], output: 'logits' | 'knn_key', method: string): Promise<Float32Array> {
    const { B, T, flat } = flattenBatch(sequences, this.vocab, method);
    const past = emptyCache(this.runtime, this.manifest, this.layout, B);
    const out = await graph.run({ input_ids: this.runtime.int64(flat, [B, T]), ...cacheFeeds(this.layout, past) });
    const values = await out[output]!.float32();
    for (const t of Object.values(out)) t.dispose();
    return values;
  }

  /** Frees the knn_key-only graph (its weights are a second copy of the decoder's) until the next keysBatch. */
  releaseKeyGraph(): Promise<void> {
    return this.serial.run(async () => {
      const keyGraph = this.keyGraph;
      this.keyGraph = null;
      if (keyGraph) await (await keyGraph.catch(() => null))?.release();
    });
  }

  private openKeyGraph(): Promise<RuntimeSession> {
    return loadGraph(this.runtime, this.files, this.manifest, this.manifest.onnx.decoder, {
      inputs: gptInputs(this.layout),
      outputs: ['knn_key'],
      // A graph that cannot be cut safely (keepOutputs: a subgraph) runs whole: the same keys, slower.
      transform: (bytes) => keepOutputs(bytes, ['knn_key']) ?? bytes,
    });
  }

  private async feed(ids: readonly number[], allLogits: boolean): Promise<Omit<StepOutput, 'restarted'>> {
    const cache = this.cache ?? emptyCache(this.runtime, this.manifest, this.layout);
    const out = await this.decoder.run({ input_ids: this.runtime.int64(ids, [1, ids.length]), ...cacheFeeds(this.layout, cache) });
    disposeCache(cache);
    this.cache = presentCache(this.layout, out, cache.length + ids.length);
    const logits = await out.logits!.float32();
    const keys = await out.knn_key!.float32();
    out.logits!.dispose();
    out.knn_key!.dispose();
    const T = ids.length;
    const d = this.manifest.hyperparameters.d_model;
    if (allLogits) return { logits, rows: T, knnKeys: keys, retrievals: [] };
    return { logits: logits.slice((T - 1) * this.vocab), rows: 1, knnKeys: keys.slice((T - 1) * d), retrievals: [] };
  }

  private reset(): void {
    disposeCache(this.cache);
    this.cache = null;
    this.tokens = [];
    this.cacheStart = 0;
  }

  async dispose(): Promise<void> {
    await this.serial.run(async () => this.reset());
    if (this.ownsDecoder) await this.decoder.release();
    await this.releaseKeyGraph();
  }
}
