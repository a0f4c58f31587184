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
  const invT = 1 / settings.temperature;
  if (settings.topK > 0 && settings.topK < V) return sampleRanked(logits, orderedCandidates(logits, settings.topK), invT, settings.topP, rng);
  return sampleWholeVocabulary(logits, invT, settings.topP, rng) ?? sampleRanked(logits, orderedCandidates(logits, V), invT, settings.topP, rng);
}

/** Weights, top-p cut and draw over candidates already ranked by (logit desc, id asc). */
function sampleRanked(logits: Float32Array, ranked: number[], invT: number, topP: number, rng: Rng): Sample {
  let candidates = ranked;
  const top = logits[candidates[0]!]!;
  let weights = candidates.map((id) => Math.exp((logits[id]! - top) * invT));
  let total = weights.reduce((a, b) => a + b, 0);
  if (topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < weights.length) {
      cumulative += weights[keep]!;
      keep++;
      if (cumulative >= topP * total) break;
    }
    candidates = candidates.slice(0, keep);
    weights = weights.slice(0, keep);
    total = weights.reduce((a, b) => a + b, 0);
  }
  return draw(candidates, weights, total, rng.next() * total);
}

function draw(candidates: readonly number[], weights: readonly number[], total: number, u: number): Sample {
  let acc = 0;
  for (let i = 0; i < candidates.length; i++) {
    acc += weights[i]!;
    if (u < acc) return { tokenId: candidates[i]!, probability: weights[i]! / total };
  }
  // Rounding left u at or past the last sum: the last candidate that can be drawn at all.
  let last = candidates.length - 1;
  while (last > 0 && !(weights[last]! > 0)) last--;
  return { tokenId: candidates[last]!, probability: weights[last]! / total };
}

/** exp((logit - max) / T) of the whole vocabulary; reused between calls (sampling is synchronous). */
let vocabularyWeights = new Float64Array(0);

/**
 * sampleRanked over the whole vocabulary without ranking all of it: a 0.9 nucleus of this GPT at
 * T = 0.8 holds hundreds to a couple of thousand of the 8,192 tokens, and sorting all of them cost
 * ~2 ms a token, more than the GPT's forward. Only the heaviest ids are ranked (rankedPrefix), as
 * many as hold the top-p mass (or reach the draw); every one of them outranks every id left out, so
 * they are exactly the first ids of the whole ranking, with the same weights, and the cut and the
 * draw come out as sampleRanked's. The one difference: the total is summed in id order, not rank
 * order (a last-bit difference in the top-p bound and the draw's scale). Returns null when the
 * weights are not finite (no finite logit), for sampleRanked to handle as before.
 */
function sampleWholeVocabulary(logits: Float32Array, invT: number, topP: number, rng: Rng): Sample | null {
  const V = logits.length;
  let top = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i]! > top) top = logits[i]!;
  if (vocabularyWeights.length < V) vocabularyWeights = new Float64Array(V);
  const w = vocabularyWeights;
  let total = 0;
  for (let i = 0; i < V; i++) {
    const x = Math.exp((logits[i]! - top) * invT);
    w[i] = x;
    total += x;
  }
  if (!(total > 0) || !Number.isFinite(total)) return null;
  if (topP < 1) {
    const bound = topP * total;
    const ranked = rankedPrefix(logits, w, top, invT, (sum) => sum >= bound);
    let cumulative = 0;
    let keep = 0;
    while (keep < ranked.length) {
      cumulative += w[ranked[keep]!]!;
      keep++;
      if (cumulative >= bound) break;
    }
    const candidates = ranked.slice(0, keep);
    const weights = candidates.map((id) => w[id]!);
    const kept = weights.reduce((a, b) => a + b, 0);
    return draw(candidates, weights, kept, rng.next() * kept);
  }
  const u = rng.next() * total;
  const ranked = rankedPrefix(logits, w, top, invT, (sum) => sum > u);
  return draw(ranked, ranked.map((id) => w[id]!), total, u);
}

/** Quarter-octave bands of weight that rankedPrefix sorts the vocabulary into; the last holds everything smaller. */
const WEIGHT_BANDS = 4 * 64 + 1;
const bandSums = new Float64Array(WEIGHT_BANDS);
let bandOf = new Uint16Array(0);

/**
 * The fewest heaviest ids, ranked by (logit desc, id asc), whose weight sum is `enough`; at most
 * every id with a positive weight. One pass puts each id in a quarter-octave band of its weight (by
 * its logit, so a larger logit never lands in a lighter band), the band sums say how many bands
 * are needed, and only their ids are ranked: the nucleus and part of one band.
 */
function rankedPrefix(logits: Float32Array, w: Float64Array, top: number, invT: number, enough: (sum: number) => boolean): number[] {
  const V = logits.length;
  if (bandOf.length < V) bandOf = new Uint16Array(V);
  bandSums.fill(0);
  const perBand = 4 * invT * Math.LOG2E;
  for (let i = 0; i < V; i++) {
    const band = Math.min(WEIGHT_BANDS - 1, Math.floor((top - logits[i]!) * perBand));
    bandOf[i] = band;
    bandSums[band] = bandSums[band]! + w[i]!;
  }
  let last = 0;
  for (let sum = bandSums[0]!; last < WEIGHT_BANDS - 1 && !enough(sum); ) sum += bandSums[++last]!;
  for (;;) {
    const ids: number[] = [];
    let sum = 0;
    for (let i = 0; i < V; i++) {
      if (bandOf[i]! <= last && w[i]! > 0) {
        ids.push(i);
        sum += w[i]!;
      }
    }
    // The sums above added in another order: one band more when rounding left this one short.
    if (last === WEIGHT_BANDS - 1 || enough(sum)) return rankIds(logits, ids);
    last++;
  }
}

const float32Scratch = new Float32Array(1);
const float32Bits = new Uint32Array(float32Scratch.buffer);

/**
 * `ids` ordered by (logit desc, id asc). A flat distribution's nucleus holds thousands of ids, which
 * a comparator sort ranks in milliseconds; a Float64Array's native sort of one number per id (the
 * logit's bits, flipped to sort descending, times V, plus the id) ranks them ~10x faster.
 */
function rankIds(logits: Float32Array, ids: number[]): number[] {
  const V = logits.length;
  if (ids.length < 64 || V > 2 ** 21) return ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  const keys = new Float64Array(ids.length);
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!;
    // -0 ranks as +0, as the comparator's subtraction does.
    float32Scratch[0] = logits[id]! === 0 ? 0 : logits[id]!;
    const bits = float32Bits[0]!;
    // IEEE order as an unsigned integer (negatives reversed), then flipped so larger logits come first.
    const ascending = bits >= 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
    keys[k] = (0xffffffff - ascending) * V + id;
  }
  keys.sort();
  return Array.from(keys, (key) => key % V);
}

/** The `count` largest logits' ids, ordered by (logit desc, id asc). */
function orderedCandidates(logits: Float32Array, count: number): number[] {
  if (count >= logits.length) return Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  // A sorted window of the best `count`; top-k is small, so insertion beats a full sort. Ids come in
  // ascending order, so on equal logits a new id ranks after the ones already kept.
  const best = new Int32Array(count);
  let size = 0;
  for (let i = 0; i < logits.length; i++) {
    const value = logits[i]!;
    if (size === count && !(value > logits[best[count - 1]!]!)) continue;
    let at = size < count ? size++ : count - 1;
    while (at > 0 && value > logits[best[at - 1]!]!) {
      best[at] = best[at - 1]!;
      at--;
    }
    best[at] = i;
  }
  return Array.from(best.subarray(0, size));
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
