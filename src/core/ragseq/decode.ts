/**
 * RAG-Sequence generation by "thorough decoding" (Lewis et al. 2020, §2.4): decode a candidate
 * under each passage on its own (greedy, the GPT reading [passage] + [separator] + prompt), then
 * score every candidate under every passage and keep the one with the largest marginal
 * p(y | x) = Σ_z p(z | x) p(y | x, z). Candidates that two passages both wrote are one candidate.
 * Cost: k greedy runs (KV cache) and k × candidates forwards.
 */
import { logSoftmaxAt } from '../generate/sampler';
import { blockInput } from '../icralm/plan';
import type { BatchForwardModel } from '../icralm/eval';
import type { RetrievedPassage } from '../icralm/types';
import type { StepOutput } from '../models/types';
import { logSumExp, MAX_RAG_SEQUENCE_SPAN } from './types';

/** What thorough decoding needs from the GPT: batched forwards, and forks with their own KV cache (GptModel). */
export interface DecodingModel extends BatchForwardModel {
  fork(): { start(ids: readonly number[]): Promise<StepOutput>; next(id: number): Promise<StepOutput>; dispose(): Promise<void> };
}

export interface ThoroughCandidate {
  tokenIds: number[];
  fromPassages: number[];
  perPassage: number[];
  logMarginal: number;
}

export interface ThoroughDecodeOptions {
  /** the retrieved passages (empty: one run without a passage) and their prior p(z | x) */
  passages: readonly RetrievedPassage[];
  prior: readonly number[];
  separator?: readonly number[];
  maxTokens: number;
  /** stop a candidate after this token (end-of-text) */
  stopTokenId?: number | null;
  /** forwards per scoring batch (default 4) */
  batch?: number;
  signal?: AbortSignal;
  onProgress?: (phase: 'decode' | 'score', done: number, total: number) => void;
}

function argmax(row: Float32Array, offset: number, V: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (row[offset + i]! > row[offset + best]!) best = i;
  return best;
}

export async function thoroughDecode(model: DecodingModel, promptIds: readonly number[], options: ThoroughDecodeOptions): Promise<{ candidates: ThoroughCandidate[]; chosen: number }> {
  const { maxTokens } = options;
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_RAG_SEQUENCE_SPAN) throw new RangeError(`thorough decoding writes 1..${MAX_RAG_SEQUENCE_SPAN} tokens, got ${maxTokens}`);
  if (promptIds.length === 0) throw new RangeError('The prompt is empty after tokenization.');
  const context = model.info.context;
  const V = model.info.vocabSize;
  const separator = options.separator ?? [];
  const passages: (RetrievedPassage | null)[] = options.passages.length > 0 ? [...options.passages] : [null];
  const prior = options.passages.length > 0 ? [...options.prior] : [1];
  if (prior.length !== passages.length) throw new RangeError('one prior weight per passage');
  // The same input layout as the eval's sequences: passage + separator + prompt, room for the candidate.
  const prefixes = passages.map((p) => blockInput(promptIds, promptIds.length, p, separator, maxTokens, context).input);

  const candidates: ThoroughCandidate[] = [];
  for (const [z, prefix] of prefixes.entries()) {
    options.signal?.throwIfAborted();
    const run = model.fork();
    try {
      const tokens: number[] = [];
      let out = await run.start(prefix);
      while (tokens.length < maxTokens) {
        const token = argmax(out.logits, (out.rows - 1) * V, V);
        tokens.push(token);
        if (token === options.stopTokenId || tokens.length === maxTokens) break;
        options.signal?.throwIfAborted();
        out = await run.next(token);
      }
      const same = candidates.find((c) => c.tokenIds.length === tokens.length && c.tokenIds.every((t, i) => t === tokens[i]));
      if (same) same.fromPassages.push(z);
      else candidates.push({ tokenIds: tokens, fromPassages: [z], perPassage: [], logMarginal: -Infinity });
    } finally {
      await run.dispose();
    }
    options.onProgress?.('decode', z + 1, prefixes.length);
  }

  // Every (candidate, passage) pair: log p(y | x, z) = Σ_i log p(y_i | x, z, y_<i), batched by input length.
  const pairs = candidates.flatMap((c, ci) => prefixes.map((prefix, z) => ({ ci, z, input: [...prefix, ...c.tokenIds.slice(0, -1)] })));
  for (const c of candidates) c.perPassage = new Array<number>(prefixes.length).fill(0);
  const byLength = new Map<number, typeof pairs>();
  for (const p of pairs) byLength.set(p.input.length, [...(byLength.get(p.input.length) ?? []), p]);
  const batch = Math.max(1, options.batch ?? 4);
  let done = 0;
  for (const [T, same] of byLength) {
    for (let g = 0; g < same.length; g += batch) {
      options.signal?.throwIfAborted();
      const group = same.slice(g, g + batch);
      const logits = await model.forwardBatch(group.map((p) => p.input));
      group.forEach((p, row) => {
        const tokens = candidates[p.ci]!.tokenIds;
        const firstRow = T - tokens.length;
        let sum = 0;
        tokens.forEach((token, i) => (sum += logSoftmaxAt(logits, token, (row * T + firstRow + i) * V, V)));
        candidates[p.ci]!.perPassage[p.z] = sum;
      });
      done += group.length;
      options.onProgress?.('score', done, pairs.length);
    }
  }
  let chosen = 0;
  candidates.forEach((c, i) => {
    c.logMarginal = logSumExp(c.perPassage.map((lp, z) => Math.log(prior[z]!) + lp));
    if (c.logMarginal > candidates[chosen]!.logMarginal) chosen = i;
  });
  return { candidates, chosen };
}
