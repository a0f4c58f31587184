import type { SamplingSettings } from '../../protocol/model';
import type { Rng } from './rng';

export interface Sample {
  tokenId: number;
  /** Probability of the token under the distribution it was drawn from (after temperature, top-k, top-p). */
  probability: number;
}

export const GREEDY: SamplingSettings = { temperature: 0, topK: 0, topP: 1, seed: 0 };

export function validateSampling(s: SamplingSettings): void {
  if (!(s.temperature >= 0) || !Number.isFinite(s.temperature)) throw new RangeError('temperature must be >= 0');
  if (!Number.isInteger(s.topK) || s.topK < 0) throw new RangeError('topK must be an integer >= 0 (0 = off)');
  if (!(s.topP > 0 && s.topP <= 1)) throw new RangeError('topP must be in (0, 1]');
  if (!Number.isInteger(s.seed)) throw new RangeError('seed must be an integer');
  const penalty = s.repetitionPenalty ?? 1;
  if (!(penalty > 0) || !Number.isFinite(penalty)) throw new RangeError('repetitionPenalty must be > 0 (1 = off)');
  const n = s.noRepeatNgramSize ?? 0;
  if (!Number.isInteger(n) || n < 0) throw new RangeError('noRepeatNgramSize must be an integer >= 0 (0 = off)');
}

/** True when processLogits would change anything. */
export function processesLogits(s: SamplingSettings): boolean {
  return (s.suppressTokens?.length ?? 0) > 0 || (s.repetitionPenalty ?? 1) !== 1 || (s.noRepeatNgramSize ?? 0) > 0;
}

/**
 * Hugging Face `generate`'s logits processors, in its order: repetition penalty (a seen token's logit
 * is divided by the penalty when positive, multiplied when negative: CTRL, Keskar et al. 2019), then
 * no-repeat n-gram (a token that would complete an n-gram already in `context` is banned), then
 * suppressed tokens. Banned tokens get -Infinity. `context` is the prompt followed by the tokens
 * generated so far. Returns `logits` itself when nothing applies, else a processed copy.
 */
export function processLogits(logits: Float32Array, context: readonly number[], s: SamplingSettings): Float32Array {
  if (!processesLogits(s)) return logits;
  const out = new Float32Array(logits);
  const penalty = s.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(context)) {
      if (id < 0 || id >= out.length) continue;
      const v = out[id]!;
      out[id] = v > 0 ? v / penalty : v * penalty;
    }
  }
  const n = s.noRepeatNgramSize ?? 0;
  if (n > 0 && context.length >= n) {
    // The n-1 most recent tokens are the prefix; every earlier occurrence of it bans what followed.
    const start = context.length - (n - 1);
    for (let i = 0; i + n <= context.length; i++) {
      let same = true;
      for (let j = 0; j < n - 1 && same; j++) same = context[i + j] === context[start + j];
      if (same) {
        const banned = context[i + n - 1]!;
        if (banned >= 0 && banned < out.length) out[banned] = -Infinity;
      }
    }
  }
  for (const id of s.suppressTokens ?? []) if (id >= 0 && id < out.length) out[id] = -Infinity;
  return out;
}

/**
 * Picks the next token. temperature 0 is greedy (argmax, lowest id on ties). Otherwise logits are
 * divided by the temperature, cut to the top-k, then to the smallest set of most likely tokens
 * whose probability reaches top-p, renormalised, and sampled with one draw from `rng`. Candidates
 * are ordered by (logit desc, id asc), so results do not depend on sort stability.
 */
export function sample(logits: Float32Array, settings: SamplingSettings, rng: Rng): Sample {
  const V = logits.length;
  if (V === 0) throw new RangeError('empty logits');
  if (settings.temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i]! > logits[best]!) best = i;
    return { tokenId: best, probability: 1 };
  }
  let candidates = orderedCandidates(logits, settings.topK > 0 ? Math.min(settings.topK, V) : V);
  const invT = 1 / settings.temperature;
  const top = logits[candidates[0]!]!;
  let weights = candidates.map((id) => Math.exp((logits[id]! - top) * invT));
  let total = weights.reduce((a, b) => a + b, 0);
  if (settings.topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < weights.length) {
      cumulative += weights[keep]!;
      keep++;
      if (cumulative >= settings.topP * total) break;
    }
    candidates = candidates.slice(0, keep);
    weights = weights.slice(0, keep);
    total = weights.reduce((a, b) => a + b, 0);
  }
  const u = rng.next() * total;
  let acc = 0;
  for (let i = 0; i < candidates.length; i++) {
    acc += weights[i]!;
    if (u < acc) return { tokenId: candidates[i]!, probability: weights[i]! / total };
  }
  const last = candidates.length - 1;
  return { tokenId: candidates[last]!, probability: weights[last]! / total };
}

/** The `count` largest logits' ids, ordered by (logit desc, id asc). */
function orderedCandidates(logits: Float32Array, count: number): number[] {
  const byRank = (a: number, b: number) => logits[b]! - logits[a]! || a - b;
  if (count >= logits.length) return Array.from({ length: logits.length }, (_, i) => i).sort(byRank);
  // Keep a sorted window of the best `count`; top-k is small, so insertion beats a full sort.
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (best.length === count && byRank(i, best[count - 1]!) >= 0) continue;
    let at = best.length;
    while (at > 0 && byRank(i, best[at - 1]!) < 0) at--;
    best.splice(at, 0, i);
    if (best.length > count) best.pop();
  }
  return best;
}

/** A token and its probability under the model's own next-token distribution. */
export interface TokenProbability {
  tokenId: number;
  probability: number;
}

/**
 * The model's `count` most likely next tokens (softmax of the raw logits, before the decoding
 * rules), and the probability it gave `chosen`: what a column shows when a class asks "why this word?".
 */
export function topAlternatives(logits: Float32Array, count: number, chosen: number): { alternatives: TokenProbability[]; chosenProbability: number } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const p = (id: number) => Math.exp(logits[id]! - max) / sum;
  return {
    alternatives: orderedCandidates(logits, count).map((tokenId) => ({ tokenId, probability: p(tokenId) })),
    chosenProbability: p(chosen),
  };
}

/** log-softmax value of one entry (for scoring and probabilities shown in the UI). */
export function logSoftmaxAt(logits: Float32Array, index: number, offset = 0, length = logits.length - offset): number {
  let max = -Infinity;
  for (let i = 0; i < length; i++) if (logits[offset + i]! > max) max = logits[offset + i]!;
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp(logits[offset + i]! - max);
  return logits[offset + index]! - max - Math.log(sum);
}
