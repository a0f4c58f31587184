/**
 * REPLUG perplexity over a token stream, block by block as In-Context RALM's eval (every target
 * after the first scored exactly once, blocks of `stride`), with k inputs per block: one per
 * passage, each [passage] + [separator] + history + the block's own tokens. A target's probability
 * is Σ_j λ_j p(target | input_j). Cost: k forwards per block.
 */
import { logSoftmaxAt } from '../generate/sampler';
import { blockInput, blockQuery } from '../icralm/plan';
import { logAddExp } from '../knnlm/interpolate';
import type { BatchForwardModel } from '../icralm/eval';
import type { RetrievedPassage } from '../icralm/types';
import { DEFAULT_REPLUG_SETTINGS, passageWeights, validateReplugSettings, type PassagesRetriever, type ReplugSettings } from './types';

export interface ReplugEvalOptions {
  settings?: Partial<ReplugSettings>;
  separator?: readonly number[];
  retrieve: PassagesRetriever;
  /** Score only the first `maxTokens` targets (ids[1..maxTokens]). */
  maxTokens?: number;
  onProgress?: (scored: number, total: number) => void;
  signal?: AbortSignal;
}

export interface ReplugEvalResult {
  scored_tokens: number;
  nll: number;
  token_ppl: number;
  /** logProbs[i] = log p(ids[i + 1]) under the mixture, natural log. */
  logProbs: Float64Array;
  blocks: number;
  /** GPT forwards run (k per block that retrieved k passages). */
  forwards: number;
  /** Mean of the largest passage weight per block: 1/k is an even mixture, 1 one passage. */
  mean_top_weight: number;
  forward_seconds: number;
  retrieval_seconds: number;
}

/**
 * log p(ids[j] | input_z) for targets j in [start, end) under each passage z (null: no passage), with
 * input_z = [passage] + [separator] + history + the block's own tokens before j (In-Context RALM's
 * block input): perPassage[z][j − start]. Inputs of one length go in one forward. REPLUG mixes the
 * rows per token; RAG-Sequence decomposes the sequence marginal from them.
 */
export async function passageBlockLogProbs(
  model: BatchForwardModel,
  ids: ArrayLike<number>,
  start: number,
  end: number,
  passages: readonly (RetrievedPassage | null)[],
  block: { separator: readonly number[]; stride: number; context: number },
): Promise<{ perPassage: number[][]; forwards: number }> {
  const V = model.info.vocabSize;
  const inputs = passages.map((passage) => {
    const { input } = blockInput(ids, start, passage, block.separator, block.stride, block.context);
    for (let j = start; j < end - 1; j++) input.push(ids[j]!);
    return input;
  });
  const perPassage = passages.map(() => new Array<number>(end - start).fill(-Infinity));
  const byLength = new Map<number, number[]>();
  inputs.forEach((input, z) => byLength.set(input.length, [...(byLength.get(input.length) ?? []), z]));
  let forwards = 0;
  for (const [T, members] of byLength) {
    const logits = await model.forwardBatch(members.map((z) => inputs[z]!));
    forwards += members.length;
    const firstRow = T - (end - start);
    members.forEach((z, row) => {
      for (let j = start; j < end; j++) perPassage[z]![j - start] = logSoftmaxAt(logits, ids[j]!, (row * T + firstRow + (j - start)) * V, V);
    });
  }
  return { perPassage, forwards };
}

export async function evaluateReplug(model: BatchForwardModel, ids: ArrayLike<number>, options: ReplugEvalOptions): Promise<ReplugEvalResult> {
  const context = model.info.context;
  const settings = { ...DEFAULT_REPLUG_SETTINGS, ...options.settings };
  validateReplugSettings(settings, context);
  const { stride, queryLength, k, temperature } = settings;
  const separator = options.separator ?? [];
  const total = Math.max(0, Math.min(ids.length - 1, options.maxTokens ?? Infinity));
  const logProbs = new Float64Array(total);
  let nll = 0;
  let scored = 0;
  let blocks = 0;
  let forwards = 0;
  let topWeightSum = 0;
  let forwardMs = 0;
  let retrievalMs = 0;
  for (let b = 1; b <= total; b += stride) {
    options.signal?.throwIfAborted();
    const end = Math.min(b + stride, total + 1);
    let t = performance.now();
    const found = (await options.retrieve(blockQuery(ids, b, queryLength).query, k)).slice(0, k);
    retrievalMs += performance.now() - t;
    const passages: (RetrievedPassage | null)[] = found.length > 0 ? found : [null];
    const weights = found.length > 0 ? passageWeights(found, temperature) : [1];
    topWeightSum += Math.max(...weights);
    t = performance.now();
    const { perPassage, forwards: run } = await passageBlockLogProbs(model, ids, b, end, passages, { separator, stride, context });
    forwards += run;
    // perTarget[j - b][p] = log λ_p + log p_p(ids[j])
    const perTarget = Array.from({ length: end - b }, (_, i) => passages.map((_, p) => Math.log(weights[p]!) + perPassage[p]![i]!));
    forwardMs += performance.now() - t;
    for (let j = b; j < end; j++) {
      // log Σ_p λ_p p_p(target), from the passages' log-weighted log-probabilities
      const lp = perTarget[j - b]!.reduce(logAddExp, -Infinity);
      logProbs[j - 1] = lp;
      nll -= lp;
      scored++;
    }
    blocks++;
    options.onProgress?.(scored, total);
  }
  return {
    scored_tokens: scored,
    nll,
    token_ppl: Math.exp(nll / Math.max(1, scored)),
    logProbs,
    blocks,
    forwards,
    mean_top_weight: blocks ? topWeightSum / blocks : 0,
    forward_seconds: forwardMs / 1000,
    retrieval_seconds: retrievalMs / 1000,
  };
}
