import { describe, expect, it } from 'vitest';
import { knnLogProbOf, knnLogProbs, logSoftmax, mixLogProb, mixLogProbs, validateKnnSettings } from './interpolate';

/** p = λ p_kNN + (1−λ) p_LM computed the textbook way, in plain probabilities. */
function direct(logits: number[], distances: number[], values: number[], lambda: number, T: number): number[] {
  const z = logits.reduce((s, l) => s + Math.exp(l), 0);
  const pLm = logits.map((l) => Math.exp(l) / z);
  const w = distances.map((d) => Math.exp(-d / T));
  const wz = w.reduce((a, b) => a + b, 0);
  const pKnn = logits.map(() => 0);
  values.forEach((v, i) => (pKnn[v]! += w[i]! / wz));
  return pLm.map((p, j) => lambda * pKnn[j]! + (1 - lambda) * p);
}

const logits = [1.5, -0.3, 0.2, 2.1, -4, 0.9];
const distances = [0.4, 0.9, 1.3, 2.0, 3.5];
const values = [3, 1, 3, 5, 1];

describe('kNN-LM interpolation', () => {
  it.each([
    [0.25, 1],
    [0.5, 0.7],
    [0, 1],
    [1, 2],
    [0.9, 10],
  ])('matches the direct mixture (λ=%s, T=%s)', (lambda, T) => {
    const lm = logSoftmax(Float32Array.from(logits), 0, logits.length);
    const knn = knnLogProbs(distances, values, distances.length, T);
    const mixed = mixLogProbs(lm, knn, lambda);
    const expected = direct(logits, distances, values, lambda, T);
    let total = 0;
    expected.forEach((p, j) => {
      expect(Math.exp(mixed[j]!)).toBeCloseTo(p, 6);
      total += Math.exp(mixed[j]!);
      // The per-token path the eval uses gives the same number.
      expect(mixLogProb(lm[j]!, knnLogProbOf(distances, values, distances.length, T, j), lambda)).toBeCloseTo(mixed[j]!, 5);
    });
    expect(total).toBeCloseTo(1, 6);
  });

  it('sums p_kNN per token over the neighbours that share it, and uses only the first k', () => {
    const knn = knnLogProbs(distances, values, 3, 1);
    expect(Array.from(knn.tokens)).toEqual([3, 1]);
    const w = distances.slice(0, 3).map((d) => Math.exp(-d));
    const z = w[0]! + w[1]! + w[2]!;
    expect(Math.exp(knn.logProbs[0]!)).toBeCloseTo((w[0]! + w[2]!) / z, 12);
    expect(Math.exp(knn.logProbs[1]!)).toBeCloseTo(w[1]! / z, 12);
    expect(knnLogProbOf(distances, values, 3, 1, 5)).toBe(-Infinity);
  });

  it('stays finite where plain probabilities underflow', () => {
    // exp(-d/T) is 0 in float64 for all of these, and the LM gives token 2 about e^-900.
    const far = [1000, 1001, 1003];
    const lm = logSoftmax(Float32Array.of(0, 0, -900, 0), 0, 4);
    const knn = knnLogProbs(far, [2, 2, 0], 3, 1);
    expect(Math.exp(knn.logProbs[0]!)).toBeCloseTo((1 + Math.exp(-1)) / (1 + Math.exp(-1) + Math.exp(-3)), 12);
    const mixed = mixLogProbs(lm, knn, 0.25);
    for (const v of mixed) expect(Number.isFinite(v)).toBe(true);
    expect(Math.exp(mixed[2]!)).toBeCloseTo(0.25 * Math.exp(knn.logProbs[0]!), 6);
  });

  it('λ = 1 leaves only the neighbours\' tokens, λ = 0 the LM unchanged', () => {
    const lm = logSoftmax(Float32Array.from(logits), 0, logits.length);
    const knn = knnLogProbs(distances, values, 5, 1);
    const only = mixLogProbs(lm, knn, 1);
    expect(only[0]).toBe(-Infinity);
    expect(Math.exp(only[3]!) + Math.exp(only[1]!) + Math.exp(only[5]!)).toBeCloseTo(1, 6);
    expect(Array.from(mixLogProbs(lm, knn, 0))).toEqual(Array.from(lm));
  });

  it('refuses invalid controls', () => {
    expect(() => validateKnnSettings({ lambda: 1.5, k: 8, temperature: 1 })).toThrow(/λ/);
    expect(() => validateKnnSettings({ lambda: 0.2, k: 0, temperature: 1 })).toThrow(/k must/);
    expect(() => validateKnnSettings({ lambda: 0.2, k: 8, temperature: 0 })).toThrow(/temperature/);
    expect(() => validateKnnSettings({ lambda: 0.2, k: 2048, temperature: 1 }, 1024)).toThrow(/1\.\.1024/);
  });
});
