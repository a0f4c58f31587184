import { describe, expect, it } from 'vitest';
import { pairedComparison } from './paired';

/** Three articles; the stream's first token is never a target, so 3 + 4 + 5 tokens give 11 targets. */
const ARTICLES = [3, 4, 5];

function logprobs(values: number[]): Float32Array {
  return Float32Array.from(values);
}

describe('pairedComparison', () => {
  it('reports no change, with a zero-width interval, for identical runs', () => {
    const a = logprobs([-1, -2, -3, -1, -2, -3, -1, -2, -3, -1, -2]);
    const r = pairedComparison(a, a, ARTICLES, { resamples: 200 });
    expect(r.change_percent).toBeCloseTo(0, 12);
    expect(r.ci_percent[0]).toBeCloseTo(0, 12);
    expect(r.ci_percent[1]).toBeCloseTo(0, 12);
    expect(r.tokens).toBe(11);
    expect(r.articles).toBe(3);
    expect(r.articles_b_better).toBe(0);
  });

  it('gives the exact change when B is better by the same amount on every token', () => {
    const a = logprobs(Array.from({ length: 11 }, (_, i) => -2 - (i % 3)));
    const b = a.map((x) => x + 0.1);
    const r = pairedComparison(a, b, ARTICLES, { resamples: 200 });
    const expected = 100 * (Math.exp(-0.1) - 1);
    expect(r.change_percent).toBeCloseTo(expected, 4);
    // Every resample sees the same per-token gain, so the interval collapses onto it.
    expect(r.ci_percent[0]).toBeCloseTo(expected, 4);
    expect(r.ci_percent[1]).toBeCloseTo(expected, 4);
    expect(r.articles_b_better).toBe(3);
    expect(r.ppl_b).toBeLessThan(r.ppl_a);
  });

  it('widens the interval to cover a gain confined to one article', () => {
    // B gains only on the last article: resamples without it see no change, resamples of it alone a large gain.
    const a = logprobs(new Array(11).fill(-3));
    const b = a.map((x, j) => (j >= 6 ? x + 1 : x));
    const r = pairedComparison(a, b, ARTICLES, { resamples: 2000 });
    expect(r.change_percent).toBeLessThan(0);
    expect(r.ci_percent[1]).toBeCloseTo(0, 12);
    expect(r.ci_percent[0]).toBeLessThan(r.change_percent);
    expect(r.articles_b_better).toBe(1);
  });

  it('skips tokens neither run scored and refuses runs that scored different tokens', () => {
    const a = logprobs([NaN, -2, -3, -1, -2, -3, -1, -2, -3, -1, NaN]);
    expect(pairedComparison(a, a, ARTICLES, { resamples: 100 }).tokens).toBe(9);
    const b = a.slice();
    b[1] = NaN;
    expect(() => pairedComparison(a, b, ARTICLES)).toThrow(/scored by one run and not the other/);
    expect(() => pairedComparison(a, a, [3, 4])).toThrow(/articles hold 7 tokens/);
    expect(() => pairedComparison(a, a.slice(1), ARTICLES)).toThrow(/different lengths/);
  });
});
