import { describe, expect, it } from 'vitest';
import type { SamplingSettings } from '../../protocol/model';
import { Rng } from './rng';
import { sample, topAlternatives } from './sampler';

/**
 * The sampler as it was written first: rank the whole vocabulary by (logit desc, id asc), weigh,
 * cut to top-k and top-p, draw. The shipped sampler ranks only the ids it needs; it must pick what
 * this one picks.
 */
function referenceSample(logits: Float32Array, settings: SamplingSettings, rng: Rng): { tokenId: number; probability: number } {
  const V = logits.length;
  const ranked = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (settings.temperature === 0) return { tokenId: ranked[0]!, probability: 1 };
  let candidates = settings.topK > 0 ? ranked.slice(0, settings.topK) : ranked;
  const top = logits[candidates[0]!]!;
  let weights = candidates.map((id) => Math.exp((logits[id]! - top) / settings.temperature));
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
  return { tokenId: candidates[candidates.length - 1]!, probability: weights[weights.length - 1]! / total };
}

/** Logits shaped like a language model's: a few likely tokens over a long tail, with ties, -0 and banned tokens. */
function modelLikeLogits(seed: number, V: number): Float32Array {
  const rng = new Rng(seed);
  const logits = new Float32Array(V);
  const spread = 1 + 6 * rng.next();
  for (let i = 0; i < V; i++) logits[i] = Math.fround(spread * Math.log(rng.next() + 1e-9) + (rng.next() < 0.002 ? 12 : 0));
  // ties with the best and with tail tokens, a -0 beside a +0, banned tokens
  logits[Math.floor(rng.next() * V)] = logits.reduce((a, b) => Math.max(a, b), -Infinity);
  for (let i = 0; i < 40; i++) logits[Math.floor(rng.next() * V)] = logits[Math.floor(rng.next() * V)]!;
  logits[1] = -0;
  logits[2] = 0;
  for (let i = 0; i < 20; i++) logits[Math.floor(rng.next() * V)] = -Infinity;
  return logits;
}

describe('sample matches the whole-vocabulary ranking it replaces', () => {
  const settings: SamplingSettings[] = [
    { temperature: 0.8, topK: 0, topP: 0.9, seed: 0 },
    { temperature: 1, topK: 0, topP: 1, seed: 0 },
    { temperature: 0.3, topK: 0, topP: 0.5, seed: 0 },
    { temperature: 2.5, topK: 0, topP: 0.99, seed: 0 },
    { temperature: 0.7, topK: 40, topP: 0.95, seed: 0 },
    { temperature: 1.2, topK: 3, topP: 1, seed: 0 },
    { temperature: 0, topK: 0, topP: 1, seed: 0 },
  ];
  for (const s of settings) {
    it(`T ${s.temperature}, top-k ${s.topK}, top-p ${s.topP}: the same token and probability on 300 draws`, () => {
      for (let case_ = 0; case_ < 30; case_++) {
        const logits = modelLikeLogits(1000 + case_, case_ % 3 === 0 ? 8192 : 50 + case_ * 37);
        const fast = new Rng(case_);
        const reference = new Rng(case_);
        for (let draw = 0; draw < 10; draw++) {
          const got = sample(logits, s, fast);
          const want = referenceSample(logits, s, reference);
          expect(got.tokenId).toBe(want.tokenId);
          expect(got.probability).toBeCloseTo(want.probability, 12);
        }
      }
    });
  }

  it('never draws a banned (-Infinity) token, even from a nearly flat distribution', () => {
    const logits = new Float32Array(8192).fill(0.5);
    for (let i = 0; i < 8192; i += 2) logits[i] = -Infinity;
    const rng = new Rng(3);
    for (let i = 0; i < 500; i++) expect(sample(logits, { temperature: 1, topK: 0, topP: 1, seed: 0 }, rng).tokenId % 2).toBe(1);
  });

  it('topAlternatives lists the most likely ids in rank order, ties by the smaller id', () => {
    const logits = Float32Array.from([1, 3, 2, 3, -1, 2.5]);
    const { alternatives, chosenProbability } = topAlternatives(logits, 4, 4);
    expect(alternatives.map((a) => a.tokenId)).toEqual([1, 3, 5, 2]);
    const sum = Array.from(logits, (l) => Math.exp(l)).reduce((a, b) => a + b, 0);
    expect(alternatives[0]!.probability).toBeCloseTo(Math.exp(3) / sum, 12);
    expect(chosenProbability).toBeCloseTo(Math.exp(-1) / sum, 12);
  });
});
