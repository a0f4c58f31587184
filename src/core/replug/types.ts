/**
 * REPLUG (Shi et al. 2023, "REPLUG: Retrieval-Augmented Black-Box Language Models"), the LM-ensemble
 * form also known as RAG-Token's mixture (Lewis et al. 2020): the GPT unchanged, run once per
 * retrieved passage with that passage before its context, and the next-token distributions mixed:
 *
 *   p(y | x) = Σ_j λ_j · p_LM(y | d_j ∘ x),   λ_j = exp(s(d_j, x) / τ) / Σ_i exp(s(d_i, x) / τ)
 *
 * with s the retriever's cosine similarity (1 − the cosine distance the datastore reports) over the
 * top-k passages; with the BM25 retriever, s is each passage's BM25 score divided by the top
 * passage's (1 for the top one, in (0, 1] for the rest), so τ keeps one meaning across queries whose
 * raw BM25 scores range from a few units to tens (docs/bm25.md). Blocks, queries and inputs are In-Context RALM's (src/core/icralm/plan.ts): every
 * `stride` predictions the last `queryLength` tokens retrieve k passages, each prefilled as
 * [passage] + [separator] + recent text in its own KV cache, and fed token by token for the block.
 * Plain data only: these types cross the inference worker's boundary.
 */
import type { ReplugSettings } from '../../protocol/replug';
import type { RetrievedPassage } from '../icralm/types';

export type { ReplugSettings, ReplugTokenShare } from '../../protocol/replug';

export const DEFAULT_REPLUG_SETTINGS: Readonly<ReplugSettings> = { k: 4, temperature: 0.1, stride: 4, queryLength: 32, retriever: 'dense' };

/** The most passages one retrieval may use (each costs a GPT run per token). */
export const MAX_REPLUG_K = 8;

/** The top `k` passages for a query, nearest first; `distance` is the cosine distance. */
export type PassagesRetriever = (query: readonly number[], k: number) => Promise<RetrievedPassage[]>;

/** One retrieval made while generating: the passages and their weights for positions [position, position + stride). */
export interface ReplugRetrieval {
  position: number;
  queryStart: number;
  passages: RetrievedPassage[];
  weights: number[];
  latencyMs: number;
}

export function validateReplugSettings(settings: ReplugSettings, context: number): void {
  const { k, temperature, stride, queryLength } = settings;
  if (!Number.isInteger(k) || k < 1 || k > MAX_REPLUG_K) throw new RangeError(`REPLUG k must be an integer in 1..${MAX_REPLUG_K}, got ${k}`);
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new RangeError(`REPLUG τ must be a positive number, got ${temperature}`);
  if (!Number.isInteger(stride) || stride < 1 || stride >= context) throw new RangeError(`REPLUG stride must be an integer in 1..${context - 1}, got ${stride}`);
  if (!Number.isInteger(queryLength) || queryLength < 1) throw new RangeError(`REPLUG query length must be a positive integer, got ${queryLength}`);
  if (settings.retriever !== undefined && settings.retriever !== 'dense' && settings.retriever !== 'bm25') throw new RangeError(`REPLUG retriever must be 'dense' or 'bm25', got ${String(settings.retriever)}`);
}

/**
 * λ_j = softmax(s_j / τ): the passage weights. Dense: s = 1 − distance (passages without one count
 * as similarity 0). BM25 (passages with a `score`): s = score / the largest score among them.
 */
export function passageWeights(passages: readonly RetrievedPassage[], temperature: number): number[] {
  if (passages.length === 0) return [];
  const top = Math.max(...passages.map((p) => p.score ?? 0));
  const similarity = (p: RetrievedPassage) => (p.score !== undefined ? (top > 0 ? p.score / top : 0) : 1 - (p.distance ?? 1));
  const scores = passages.map((p) => similarity(p) / temperature);
  const max = Math.max(...scores);
  const exps = scores.map((s) => Math.exp(s - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/**
 * log Σ_j λ_j p_j for rows that are already log-probabilities (each run's log-softmax): the
 * ensemble's log-probabilities, which the sampler treats as logits (softmax leaves them unchanged).
 */
export function mixLogProbRows(logProbRows: readonly Float32Array[], weights: readonly number[], out = new Float32Array(logProbRows[0]?.length ?? 0)): Float32Array {
  const V = out.length;
  out.fill(0);
  logProbRows.forEach((row, j) => {
    const w = weights[j]!;
    for (let i = 0; i < V; i++) out[i] = out[i]! + w * Math.exp(row[i]!);
  });
  for (let i = 0; i < V; i++) out[i] = Math.log(out[i]!);
  return out;
}
