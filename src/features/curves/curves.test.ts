import { describe, expect, it } from 'vitest';
import type { EvalResult, KnnLmSettings } from '../../client';
import { CURVE_VALUES, FRACTION_VALUES, STRIDE_VALUES, curveSweep, curveValues, curvesOf, familyOf, fractionCurveOf, fractionSweep, strideCurveOf } from './curves';
import type { EvalRequest } from '../../client';

const centre: KnnLmSettings = { lambda: 0.5, k: 1024, temperature: 10 };

/** A kNN-LM evaluation whose every setting has a made-up perplexity that depends on all three. */
function fakeResult(sweep: KnnLmSettings[]): EvalResult {
  const ppl = (s: KnnLmSettings) => 100 - 10 * s.lambda + s.temperature / 10 + Math.log2(s.k);
  return {
    knnlm: { gpt: { nll: 1, tokenPpl: 100 }, sweep: sweep.map((s) => ({ settings: s, nll: Math.log(ppl(s)), tokenPpl: ppl(s) })), targetInNeighbours: 0.5, searchesSkipped: 0 },
    scoredTokens: 10,
    windows: 1,
    totalWindows: 1,
  } as EvalResult;
}

describe('curves', () => {
  it('sweeps each setting around the centre, the centre once and first', () => {
    const sweep = curveSweep(centre);
    expect(sweep[0]).toEqual(centre);
    const keys = sweep.map((s) => `${s.lambda}/${s.k}/${s.temperature}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Each setting varies one of the three only.
    for (const s of sweep) expect([s.lambda !== centre.lambda, s.k !== centre.k, s.temperature !== centre.temperature].filter(Boolean).length).toBeLessThanOrEqual(1);
    expect(sweep.length).toBe(1 + (CURVE_VALUES.lambda.length - 1) + (CURVE_VALUES.temperature.length - 1) + (CURVE_VALUES.k.length - 1));
  });

  it('adds the centre to its curve, sorted, and caps k', () => {
    expect(curveValues({ ...centre, lambda: 0.33 }, 'lambda')).toContain(0.33);
    expect(curveValues(centre, 'temperature')).toEqual([...CURVE_VALUES.temperature].sort((a, b) => a - b));
    expect(curveValues(centre, 'k', 100)).toEqual([1, 4, 16, 64]);
    expect(Math.max(...curveSweep({ ...centre, k: 64 }, 100).map((s) => s.k))).toBe(64);
  });

  it('reads each curve back from the sweep with the centre marked', () => {
    const c = { lambda: 0.25, k: 256, temperature: 3 };
    const curves = curvesOf(fakeResult(curveSweep(c)), c);
    expect(curves.gpt.tokenPpl).toBe(100);
    expect(curves.curves.lambda.map((p) => p.value)).toEqual([0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]);
    expect(curves.curves.lambda.filter((p) => p.current).map((p) => p.value)).toEqual([0.25]);
    expect(curves.curves.temperature.find((p) => p.value === 50)!.tokenPpl).toBeCloseTo(100 - 2.5 + 5 + 8);
    expect(curves.curves.k.find((p) => p.value === 4)!.tokenPpl).toBeCloseTo(100 - 2.5 + 0.3 + 2);
  });

  it('refuses a result without the settings it needs', () => {
    expect(() => curvesOf(fakeResult([centre]), centre)).toThrow(/no result for λ 0/);
    expect(() => curvesOf({ ...fakeResult([]), knnlm: undefined } as EvalResult, centre)).toThrow(/Not a kNN-LM/);
  });

  it('sweeps the centre over the datastore shares, the whole first; reads the curve back in order with the whole ringed', () => {
    const sweep = fractionSweep(centre);
    expect(sweep[0]).toEqual(centre);
    expect(sweep.slice(1).map((s) => s.fraction)).toEqual(FRACTION_VALUES.filter((f) => f < 1));
    for (const s of sweep) expect([s.lambda, s.k, s.temperature]).toEqual([centre.lambda, centre.k, centre.temperature]);
    // Made-up perplexities falling with the share; the λ/T/k sweep's settings (no fraction) must not be mistaken for them.
    const result = fakeResult([...curveSweep(centre)]);
    result.knnlm!.sweep.push(...sweep.slice(1).map((s) => ({ settings: s, nll: 0, tokenPpl: 200 - 100 * s.fraction! })));
    const curve = fractionCurveOf(result, centre);
    expect(curve.points.map((p) => p.value)).toEqual([...FRACTION_VALUES]);
    expect(curve.points.map((p) => p.tokenPpl)).toEqual([199, 197, 190, 170, result.knnlm!.sweep[0]!.tokenPpl]);
    expect(curve.points.filter((p) => p.current).map((p) => p.value)).toEqual([1]);
    expect(() => fractionCurveOf(fakeResult(curveSweep(centre)), centre)).toThrow(/1% of the datastore/);
  });

  it('reads the stride curve sorted, the request’s stride ringed, with the GPT on the same targets', () => {
    const icralm = { gpt: { nll: 5, tokenPpl: 90 }, strides: [32, 4, 8].map((stride) => ({ stride, nll: stride, tokenPpl: 90 + stride / 4, blocks: 1, retrieved: 1 })) };
    const curve = strideCurveOf({ ...fakeResult([]), icralm } as EvalResult, 4);
    expect(curve.points.map((p) => p.value)).toEqual([4, 8, 32]);
    expect(curve.points.map((p) => p.current)).toEqual([true, false, false]);
    expect(curve.gpt.tokenPpl).toBe(90);
    expect(() => strideCurveOf(fakeResult([]), 4)).toThrow(/no strides/);
    expect(STRIDE_VALUES[0]).toBe(4);
  });

  it('tells the families apart by their requests', () => {
    const base = { text: '', retro: { retrieval: false, k: 2 }, icralm: { stride: 4, queryLength: 32 } } as unknown as EvalRequest;
    expect(familyOf({ ...base, model: 'icralm', knn: centre })).toBe('stride');
    expect(familyOf({ ...base, model: 'knnlm', knn: { ...centre, sweep: fractionSweep(centre).slice(1) } })).toBe('fraction');
    expect(familyOf({ ...base, model: 'knnlm', knn: { ...centre, sweep: curveSweep(centre).slice(1) } })).toBe('settings');
  });
});
