/**
 * RAG-Sequence (Lewis et al. 2020, "Retrieval-Augmented Generation for Knowledge-Intensive NLP
 * Tasks"), as a black-box method on the shipped GPT with REPLUG's passages: one retrieval for the
 * whole sequence y from the text before it (x), the top-k passages z with the prior
 * p(z | x) = softmax(s(z, x) / τ) (REPLUG's weights), each passage read by its own GPT run as
 * In-Context RALM places it ([passage] + [separator] + x), and
 *
 *   p(y | x) = Σ_z p(z | x) Π_i p(y_i | x, z, y_<i).
 *
 * REPLUG (RAG-Token's mixture) mixes the runs with the same fixed weights at every token; here a
 * passage keeps the weight its run earned on the tokens before. Per token, exactly:
 *
 *   p(y_i | x, y_<i) = Σ_z p(z | x, y_<i) p(y_i | x, z, y_<i),   p(z | x, y_<i) ∝ p(z | x) Π_{j<i} p(y_j | x, z, y_<j)
 *
 * whose product over i is the sequence's marginal, so token perplexity is the sequence
 * likelihood's. Long text is cut into sequences of `span` tokens (the blocks of In-Context RALM's
 * plan with stride = span), each retrieving afresh from the `queryLength` tokens before it.
 */
import type { RagSequenceSettings } from '../../protocol/ragseq';

export type { RagSequenceSettings } from '../../protocol/ragseq';

export const DEFAULT_RAG_SEQUENCE_SETTINGS: Readonly<RagSequenceSettings> = { k: 4, temperature: 0.1, span: 32, queryLength: 32 };

/** The most passages (each costs a GPT run per sequence) and the longest sequence (the rest of the context is passage and x). */
export const MAX_RAG_SEQUENCE_K = 8;
export const MAX_RAG_SEQUENCE_SPAN = 64;

export function validateRagSequenceSettings(settings: RagSequenceSettings): void {
  const { k, temperature, span, queryLength } = settings;
  if (!Number.isInteger(k) || k < 1 || k > MAX_RAG_SEQUENCE_K) throw new RangeError(`RAG-Sequence k must be an integer in 1..${MAX_RAG_SEQUENCE_K}, got ${k}`);
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new RangeError(`RAG-Sequence τ must be a positive number, got ${temperature}`);
  if (!Number.isInteger(span) || span < 1 || span > MAX_RAG_SEQUENCE_SPAN) throw new RangeError(`RAG-Sequence span must be an integer in 1..${MAX_RAG_SEQUENCE_SPAN}, got ${span}`);
  if (!Number.isInteger(queryLength) || queryLength < 1) throw new RangeError(`RAG-Sequence query length must be a positive integer, got ${queryLength}`);
}

export function logSumExp(xs: readonly number[]): number {
  const max = Math.max(...xs);
  if (max === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - max);
  return max + Math.log(s);
}

export interface SequenceDecomposition {
  /** log p(y_i | x, y_<i) per token: the posterior-weighted mixture */
  tokenLogProbs: number[];
  /** posterior[i][z] = p(z | x, y_<i); posterior[0] is the prior, posterior[n] the posterior after the whole sequence */
  posterior: number[][];
  /** log p(y | x) = logsumexp_z [log p(z | x) + Σ_i log p(y_i | x, z, y_<i)] */
  sequenceLogProb: number;
}

/**
 * The per-token decomposition of RAG-Sequence's marginal from each passage's per-token
 * log-probabilities (`perPassage[z][i]` = log p(y_i | x, z, y_<i)) and the prior p(z | x).
 */
export function decomposeSequence(prior: readonly number[], perPassage: readonly (readonly number[])[]): SequenceDecomposition {
  const n = perPassage[0]?.length ?? 0;
  if (perPassage.length !== prior.length || perPassage.some((row) => row.length !== n)) throw new RangeError('one row of log-probabilities per passage, all of one length');
  // log p(z | x) + Σ_{j<i} log p_z(y_j), unnormalised
  const joint = prior.map(Math.log);
  const normalise = () => {
    const z = logSumExp(joint);
    return joint.map((l) => Math.exp(l - z));
  };
  const posterior: number[][] = [normalise()];
  const tokenLogProbs: number[] = [];
  for (let i = 0; i < n; i++) {
    const before = logSumExp(joint);
    for (let z = 0; z < joint.length; z++) joint[z] = joint[z]! + perPassage[z]![i]!;
    // log Σ_z p(z | x, y_<i) p_z(y_i) = log Σ_z joint_after − log Σ_z joint_before
    tokenLogProbs.push(logSumExp(joint) - before);
    posterior.push(normalise());
  }
  return { tokenLogProbs, posterior, sequenceLogProb: logSumExp(joint) };
}
