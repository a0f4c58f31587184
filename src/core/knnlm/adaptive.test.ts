import { describe, expect, it } from 'vitest';
import { DEFAULT_LAMBDA_TABLE, bucketOf, effectiveLambda, fitLambdaTable, scoreRecords, skipsSearch, tableLambda, topProbability, validateAdaptive, type FitRecord } from './adaptive';
import { logSoftmax, mixLogProb, validateKnnSettings } from './interpolate';

describe('adaptive kNN-LM', () => {
  it('puts a distance in the bucket [edges[i−1], edges[i]), an edge itself in the bucket above', () => {
    const edges = [1, 2, 4];
    expect([0, 0.999, 1, 1.5, 2, 3.99, 4, 1e9].map((d) => bucketOf(edges, d))).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(bucketOf([], 123)).toBe(0);
    expect(tableLambda({ edges, lambdas: [0.9, 0.6, 0.3, 0.1] }, 2.5)).toBe(0.3);
  });

  it('skips the search only when θ is on and the GPT’s top probability reaches it', () => {
    expect(skipsSearch({}, 1)).toBe(false);
    expect(skipsSearch({ skipAbove: 0 }, 1)).toBe(false);
    expect(skipsSearch({ skipAbove: 0.5 }, 0.5)).toBe(true);
    expect(skipsSearch({ skipAbove: 0.5 }, 0.4999)).toBe(false);
    expect(skipsSearch({ skipAbove: 1 }, 0.999)).toBe(false);
  });

  it('mixes with λ = 0 when skipped, the table’s λ by the nearest distance, else the fixed λ', () => {
    const lambdaTable = { edges: [10, 20], lambdas: [0.8, 0.5, 0.1] };
    expect(effectiveLambda({ lambda: 0.5 }, undefined)).toBe(0);
    expect(effectiveLambda({ lambda: 0.5, lambdaTable }, undefined)).toBe(0);
    expect(effectiveLambda({ lambda: 0.5 }, 35)).toBe(0.5);
    expect(effectiveLambda({ lambda: 0.5, lambdaTable }, 5)).toBe(0.8);
    expect(effectiveLambda({ lambda: 0.5, lambdaTable }, 35)).toBe(0.1);
  });

  it('reads the top probability off a log-softmax row', () => {
    const row = logSoftmax(Float32Array.from([2, 0, -1, 1]), 0, 4);
    const z = Math.exp(2) + 1 + Math.exp(-1) + Math.exp(1);
    expect(topProbability(row)).toBeCloseTo(Math.exp(2) / z, 6);
  });

  it('rejects malformed thresholds and tables; the shipped table is valid', () => {
    const base = { lambda: 0.5, k: 8, temperature: 1 };
    expect(() => validateKnnSettings({ ...base, skipAbove: 1.5 })).toThrow(/θ/);
    expect(() => validateKnnSettings({ ...base, skipAbove: -0.1 })).toThrow(/θ/);
    expect(() => validateKnnSettings({ ...base, lambdaTable: { edges: [1], lambdas: [0.5] } })).toThrow(/one λ more/);
    expect(() => validateKnnSettings({ ...base, lambdaTable: { edges: [2, 1], lambdas: [0.5, 0.5, 0.5] } })).toThrow(/increasing/);
    expect(() => validateKnnSettings({ ...base, lambdaTable: { edges: [1], lambdas: [0.5, 1.2] } })).toThrow(/λ must be/);
    expect(() => validateAdaptive({ skipAbove: 0.9, lambdaTable: { ...DEFAULT_LAMBDA_TABLE } })).not.toThrow();
    expect(DEFAULT_LAMBDA_TABLE.lambdas.length).toBe(DEFAULT_LAMBDA_TABLE.edges.length + 1);
  });

  it('fits one λ per distance bucket: near neighbours that predict the target get a high λ, far ones that miss it a low one', () => {
    const records: FitRecord[] = [];
    for (let i = 0; i < 200; i++) {
      // near (d < 10): the kNN is right (p_kNN 0.9) and the LM weak (0.01)
      records.push({ nearest: 5 + (i % 5) * 0.5, lm: Math.log(0.01), knn: Math.log(0.9) });
      // far (d >= 30): the kNN misses the target; the LM has 0.2
      records.push({ nearest: 30 + (i % 7), lm: Math.log(0.2), knn: i % 10 === 0 ? Math.log(0.05) : -Infinity });
    }
    const fit = fitLambdaTable(records, 2);
    expect(fit.table.edges.length).toBe(1);
    expect(fit.table.edges[0]).toBeGreaterThan(7);
    expect(fit.table.edges[0]).toBeLessThanOrEqual(30);
    expect(fit.table.lambdas[0]).toBeGreaterThanOrEqual(0.95);
    expect(fit.table.lambdas[1]).toBe(0);
    expect(fit.buckets.map((b) => b.count)).toEqual([200, 200]);
    // Better than the best single λ on the same targets, and its nll is the table's
    expect(fit.nll).toBeLessThan(fit.constant.nll);
    const recomputed = records.reduce((s, r) => s - mixLogProb(r.lm, r.knn, tableLambda(fit.table, r.nearest)), 0);
    expect(fit.nll).toBeCloseTo(recomputed, 6);
    // One bucket is the best constant λ
    const one = fitLambdaTable(records, 1);
    expect(one.table).toEqual({ edges: [], lambdas: [one.constant.lambda] });
  });

  it('scores recorded targets offline: the fit’s nll with its table, p_LM alone where θ skips', () => {
    const records = [
      { lm: Math.log(0.1), knn: Math.log(0.5), nearest: 3, lmTop: 0.2 },
      { lm: Math.log(0.6), knn: -Infinity, nearest: 40, lmTop: 0.6 },
      { lm: Math.log(0.05), knn: Math.log(0.01), nearest: 40, lmTop: 0.3 },
    ];
    const lambdaTable = { edges: [10], lambdas: [0.8, 0.2] };
    const mix = (lm: number, knn: number, l: number) => -Math.log(l * Math.exp(knn) + (1 - l) * Math.exp(lm));
    expect(scoreRecords(records, { lambda: 0.5 }).nll).toBeCloseTo(mix(Math.log(0.1), Math.log(0.5), 0.5) - Math.log(0.5 * 0.6) + mix(Math.log(0.05), Math.log(0.01), 0.5), 9);
    const adaptive = scoreRecords(records, { lambda: 0.5, lambdaTable, skipAbove: 0.5 });
    expect(adaptive.skipped).toBe(1);
    expect(adaptive.nll).toBeCloseTo(mix(Math.log(0.1), Math.log(0.5), 0.8) - Math.log(0.6) + mix(Math.log(0.05), Math.log(0.01), 0.2), 9);
    const fit = fitLambdaTable(records, 2);
    expect(scoreRecords(records, { lambda: 0, lambdaTable: fit.table }).nll).toBeCloseTo(fit.nll, 9);
  });
});
