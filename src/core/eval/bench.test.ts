import { describe, expect, it } from 'vitest';
import { interleavedStats, median, medianInterval, quantileSorted } from './bench';

describe('quantileSorted and median', () => {
  it('interpolates between order statistics (R type 7)', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(quantileSorted(s, 0.5)).toBeCloseTo(5.5, 12);
    expect(quantileSorted(s, 0.1)).toBeCloseTo(1.9, 12);
    expect(quantileSorted(s, 0.9)).toBeCloseTo(9.1, 12);
    expect(quantileSorted(s, 0)).toBe(1);
    expect(quantileSorted(s, 1)).toBe(10);
    expect(quantileSorted([], 0.5)).toBeNaN();
  });

  it('takes the middle of unsorted input without changing it', () => {
    const xs = [5, 1, 4, 2, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 4, 2, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

describe('medianInterval', () => {
  it('gives the 40th and 61st of 100 values', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(medianInterval(xs)).toEqual([40, 61]);
  });

  it('covers the whole sample when it is small', () => {
    expect(medianInterval([3, 1, 2])).toEqual([1, 3]);
  });
});

describe('interleavedStats', () => {
  it('takes the median of per-round ratios to the baseline, per token', () => {
    // Round 2 is slowed for both by other load: the step times jump, the ratio does not.
    const steps = { gpt: [1, 1, 4, 1, 1], retro: [2, 2, 8, 2, 3] };
    const s = interleavedStats(steps, 'gpt');
    expect(s.gpt!.vs_baseline).toBe(1);
    expect(s.retro!.vs_baseline).toBe(2);
    expect(s.retro!.vs_baseline_ci95).toEqual([2, 3]);
    expect(s.retro!.ms_per_token).toBe(2);
    expect(s.retro!.p10_ms_per_token).toBeCloseTo(2, 12);
    expect(s.retro!.p90_ms_per_token).toBeCloseTo(6, 12);
    expect(s.retro!.tokens_per_second).toBe(500);
    expect(s.retro!.blocks).toBe(5);
    expect(s.retro!.vs_baseline_total).toBeCloseTo(17 / 8, 12);
  });

  it('sums blocks of rounds so a once-per-block retrieval counts, and drops a partial block', () => {
    // A retrieval (+6 ms) in one step of every block of 4; per token the median would hide it.
    const gpt = [1, 1, 1, 1, 2, 2, 2, 2, 5];
    const real = [1, 7, 1, 1, 2, 2, 2, 14, 100];
    const s = interleavedStats({ gpt, real }, 'gpt', 4);
    expect(s.real!.blocks).toBe(2);
    expect(s.real!.step_median_ms).toBe(2);
    // Block sums 10 and 20 against 4 and 8: 2.5 per token and 5, ratio 2.5 in both.
    expect(s.real!.ms_per_token).toBeCloseTo(3.75, 12);
    expect(s.real!.vs_baseline).toBeCloseTo(2.5, 12);
    expect(s.real!.vs_baseline_ci95).toEqual([2.5, 2.5]);
    expect(s.real!.vs_baseline_total).toBeCloseTo(30 / 12, 12);
  });

  it('refuses runs of different lengths or an unknown baseline', () => {
    expect(() => interleavedStats({ gpt: [1, 2], retro: [1] }, 'gpt')).toThrow(RangeError);
    expect(() => interleavedStats({ retro: [1] }, 'gpt')).toThrow(RangeError);
  });
});
