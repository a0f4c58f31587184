/**
 * Perplexity by the protocol of docs/manifest.md (mirrored by models/retrolab/evaluate.py): the
 * split is one token stream; windows of `context` tokens start at multiples of `stride`; the first
 * window scores all its targets, later windows only their last `stride` targets.
 */
import { logSoftmaxAt } from '../generate/sampler';
import type { EncodedChunks, RetroModel } from '../models/retro';
import { yieldToEventLoop } from '../event-loop';

export interface Window {
  start: number;
  /** inputs = ids[start, start+length-1), targets shifted by one; length <= context + 1 */
  length: number;
  firstScored: number;
}

export function streamWindows(streamLength: number, context: number, stride: number, maxWindows?: number): Window[] {
  if (stride < 1 || stride > context) throw new RangeError('stride must be 1..context');
  const windows: Window[] = [];
  let start = 0;
  while (start + 1 < streamLength) {
    const length = Math.min(context + 1, streamLength - start);
    windows.push({ start, length, firstScored: start === 0 ? 0 : context - stride });
    if ((maxWindows !== undefined && windows.length >= maxWindows) || start + context + 1 >= streamLength) break;
    start += stride;
  }
  return windows;
}

/** A slice of a protocol's windows, so one evaluation can run as several processes (one per core). */
export interface WindowRange {
  start: number;
  /** excluded */
  end: number;
}

export function selectWindows(windows: Window[], range: WindowRange | undefined): Window[] {
  if (!range) return windows;
  if (!(Number.isInteger(range.start) && Number.isInteger(range.end) && range.start >= 0 && range.start < range.end)) {
    throw new RangeError(`windowRange must be integers 0 <= start < end, got ${range.start}:${range.end}`);
  }
  return windows.slice(range.start, range.end);
}

/** Neighbour ids for a window's complete chunks: U*K*L ids for chunks 0..U-1 of `inputs`. */
export type WindowNeighbours = (inputs: Int32Array, window: Window) => Promise<Int32Array>;

export interface PerplexityOptions {
  context: number;
  stride: number;
  /** Windows per forward (batch dimension). */
  batch?: number;
  maxWindows?: number;
  /** Only these windows of the protocol (the totals then cover a part of the split). */
  windowRange?: WindowRange;
  /** RETRO only: neighbours for each window; omitted = no retrieval (all positions masked). */
  neighbours?: WindowNeighbours;
  /** WikiText words of the split, for word-level perplexity. */
  words?: number;
  onProgress?: (done: number, total: number) => void;
  /** Filled with log p(ids[j+1] | context) at index j for every scored target (length >= ids.length - 1). */
  tokenLogProbs?: Float32Array;
  /** Checked before each forward; an aborted run rejects with an AbortError. */
  signal?: AbortSignal;
}

/**
 * What the eval needs from a model without retrieval: GptModel, and KnnLmModel (whose rows are
 * already log-probabilities, which the log-softmax below leaves unchanged).
 */
export interface BatchScorer {
  readonly info: { readonly vocabSize: number };
  forwardBatch(sequences: readonly (readonly number[])[]): Promise<Float32Array>;
}

export interface PerplexityTotals {
  windows: number;
  /** windows of the whole protocol (more than `windows` when a windowRange was given) */
  total_windows: number;
  scored_tokens: number;
  nll: number;
  token_ppl: number;
  words?: number;
  word_ppl?: number;
}

/** Scores the stream with the model's own batch forward (the shipped ONNX, the app's code path). */
export async function evaluatePerplexity(
  model: BatchScorer | RetroModel,
  ids: ArrayLike<number>,
  options: PerplexityOptions,
): Promise<PerplexityTotals> {
  const allWindows = streamWindows(ids.length, options.context, options.stride, options.maxWindows);
  const windows = selectWindows(allWindows, options.windowRange);
  const batch = Math.max(1, options.batch ?? 1);
  const V = model.info.vocabSize;
  const encoded = new EncoderCache();
  let nll = 0;
  let scored = 0;
  let done = 0;
  let i = 0;
  const perToken = options.tokenLogProbs;
  if (perToken && perToken.length < ids.length - 1) throw new RangeError(`tokenLogProbs needs ${ids.length - 1} entries`);
  while (i < windows.length) {
    if (options.signal) {
      // In a worker, a stop request is a message: it is only seen if the loop lets the event loop run.
      await yieldToEventLoop();
      if (options.signal.aborted) throw abortError();
    }
    const group: Window[] = [windows[i]!];
    while (group.length < batch && i + group.length < windows.length && windows[i + group.length]!.length === group[0]!.length) {
      group.push(windows[i + group.length]!);
    }
    i += group.length;
    const inputs = group.map((w) => Int32Array.from({ length: w.length - 1 }, (_, t) => ids[w.start + t]!));
    const sequences = inputs.map((x) => Array.from(x));
    let logits: Float32Array;
    if (isRetro(model)) {
      const neighbours = options.neighbours ? await Promise.all(group.map((w, b) => options.neighbours!(inputs[b]!, w))) : null;
      logits = neighbours ? await model.forwardBatch(sequences, await encoded.get(model, neighbours, inputs)) : await model.forwardBatch(sequences, null);
    } else {
      logits = await model.forwardBatch(sequences);
    }
    const T = group[0]!.length - 1;
    group.forEach((w, b) => {
      for (let t = w.firstScored; t < T; t++) {
        const lp = logSoftmaxAt(logits, ids[w.start + t + 1]!, (b * T + t) * V, V);
        nll -= lp;
        if (perToken) perToken[w.start + t] = lp;
        scored++;
      }
    });
    done += group.length;
    options.onProgress?.(done, windows.length);
  }
  const totals: PerplexityTotals = { windows: windows.length, total_windows: allWindows.length, scored_tokens: scored, nll, token_ppl: Math.exp(nll / Math.max(1, scored)) };
  if (options.words) {
    totals.words = options.words;
    totals.word_ppl = Math.exp(nll / options.words);
  }
  return totals;
}

function isRetro(model: BatchScorer | RetroModel): model is RetroModel {
  return 'setNeighbourSource' in model;
}

function abortError(): Error {
  return Object.assign(new Error('The perplexity run was stopped.'), { name: 'AbortError' });
}

/**
 * Encoder outputs by neighbour content. Windows overlap by context - stride tokens, so with the
 * default stride half of each window's chunks were encoded for the window before; they are reused
 * instead of re-encoded (a chunk_agreement RETRO's encoding also depends on the retrieving chunk, so
 * its ids are part of the key). Entries not used by the latest batch are dropped.
 */
class EncoderCache {
  private entries = new Map<string, EncodedChunks>();

  async get(model: RetroModel, neighbours: readonly Int32Array[], inputs: readonly Int32Array[]): Promise<readonly Int32Array[] | EncodedChunks[][]> {
    const { neighbours: K, neighbour_len: L, chunk: C, chunk_agreement: withChunk } = model.hp;
    const U = neighbours[0]!.length / (K * L);
    if (U === 0) return neighbours;
    const chunkOf = (b: number, u: number) => inputs[b]!.subarray(u * C, (u + 1) * C);
    const keys = neighbours.map((rows, b) =>
      Array.from({ length: U }, (_, u) => rows.subarray(u * K * L, (u + 1) * K * L).join(',') + (withChunk ? `|${chunkOf(b, u).join(',')}` : '')),
    );
    const missing = new Map<string, { rows: Int32Array; chunk: Int32Array }>();
    keys.forEach((row, b) =>
      row.forEach((key, u) => {
        if (!this.entries.has(key) && !missing.has(key)) missing.set(key, { rows: neighbours[b]!.subarray(u * K * L, (u + 1) * K * L), chunk: chunkOf(b, u) });
      }),
    );
    const used = new Map<string, EncodedChunks>();
    if (missing.size > 0) {
      const ids = new Int32Array(missing.size * K * L);
      const chunkIds = new Int32Array(missing.size * C);
      [...missing.values()].forEach((m, i) => {
        ids.set(m.rows, i * K * L);
        chunkIds.set(m.chunk, i * C);
      });
      const result = await model.encode(ids, withChunk ? chunkIds : undefined);
      [...missing.keys()].forEach((key, i) => used.set(key, model.chunkOf(result, i)));
    }
    const sets = keys.map((row) => row.map((key) => used.get(key) ?? this.entries.get(key)!));
    for (const row of keys) for (const key of row) used.set(key, used.get(key) ?? this.entries.get(key)!);
    this.entries = used;
    return sets;
  }
}
