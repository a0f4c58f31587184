/**
 * In-Context RALM perplexity over a token stream. Every target after the first token is scored
 * exactly once; targets are cut into blocks of `stride` and each block is one forward of
 * [passage] + [separator] + history + the block's own tokens (plan.ts), so the cost is one
 * 256-token forward per `stride` tokens, against one per 128 for the plain GPT eval. Blocks are
 * retrieved for and run in batches of equal input length.
 */
import { logSoftmaxAt } from '../generate/sampler';
import { blockInput, blockQuery } from './plan';
import { DEFAULT_ICRALM_SETTINGS, validateIcRalmSettings, type IcRalmSettings, type PassageRetriever } from './types';

/** What the eval needs from the GPT: GptModel.forwardBatch (logits [B, T, V] from an empty cache). */
export interface BatchForwardModel {
  readonly info: { readonly vocabSize: number; readonly context: number };
  forwardBatch(sequences: readonly (readonly number[])[]): Promise<Float32Array>;
}

export interface IcRalmEvalOptions {
  settings?: Partial<IcRalmSettings>;
  separator?: readonly number[];
  retrieve: PassageRetriever;
  /** Blocks per forward (default 4). */
  batch?: number;
  /** Score only the first `maxTokens` targets (ids[1..maxTokens]). */
  maxTokens?: number;
  onProgress?: (scored: number, total: number) => void;
  signal?: AbortSignal;
}

export interface IcRalmEvalResult {
  scored_tokens: number;
  nll: number;
  token_ppl: number;
  /** logProbs[i] = log p(ids[i + 1] | its block's input), natural log. */
  logProbs: Float64Array;
  blocks: number;
  /** Blocks that got a passage (the rest ran on the text alone). */
  retrieved: number;
  /** Mean tokens of the text before each block's first prediction. */
  mean_history: number;
  forward_seconds: number;
  retrieval_seconds: number;
}

/** A block to score: its prefill (passage, separator, history), then targets ids[start, end) with teacher forcing. */
export interface ScoredBlock {
  start: number;
  end: number;
  input: number[];
}

/**
 * Scores blocks with one forward each, batched by input length (forwardBatch needs equal lengths: the
 * first blocks of a stream and the last are shorter): each block's other tokens follow its prefill,
 * as the generation wrappers feed them. Writes logProbs[j − 1] = log p(ids[j]) and returns the sums.
 * In-Context RALM's eval and FLARE's share it.
 */
export async function scoreBlocks(model: BatchForwardModel, ids: ArrayLike<number>, blocks: readonly ScoredBlock[], logProbs: Float64Array): Promise<{ nll: number; scored: number }> {
  const V = model.info.vocabSize;
  let nll = 0;
  let scored = 0;
  const sequences = blocks.map(({ start, end, input }) => {
    const full = [...input];
    for (let j = start; j < end - 1; j++) full.push(ids[j]!);
    return { start, end, input: full, firstRow: full.length - (end - start) };
  });
  const byLength = new Map<number, typeof sequences>();
  for (const s of sequences) byLength.set(s.input.length, [...(byLength.get(s.input.length) ?? []), s]);
  for (const [T, same] of byLength) {
    const logits = await model.forwardBatch(same.map((s) => s.input));
    same.forEach((s, row) => {
      for (let j = s.start; j < s.end; j++) {
        const lp = logSoftmaxAt(logits, ids[j]!, (row * T + s.firstRow + (j - s.start)) * V, V);
        logProbs[j - 1] = lp;
        nll -= lp;
        scored++;
      }
    });
  }
  return { nll, scored };
}

export async function evaluateIcRalm(model: BatchForwardModel, ids: ArrayLike<number>, options: IcRalmEvalOptions): Promise<IcRalmEvalResult> {
  const context = model.info.context;
  const settings = { ...DEFAULT_ICRALM_SETTINGS, ...options.settings };
  validateIcRalmSettings(settings, context);
  const { stride, queryLength } = settings;
  const separator = options.separator ?? [];
  const batch = Math.max(1, options.batch ?? 4);
  const total = Math.max(0, Math.min(ids.length - 1, options.maxTokens ?? Infinity));
  const logProbs = new Float64Array(total);
  const starts: number[] = [];
  for (let b = 1; b <= total; b += stride) starts.push(b);

  let nll = 0;
  let retrieved = 0;
  let historySum = 0;
  let forwardMs = 0;
  let retrievalMs = 0;
  let scored = 0;
  for (let g = 0; g < starts.length; g += batch) {
    options.signal?.throwIfAborted();
    const group = starts.slice(g, g + batch);
    let t = performance.now();
    const passages = await options.retrieve(group.map((b) => blockQuery(ids, b, queryLength).query));
    retrievalMs += performance.now() - t;
    const sequences = group.map((b, i) => {
      const passage = passages[i] ?? null;
      if (passage && passage.tokenIds.length > 0) retrieved++;
      const { input, history } = blockInput(ids, b, passage, separator, stride, context);
      historySum += history;
      return { start: b, end: Math.min(b + stride, total + 1), input };
    });
    t = performance.now();
    const done = await scoreBlocks(model, ids, sequences, logProbs);
    nll += done.nll;
    scored += done.scored;
    forwardMs += performance.now() - t;
    options.onProgress?.(scored, total);
  }
  return {
    scored_tokens: scored,
    nll,
    token_ppl: Math.exp(nll / Math.max(1, scored)),
    logProbs,
    blocks: starts.length,
    retrieved,
    mean_history: starts.length ? historySum / starts.length : 0,
    forward_seconds: forwardMs / 1000,
    retrieval_seconds: retrievalMs / 1000,
  };
}
