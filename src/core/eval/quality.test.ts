import { describe, expect, it } from 'vitest';
import { distinctN, qualityMetrics, repetitionRate, selfBleu, sentenceBleu, zipfCoefficient } from './quality';

describe('text-quality metrics on hand-made token sequences', () => {
  it('repetition: the share of 4-grams that repeat an earlier one', () => {
    // 4-grams 1234 2341 3412 4123 1234 2341: two of six repeat
    expect(repetitionRate([1, 2, 3, 4, 1, 2, 3, 4, 1])).toBeCloseTo(1 / 3, 12);
    expect(repetitionRate([1, 2, 3, 4, 5, 6])).toBe(0);
    expect(repetitionRate([1, 2, 3])).toBe(0);
  });

  it('distinct-n pools the continuations', () => {
    expect(distinctN([[1, 2, 1], [1, 3]], 1)).toBeCloseTo(3 / 5, 12);
    expect(distinctN([[1, 2, 1], [1, 3]], 2)).toBe(1);
    expect(distinctN([[7, 7], [7, 7]], 2)).toBe(0.5);
  });

  it('BLEU-4 is 1 for an identical reference and the smoothed floor for no overlap', () => {
    expect(sentenceBleu([1, 2, 3, 4, 5], [[1, 2, 3, 4, 5]])).toBeCloseTo(1, 12);
    const none = sentenceBleu([1, 2, 3, 4], [[5, 6, 7, 8]]);
    expect(none).toBeCloseTo(Math.pow((0.1 / 4) * (0.1 / 3) * (0.1 / 2) * (0.1 / 1), 1 / 4), 12);
    // brevity: a 4-token hypothesis inside an 8-token reference
    expect(sentenceBleu([1, 2, 3, 4], [[1, 2, 3, 4, 5, 6, 7, 8]])).toBeCloseTo(Math.exp(1 - 8 / 4), 12);
  });

  it('Self-BLEU is 1 for identical continuations and low for disjoint ones', () => {
    expect(selfBleu([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]])).toBeCloseTo(1, 12);
    expect(selfBleu([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])).toBeLessThan(0.05);
  });

  it('Zipf coefficient is 1 for frequencies proportional to 1/rank', () => {
    const seq = [...Array(12).fill(1), ...Array(6).fill(2), ...Array(4).fill(3), ...Array(3).fill(4)];
    expect(zipfCoefficient([seq])).toBeCloseTo(1, 10);
  });

  it('counts <unk> and summarises', () => {
    const m = qualityMetrics([[0, 5, 6, 0], [7, 8]], 0);
    expect(m.unkRate).toBeCloseTo(2 / 6, 12);
    expect(m.tokens).toBe(6);
    expect(m.continuations).toBe(2);
  });
});
