import { describe, expect, it } from 'vitest';
import { compareLosses, lossDifference, pages, rangeTotals, tokenLosses } from './summary';

const lp = (...values: number[]) => Float32Array.from(values);

describe('lens aggregation', () => {
  it('perplexity of a range is exp of the mean loss; unscored tokens are skipped', () => {
    const logProbs = lp(Number.NaN, Math.log(0.5), Math.log(0.25), Math.log(0.125));
    const t = rangeTotals(logProbs, 2);
    expect(t.scoredTokens).toBe(3);
    expect(t.nll).toBeCloseTo(6 * Math.LN2, 6);
    // geometric mean of 1/p: (2 * 4 * 8)^(1/3) = 4
    expect(t.tokenPpl).toBeCloseTo(4, 5);
    // per word: exp(6 ln2 / 2) = 8
    expect(t.wordPpl).toBeCloseTo(8, 5);
    expect(rangeTotals(logProbs, undefined, 1, 2).tokenPpl).toBeCloseTo(2, 6);
    expect(rangeTotals(logProbs, undefined, 0, 1).tokenPpl).toBeNaN();
  });

  it('the sum of float32 per-token scores matches a float64 total closely over many tokens', () => {
    const n = 20_000;
    const values = Array.from({ length: n }, (_, i) => -0.001 - ((i * 7919) % 1000) / 97);
    const exact = values.reduce((s, v) => s - v, 0);
    const t = rangeTotals(Float32Array.from(values));
    expect(Math.abs(t.nll - exact) / exact).toBeLessThan(1e-6);
  });

  it('losses are −log p and the difference is loss(A) − loss(B)', () => {
    expect(Array.from(tokenLosses(lp(Math.log(1), -2)))).toEqual([-0, 2]);
    const d = lossDifference(lp(Number.NaN, -3, -1), lp(-1, -1, -3));
    expect(d[0]).toBeNaN();
    expect(d[1]).toBeCloseTo(2);
    expect(d[2]).toBeCloseTo(-2);
    expect(() => lossDifference(lp(1), lp(1, 2))).toThrow(RangeError);
  });

  it('counts where each model is better, with a tie band', () => {
    const s = compareLosses(lp(Number.NaN, -3, -1, -2, -2.005), lp(-1, -1, -3, -2, -2));
    expect(s).toMatchObject({ betterB: 1, betterA: 1, same: 2 });
    expect(s.meanDelta).toBeCloseTo((2 - 2 + 0 + 0.005) / 4, 5);
  });

  it('splits tokens into pages', () => {
    expect(pages(0, 10)).toEqual([{ from: 0, to: 0 }]);
    expect(pages(25, 10)).toEqual([
      { from: 0, to: 10 },
      { from: 10, to: 20 },
      { from: 20, to: 25 },
    ]);
  });
});
