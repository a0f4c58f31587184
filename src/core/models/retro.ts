import type { ModelManifest } from '../../protocol/manifest';
import type { ChunkRetrieval, ModelInfo, NeighbourView, RetroOptions } from '../../protocol/model';
import { InferenceError, ModelLoadError, type ModelFiles, type RtTensor, type Runtime, type RuntimeSession } from '../runtime';
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
import { probeIds, type ModelLoadOptions } from './gpt';
import { loadGraph, readManifest, retroHyperparameters, type RetroHyperparameters } from './manifest';
import { neighbourRows, toNeighbourView, type NeighbourSource } from './neighbours';
import type { LanguageModel, StartOptions, StepOutput } from './types';

export const RETRO_DECODER_INPUTS = ['input_ids', 'cca_key', 'cca_value', 'chunk_start'] as const;
/** The extra decoder input of a RETRO whose token match spans several tokens (hyperparameters.match_ngram > 1). */
export const RETRO_PREVIOUS_IDS = 'previous_ids';
/** The extra encoder input of a RETRO that gates neighbours by their agreement with the chunk (hyperparameters.chunk_agreement). */
export const RETRO_CHUNK_IDS = 'chunk_ids';
export const RETRO_ENCODER_INPUTS = ['neighbour_ids'] as const;
export const RETRO_ENCODER_OUTPUTS = ['cca_key', 'cca_value'] as const;

/** The decoder's inputs: RETRO_DECODER_INPUTS, previous_ids when match_ngram > 1, and the KV cache (as the GPT's, decoder.ts). */
export function retroDecoderInputs(layout: CacheLayout, hp: RetroHyperparameters): string[] {
  return [...RETRO_DECODER_INPUTS, ...(hp.match_ngram > 1 ? [RETRO_PREVIOUS_IDS] : []), ...layout.past];
}

export function retroDecoderOutputs(layout: CacheLayout): string[] {
  return ['logits', ...layout.present];
}

/**
 * A chunk_start beyond any chunk: every position's chunk falls outside [chunk_start, chunk_start+U),
 * so cross-attention is masked everywhere, exactly as for tokens before the first chunk
 * completes. That is what "retrieval off" means for this model.
 */
const MASKED_CHUNK_START = 1 << 30;

export function defaultRetroOptions(manifest: ModelManifest): RetroOptions {
  const hp = retroHyperparameters(manifest);
  return { retrieval: true, k: hp.neighbours, retrievalStep: hp.chunk, leftPad: false, retroPlusPlus: false, excludeDocIds: [] };
}

export interface RetroLoadOptions extends ModelLoadOptions {
  neighbourSource?: NeighbourSource;
  options?: Partial<RetroOptions>;
}

/** Encoder outputs of `chunks` chunks: keys and values [n_cca, 1, chunks, H, K*L, D]. */
export interface EncodedChunks {
  key: Float32Array;
  value: Float32Array;
  chunks: number;
}

/** Encoder output for one retrieval: [n_cca, 1, 1, H, K*L, D] keys and values. */
interface Encoded {
  key: Float32Array;
  value: Float32Array;
  retrieval: ChunkRetrieval;
}

interface Segment {
  from: number;
  to: number; // inclusive, absolute positions
  chunkStart: number; // relative to the cache start; MASKED_CHUNK_START or 0 when nothing attends
  events: number[]; // event index per stacked chunk slot (empty: zeros U=1)
}

/**
 * RETRO decoder + neighbour encoder with a KV cache, following docs/manifest.md:
 * - The token at position i (from the cache start) attends to chunk u = floor((i+1)/C) - 1.
 * - Before the token that completes a chunk is fed, that chunk is the retrieval query; the
 *   encoder runs once on its neighbours and the token is fed with chunk_start = u, U = 1.
 * - Positions with u < 0 get a U=1 zero tensor with chunk_start = 0 (masked).
 * - A prefill passes the encoder outputs of every chunk it needs, stacked.
 *
 * Options (RetroOptions, fixed at start()):
 * - retrieval off: chunk_start beyond every chunk, i.e. no cross-attention anywhere.
 * - k < K neighbours: rows repeated cyclically (see neighbourRows; exact when k divides K).
 * - retrievalStep s (the NVIDIA RETRO study's retrieval stride): the first retrieval happens when
 *   the first chunk completes (position C-1) and then every s tokens, each time with the last C
 *   tokens as query; positions use the most recent retrieval. s = C is the standard algorithm.
 * - leftPad: eot on the left up to a multiple of C, so the prompt's last token completes a chunk
 *   and the first generated token already attends to neighbours of the prompt. Padding is
 *   excluded from retrieval queries.
 * - retroPlusPlus: the top-1 neighbour of the prompt's last chunk goes into the context before
 *   the prompt (padding, if any, goes before both).
 * - Context overflow: the cache restarts `overflowDrop` tokens later (a multiple of C, so chunks
 *   stay aligned) and re-feeds the rest; retrievals are kept, not repeated.
 */
export class RetroModel implements LanguageModel {
  readonly manifest: ModelManifest;
  readonly info: ModelInfo;
  readonly hp: RetroHyperparameters;
  private readonly runtime: Runtime;
  private readonly decoder: RuntimeSession;
  private readonly encoder: RuntimeSession;
  private readonly layout: CacheLayout;
  private readonly vocab: number;
  private readonly context: number;
  private readonly overflowDrop: number;
  private readonly serial = new Serial();
  private source: NeighbourSource | null;
  private options: RetroOptions;

  // The current sequence.
  private seqOptions: RetroOptions;
  private tokens: number[] = [];
  private padCount = 0;
  private prefix = 0;
  private cacheStart = 0;
  private cache: KvCache | null = null;
  private encoded = new Map<number, Encoded>();
  private history: ChunkRetrieval[] = [];
  private ccaTensors: { signature: string; key: RtTensor; value: RtTensor } | null = null;

  private constructor(init: {
    runtime: Runtime;
    manifest: ModelManifest;
    decoder: RuntimeSession;
    encoder: RuntimeSession;
    source: NeighbourSource | null;
    options: RetroOptions;
    overflowDrop: number | undefined;
  }) {
    this.runtime = init.runtime;
    this.manifest = init.manifest;
    this.decoder = init.decoder;
    this.encoder = init.encoder;
    this.layout = cacheLayout(init.manifest);
    this.source = init.source;
    this.hp = retroHyperparameters(init.manifest);
    const hp = init.manifest.hyperparameters;
    this.vocab = hp.vocab_size;
    this.context = hp.context;
    this.overflowDrop = init.overflowDrop ?? defaultOverflowDrop(hp.context, this.hp.chunk);
    if (this.overflowDrop % this.hp.chunk !== 0 || this.overflowDrop < this.hp.chunk || this.overflowDrop >= this.context) {
      throw new RangeError(`overflowDrop must be a multiple of chunk (${this.hp.chunk}) below the context (${this.context})`);
    }
    this.options = validateOptions(init.options, this.hp, this.context);
    this.seqOptions = this.options;
    const backend = init.decoder.backend.backend === init.encoder.backend.backend
      ? init.decoder.backend
      : { ...init.decoder.backend, reason: `${init.decoder.backend.reason}; encoder on ${init.encoder.backend.backend}: ${init.encoder.backend.reason}` };
    this.info = {
      id: init.manifest.id,
      name: init.manifest.name,
      architecture: 'retro',
      vocabSize: hp.vocab_size,
      context: hp.context,
      chunk: this.hp.chunk,
      neighbours: this.hp.neighbours,
      backend,
    };
  }

  static async load(runtime: Runtime, files: ModelFiles, options: RetroLoadOptions = {}): Promise<RetroModel> {
    return RetroModel.fromManifest(runtime, files, await readManifest(files), options);
  }

  static async fromManifest(runtime: Runtime, files: ModelFiles, manifest: ModelManifest, options: RetroLoadOptions = {}): Promise<RetroModel> {
    if (manifest.architecture !== 'retro') throw new ModelLoadError('bad-manifest', `${manifest.id}: architecture is ${manifest.architecture}, not retro`);
    const hp = manifest.hyperparameters;
    const rhp = retroHyperparameters(manifest);
    const progress = (file: string) =>
      options.onProgress ? { onProgress: (l: number, t: number | undefined) => options.onProgress!(file, l, t) } : {};
    const verify = options.verify === undefined ? {} : { verify: options.verify };
    const ccaDims = [rhp.cca_layers.length, 1, 1, hp.n_head, rhp.neighbours * rhp.neighbour_len, hp.head_dim];
    const encoder = await loadGraph(runtime, files, manifest, manifest.onnx.encoder!, {
      inputs: rhp.chunk_agreement ? [...RETRO_ENCODER_INPUTS, RETRO_CHUNK_IDS] : RETRO_ENCODER_INPUTS,
      outputs: RETRO_ENCODER_OUTPUTS,
      probe: {
        output: 'cca_key',
        feeds: () => {
          const ids = probeIds(hp.vocab_size, rhp.neighbours * rhp.neighbour_len);
          return {
            neighbour_ids: runtime.int64(ids, [1, 1, rhp.neighbours, rhp.neighbour_len]),
            // The probe's chunk repeats the first neighbour's opening, so the gate is exercised at agreement 1.
            ...chunkIdsFeed(runtime, rhp, () => ids.slice(0, rhp.chunk), 1),
          };
        },
      },
      ...verify,
      ...progress(manifest.onnx.encoder!.file),
    });
    const layout = cacheLayout(manifest);
    const decoder = await loadGraph(runtime, files, manifest, manifest.onnx.decoder, {
      inputs: retroDecoderInputs(layout, rhp),
      outputs: retroDecoderOutputs(layout),
      deviceOutputs: layout.present,
      probe: {
        output: 'logits',
        // Longer than a chunk, with non-zero neighbour keys, so the cross-attention path is compared too.
        feeds: () => {
          const ids = probeIds(hp.vocab_size, rhp.chunk + 8);
          const cca = new Float32Array(ccaDims.reduce((a, b) => a * b, 1)).map((_, i) => 0.5 * Math.sin(i * 0.37));
          return {
            input_ids: runtime.int64(ids, [1, ids.length]),
            ...cacheFeeds(layout, emptyCache(runtime, manifest, layout)),
            cca_key: runtime.float32(cca, ccaDims),
            cca_value: runtime.float32(cca.map((v) => -v), ccaDims),
            chunk_start: runtime.scalarInt64(0),
            ...previousIdsFeed(runtime, rhp, 1, () => -1),
          };
        },
      },
      ...verify,
      ...progress(manifest.onnx.decoder.file),
    });
    const retroOptions = { ...defaultRetroOptions(manifest), ...options.options };
    return new RetroModel({
      runtime,
      manifest,
      decoder,
      encoder,
      source: options.neighbourSource ?? null,
      options: retroOptions,
      overflowDrop: options.overflowDrop,
    });
  }

  /** Where neighbours come from (a datastore, the eval's store). Takes effect immediately. */
  setNeighbourSource(source: NeighbourSource | null): void {
    this.source = source;
  }

  /** Options for the next `start()`; the running sequence keeps the ones it started with. */
  setOptions(options: Partial<RetroOptions>): RetroOptions {
    this.options = validateOptions({ ...this.options, ...options }, this.hp, this.context);
    return this.options;
  }

  getOptions(): RetroOptions {
    return { ...this.options, excludeDocIds: [...this.options.excludeDocIds] };
  }

  get sequence(): readonly number[] {
    return this.tokens;
  }

  get prefixLength(): number {
    return this.prefix;
  }

  /** Every retrieval of the current sequence, in order. */
  get retrievals(): readonly ChunkRetrieval[] {
    return this.history;
  }

  start(promptIds: readonly number[], options: StartOptions = {}): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (promptIds.length === 0) throw new RangeError('start() needs at least one token');
      checkTokenIds(promptIds, this.vocab);
      this.reset();
      this.seqOptions = this.options;
      const opts = this.seqOptions;
      if (opts.retrieval && !this.source) throw new InferenceError('RETRO needs a neighbour source (setNeighbourSource) or retrieval turned off');
      const C = this.hp.chunk;
      const retrievals: ChunkRetrieval[] = [];
      let context: number[] = [];
      if (opts.retrieval && opts.retroPlusPlus) {
        const query = promptIds.slice(-C);
        const [top] = await this.retrieve(query, 1, promptIds.slice(-this.manifest.hyperparameters.context));
        if (top) {
          context = trimTrailing(top.tokenIds, this.manifest.tokenizer.eot_id);
          const record: ChunkRetrieval = { purpose: 'context', chunkIndex: -1, position: -1, queryTokenIds: [...query], neighbours: [top] };
          retrievals.push(record);
          this.history.push(record);
        }
      }
      const body = [...context, ...promptIds];
      this.padCount = opts.leftPad && body.length % C !== 0 ? C - (body.length % C) : 0;
      this.tokens = [...new Array<number>(this.padCount).fill(this.manifest.tokenizer.eot_id), ...body];
      this.prefix = this.padCount + context.length;
      this.cacheStart = this.tokens.length > this.context ? Math.ceil((this.tokens.length - this.context) / C) * C : 0;
      const out = await this.feed(this.cacheStart, this.tokens.length - 1, options.allLogits === true);
      return { ...out, retrievals: [...retrievals, ...out.retrievals], restarted: this.cacheStart > 0 };
    });
  }

  next(tokenId: number): Promise<StepOutput> {
    return this.serial.run(async () => {
      if (!this.cache) throw new InferenceError('next() before start()');
      checkTokenIds([tokenId], this.vocab);
      this.tokens.push(tokenId);
      const i = this.tokens.length - 1;
      if (i - this.cacheStart + 1 <= this.context) return { ...(await this.feed(i, i, false)), restarted: false };
      disposeCache(this.cache);
      this.cache = null;
      while (i - this.cacheStart + 1 > this.context) this.cacheStart += this.overflowDrop;
      this.prune();
      return { ...(await this.feed(this.cacheStart, i, false)), restarted: true };
    });
  }

  /**
   * Runs the encoder on `chunks` sets of K neighbour rows (chunks*K*L ids): the cross-attention
   * keys and values of each chunk, which depend only on its neighbours (and, for a model with
   * chunk_agreement, on the retrieving chunks' ids: `chunkIds`, chunks*C of them). The eval caches
   * them, since overlapping windows share chunks.
   */
  encode(neighbourIds: Int32Array, chunkIds?: ArrayLike<number>): Promise<EncodedChunks> {
    return this.serial.run(async () => {
      const { neighbours: K, neighbour_len: L } = this.hp;
      const chunks = neighbourIds.length / (K * L);
      if (!Number.isInteger(chunks) || chunks < 1) throw new RangeError(`encode needs a multiple of ${K}x${L} ids`);
      checkTokenIds(Array.from(neighbourIds), this.vocab);
      const out = await this.encoder.run({
        neighbour_ids: this.runtime.int64(neighbourIds, [1, chunks, K, L]),
        ...this.chunkIds(chunks, () => {
          if (!chunkIds || chunkIds.length !== chunks * this.hp.chunk) throw new RangeError(`encode needs the ${chunks}x${this.hp.chunk} retrieving-chunk ids of this RETRO`);
          return Array.from(chunkIds);
        }),
      });
      const encoded = { key: await out.cca_key!.float32(), value: await out.cca_value!.float32(), chunks };
      out.cca_key!.dispose();
      out.cca_value!.dispose();
      return encoded;
    });
  }

  /** Chunk `index` of an `encode` result, as a one-chunk EncodedChunks. */
  chunkOf(encoded: EncodedChunks, index: number): EncodedChunks {
    const nCca = this.hp.cca_layers.length;
    const per = encoded.key.length / (nCca * encoded.chunks);
    return {
      key: sliceChunk(encoded.key, nCca, encoded.chunks, index, per),
      value: sliceChunk(encoded.value, nCca, encoded.chunks, index, per),
      chunks: 1,
    };
  }

  /**
   * Full forward of B equal-length sequences from position 0 (eval and tests). `neighbours[b]`
   * gives chunks 0..U-1 of sequence b (U = floor(T/C)), either as U*K*L neighbour ids (the
   * encoder runs here) or as U encoded chunks (one-chunk `encode` results, in order).
   * With U = 0 no position attends to anything; `null` means retrieval off. Logits [B, T, vocab].
   */
  forwardBatch(
    sequences: readonly (readonly number[])[],
    neighbours: readonly Int32Array[] | readonly (readonly EncodedChunks[])[] | null,
  ): Promise<Float32Array> {
    return this.serial.run(async () => {
      const { B, T, flat } = flattenBatch(sequences, this.vocab, 'forwardBatch');
      const { chunk: C, neighbours: K, neighbour_len: L } = this.hp;
      const U = Math.floor(T / C);
      let cca: { key: RtTensor; value: RtTensor };
      let chunkStart = 0;
      if (neighbours === null || U === 0) {
        cca = this.zeroCca(B);
        if (neighbours === null) chunkStart = MASKED_CHUNK_START;
      } else if (neighbours.length !== B) {
        throw new RangeError(`forwardBatch: ${neighbours.length} neighbour sets for ${B} sequences`);
      } else if (neighbours[0] instanceof Int32Array) {
        const rows = neighbours as readonly Int32Array[];
        if (rows.some((n) => n.length !== U * K * L)) throw new RangeError(`forwardBatch: each sequence needs ${U}x${K}x${L} neighbour ids`);
        const ids = new Int32Array(B * U * K * L);
        rows.forEach((n, b) => ids.set(n, b * U * K * L));
        const enc = await this.encoder.run({
          neighbour_ids: this.runtime.int64(ids, [B, U, K, L]),
          // Chunk u of each sequence retrieved its neighbours: tokens u*C .. u*C+C-1.
          ...this.chunkIds(U, () => sequences.flatMap((s) => s.slice(0, U * C)), B),
        });
        cca = { key: enc.cca_key!, value: enc.cca_value! };
      } else {
        const sets = neighbours as readonly (readonly EncodedChunks[])[];
        if (sets.some((set) => set.length !== U || set.some((e) => e.chunks !== 1))) {
          throw new RangeError(`forwardBatch: each sequence needs ${U} encoded chunks`);
        }
        const nCca = this.hp.cca_layers.length;
        const dims = this.ccaDims(B, U);
        cca = {
          key: this.runtime.float32(stackBatch(sets.map((set) => set.map((e) => e.key)), nCca), dims),
          value: this.runtime.float32(stackBatch(sets.map((set) => set.map((e) => e.value)), nCca), dims),
        };
      }
      const past = emptyCache(this.runtime, this.manifest, this.layout, B);
      const out = await this.decoder.run({
        input_ids: this.runtime.int64(flat, [B, T]),
        ...cacheFeeds(this.layout, past),
        cca_key: cca.key,
        cca_value: cca.value,
        chunk_start: this.runtime.scalarInt64(chunkStart),
        // Every sequence starts at position 0: nothing comes before it.
        ...previousIdsFeed(this.runtime, this.hp, B, () => -1),
      });
      const logits = await out.logits!.float32();
      for (const t of [...Object.values(out), cca.key, cca.value]) t.dispose();
      return logits;
    });
  }

  /** Retrieval event j happens before feeding position C-1 + j*s (from the sequence start). */
  private eventPosition(j: number): number {
    return this.hp.chunk - 1 + j * this.seqOptions.retrievalStep;
  }

  private eventIndex(position: number): number {
    const C = this.hp.chunk;
    return position < C - 1 ? -1 : Math.floor((position - (C - 1)) / this.seqOptions.retrievalStep);
  }

  /** Feeds absolute positions from..to (their tokens are in `this.tokens`) onto the cache. */
  private async feed(from: number, to: number, allLogits: boolean): Promise<Omit<StepOutput, 'restarted'>> {
    const retrievals = this.seqOptions.retrieval ? await this.retrieveEvents(from, to) : [];
    const segments = this.segments(from, to);
    const rows: Float32Array[] = [];
    for (const [n, segment] of segments.entries()) {
      const isLast = n === segments.length - 1;
      const logits = await this.runSegment(segment, allLogits || isLast);
      if (allLogits) rows.push(logits);
      else if (isLast) rows.push(logits.slice((segment.to - segment.from) * this.vocab));
    }
    const logits = rows.length === 1 ? rows[0]! : concat(rows);
    return { logits, rows: logits.length / this.vocab, retrievals };
  }

  /** Retrieves and encodes every retrieval event positions from..to need and that is not done yet. */
  private async retrieveEvents(from: number, to: number): Promise<ChunkRetrieval[]> {
    const first = Math.max(0, this.eventIndex(from));
    const last = this.eventIndex(to);
    const todo: number[] = [];
    for (let j = first; j <= last; j++) if (!this.encoded.has(j)) todo.push(j);
    if (todo.length === 0) return [];
    const { chunk: C, neighbours: K, neighbour_len: L } = this.hp;
    const opts = this.seqOptions;
    const records: ChunkRetrieval[] = [];
    const ids = new Int32Array(todo.length * K * L);
    for (const [e, j] of todo.entries()) {
      const position = this.eventPosition(j);
      const queryStart = Math.max(position - C + 1, this.padCount);
      const query = this.tokens.slice(queryStart, position + 1);
      const context = this.tokens.slice(Math.max(this.padCount, position + 1 - this.manifest.hyperparameters.context), position + 1);
      const neighbours = await this.retrieve(query, opts.k, context);
      ids.set(neighbourRows(neighbours, opts.k, K, L, this.manifest.tokenizer.eot_id), e * K * L);
      records.push({ purpose: 'chunk', chunkIndex: Math.floor((position + 1) / C) - 1, position, queryTokenIds: query, neighbours });
    }
    const out = await this.encoder.run({
      neighbour_ids: this.runtime.int64(ids, [1, todo.length, K, L]),
      // Each retrieval's chunk: the C tokens ending at its position (padding included, as in scoring).
      ...this.chunkIds(todo.length, () => todo.flatMap((j) => this.tokens.slice(this.eventPosition(j) - C + 1, this.eventPosition(j) + 1))),
    });
    const [keys, values] = [await out.cca_key!.float32(), await out.cca_value!.float32()];
    out.cca_key!.dispose();
    out.cca_value!.dispose();
    const nCca = this.hp.cca_layers.length;
    const per = keys.length / (nCca * todo.length);
    for (const [e, j] of todo.entries()) {
      this.encoded.set(j, {
        key: sliceChunk(keys, nCca, todo.length, e, per),
        value: sliceChunk(values, nCca, todo.length, e, per),
        retrieval: records[e]!,
      });
    }
    this.history.push(...records);
    return records;
  }

  private async retrieve(query: readonly number[], k: number, context: readonly number[]): Promise<NeighbourView[]> {
    if (!this.source) throw new InferenceError('RETRO needs a neighbour source');
    const found = await this.source([...query], k, { excludeDocIds: this.seqOptions.excludeDocIds, context, ...(this.seqOptions.randomNeighbours ? { random: true } : {}) });
    return found.slice(0, k).map(toNeighbourView);
  }

  /**
   * Splits positions from..to into decoder calls. One call can serve positions whose chunk slots
   * (relative to the cache start) form a run chunk_start..chunk_start+U-1 with one retrieval per
   * slot; with retrievalStep = chunk a whole prefill is one call.
   */
  private segments(from: number, to: number): Segment[] {
    if (!this.seqOptions.retrieval) return [{ from, to, chunkStart: MASKED_CHUNK_START, events: [] }];
    const C = this.hp.chunk;
    const segments: Segment[] = [];
    let current: Segment = { from, to: from - 1, chunkStart: 0, events: [] };
    for (let i = from; i <= to; i++) {
      const slot = Math.floor((i - this.cacheStart + 1) / C) - 1;
      let fits = true;
      if (slot >= 0) {
        const event = this.eventIndex(i);
        const stack = current.events;
        if (stack.length === 0) {
          current.chunkStart = slot;
          stack.push(event);
        } else if (slot === current.chunkStart + stack.length - 1) {
          fits = stack[stack.length - 1] === event;
        } else if (slot === current.chunkStart + stack.length) {
          stack.push(event);
        } else {
          fits = false;
        }
      }
      if (!fits) {
        segments.push(current);
        current = { from: i, to: i - 1, chunkStart: slot, events: [this.eventIndex(i)] };
      }
      current.to = i;
    }
    segments.push(current);
    return segments;
  }

  private async runSegment(segment: Segment, wantLogits: boolean): Promise<Float32Array> {
    const cache = this.cache ?? emptyCache(this.runtime, this.manifest, this.layout);
    const ids = this.tokens.slice(segment.from, segment.to + 1);
    const cca = this.ccaFor(segment.events);
    const out = await this.decoder.run({
      input_ids: this.runtime.int64(ids, [1, ids.length]),
      ...cacheFeeds(this.layout, cache),
      cca_key: cca.key,
      cca_value: cca.value,
      chunk_start: this.runtime.scalarInt64(segment.chunkStart),
      // The tokens before this call's first position, as far as the cache reaches back: a restarted
      // cache starts like a fresh window, which is how the model was trained and is scored.
      ...previousIdsFeed(this.runtime, this.hp, 1, (back) => {
        const position = segment.from - back;
        return position >= this.cacheStart ? this.tokens[position]! : -1;
      }),
    });
    disposeCache(cache);
    this.cache = presentCache(this.layout, out, cache.length + ids.length);
    const logits = wantLogits ? await out.logits!.float32() : new Float32Array(0);
    out.logits!.dispose();
    return logits;
  }

  /** cca_key/value for the given stacked retrievals; reused while the stack stays the same. */
  private ccaFor(events: readonly number[]): { key: RtTensor; value: RtTensor } {
    const signature = events.join(',');
    if (this.ccaTensors?.signature === signature) return this.ccaTensors;
    this.ccaTensors?.key.dispose();
    this.ccaTensors?.value.dispose();
    let tensors: { key: RtTensor; value: RtTensor };
    if (events.length === 0) {
      tensors = this.zeroCca(1);
    } else {
      const parts = events.map((j) => {
        const e = this.encoded.get(j);
        if (!e) throw new InferenceError(`internal: retrieval ${j} was not encoded`);
        return e;
      });
      const nCca = this.hp.cca_layers.length;
      const dims = this.ccaDims(1, parts.length);
      tensors = {
        key: this.runtime.float32(stackChunks(parts.map((p) => p.key), nCca), dims),
        value: this.runtime.float32(stackChunks(parts.map((p) => p.value), nCca), dims),
      };
    }
    this.ccaTensors = { signature, ...tensors };
    return this.ccaTensors;
  }

  /** The encoder's chunk_ids feed for a chunk_agreement RETRO (ids() gives batch*chunks*C ids), else none. */
  private chunkIds(chunks: number, ids: () => number[], batch = 1): Record<string, RtTensor> {
    return chunkIdsFeed(this.runtime, this.hp, ids, chunks, batch);
  }

  private ccaDims(batch: number, chunks: number): number[] {
    const hp = this.manifest.hyperparameters;
    return [this.hp.cca_layers.length, batch, chunks, hp.n_head, this.hp.neighbours * this.hp.neighbour_len, hp.head_dim];
  }

  private zeroCca(batch: number): { key: RtTensor; value: RtTensor } {
    const dims = this.ccaDims(batch, 1);
    return { key: this.runtime.zeros(dims), value: this.runtime.zeros(dims) };
  }

  /** Forgets encoder outputs no position from the cache start on can use. */
  private prune(): void {
    const oldest = this.eventIndex(this.cacheStart);
    for (const j of [...this.encoded.keys()]) if (j < oldest) this.encoded.delete(j);
  }

  private reset(): void {
    disposeCache(this.cache);
    this.cache = null;
    this.ccaTensors?.key.dispose();
    this.ccaTensors?.value.dispose();
    this.ccaTensors = null;
    this.encoded.clear();
    this.history = [];
    this.tokens = [];
    this.padCount = 0;
    this.prefix = 0;
    this.cacheStart = 0;
  }

  async dispose(): Promise<void> {
    await this.serial.run(async () => this.reset());
    await this.decoder.release();
    await this.encoder.release();
  }
}

/**
 * The previous_ids feed of a RETRO with match_ngram n > 1 ([batch, n-1], oldest first; `tokenBack(i)` is the
 * token i positions before the first input, -1 for none), or no feed at all for n = 1.
 */
function previousIdsFeed(runtime: Runtime, hp: RetroHyperparameters, batch: number, tokenBack: (back: number) => number): Record<string, RtTensor> {
  const lags = hp.match_ngram - 1;
  if (lags <= 0) return {};
  const row = Array.from({ length: lags }, (_, i) => tokenBack(lags - i));
  return { [RETRO_PREVIOUS_IDS]: runtime.int64(Array.from({ length: batch }, () => row).flat(), [batch, lags]) };
}

function chunkIdsFeed(runtime: Runtime, hp: RetroHyperparameters, ids: () => ArrayLike<number>, chunks: number, batch = 1): Record<string, RtTensor> {
  if (!hp.chunk_agreement) return {};
  return { [RETRO_CHUNK_IDS]: runtime.int64(ids(), [batch, chunks, hp.chunk]) };
}

function validateOptions(options: RetroOptions, hp: RetroHyperparameters, context: number): RetroOptions {
  if (!Number.isInteger(options.k) || options.k < 1 || options.k > hp.neighbours) {
    throw new RangeError(`k must be 1..${hp.neighbours} (the model's neighbours); turn retrieval off for none`);
  }
  if (!Number.isInteger(options.retrievalStep) || options.retrievalStep < 1 || options.retrievalStep > context) {
    throw new RangeError(`retrievalStep must be 1..${context}`);
  }
  return { ...options, excludeDocIds: [...options.excludeDocIds] };
}

/** Slice of chunk e from [n_cca, 1, E, ...per] as [n_cca, 1, 1, ...per]. */
function sliceChunk(data: Float32Array, nCca: number, E: number, e: number, per: number): Float32Array {
  if (E === 1) return data;
  const out = new Float32Array(nCca * per);
  for (let l = 0; l < nCca; l++) out.set(data.subarray((l * E + e) * per, (l * E + e + 1) * per), l * per);
  return out;
}

/** Stacks [n_cca, 1, 1, ...per] arrays along the chunk axis into [n_cca, 1, U, ...per]. */
function stackChunks(parts: readonly Float32Array[], nCca: number): Float32Array {
  if (parts.length === 1) return parts[0]!;
  const per = parts[0]!.length / nCca;
  const U = parts.length;
  const out = new Float32Array(nCca * U * per);
  for (let l = 0; l < nCca; l++) {
    parts.forEach((p, u) => out.set(p.subarray(l * per, (l + 1) * per), (l * U + u) * per));
  }
  return out;
}

/** [n_cca, 1, 1, ...per] arrays per (sequence, chunk) into [n_cca, B, U, ...per]. */
function stackBatch(sets: readonly (readonly Float32Array[])[], nCca: number): Float32Array {
  const B = sets.length;
  const U = sets[0]!.length;
  const per = sets[0]![0]!.length / nCca;
  const out = new Float32Array(nCca * B * U * per);
  for (let l = 0; l < nCca; l++) {
    sets.forEach((set, b) => set.forEach((chunk, u) => out.set(chunk.subarray(l * per, (l + 1) * per), ((l * B + b) * U + u) * per)));
  }
  return out;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function trimTrailing(ids: readonly number[], value: number): number[] {
  let end = ids.length;
  while (end > 0 && ids[end - 1] === value) end--;
  return ids.slice(0, end);
}
