import type { EvalResult, KnnLmSettings } from '../../client';

/** Which kNN-LM setting a curve varies; the other two stay at the centre setting. */
export type CurveAxis = 'lambda' | 'temperature' | 'k';

export const CURVE_AXES: readonly CurveAxis[] = ['lambda', 'temperature', 'k'];

/**
 * The values each curve visits. λ stops short of 1: at λ = 1 a target outside the k neighbours has
 * probability 0, so the perplexity is infinite. k is capped by the datastore's entries by `curveSweep`.
 */
export const CURVE_VALUES: Readonly<Record<CurveAxis, readonly number[]>> = {
  lambda: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
  temperature: [1, 2, 5, 10, 20, 50, 100],
  k: [1, 4, 16, 64, 256, 1024],
};

export interface CurvePoint {
  value: number;
  tokenPpl: number;
  nll: number;
  /** this point is the centre setting */
  current: boolean;
}

export interface Curves {
  centre: KnnLmSettings;
  gpt: { tokenPpl: number; nll: number };
  curves: Record<CurveAxis, CurvePoint[]>;
  scoredTokens: number;
  windows: number;
  totalWindows: number;
  targetInNeighbours: number;
}

function withValue(centre: KnnLmSettings, axis: CurveAxis, value: number): KnnLmSettings {
  return { lambda: centre.lambda, k: centre.k, temperature: centre.temperature, [axis]: value };
}

/** The points of one curve: the axis's values and the centre's own, sorted, no repeats. */
export function curveValues(centre: KnnLmSettings, axis: CurveAxis, maxK = Infinity): number[] {
  const values = [...CURVE_VALUES[axis], centre[axis]].filter((v) => axis !== 'k' || v <= maxK);
  return [...new Set(values)].sort((a, b) => a - b);
}

const same = (a: KnnLmSettings, b: KnnLmSettings) => a.lambda === b.lambda && a.k === b.k && a.temperature === b.temperature;

/** Every setting of the three curves, once each (the centre first): one kNN-LM evaluation mixes them all from one pass. */
export function curveSweep(centre: KnnLmSettings, maxK = Infinity): KnnLmSettings[] {
  const out: KnnLmSettings[] = [{ lambda: centre.lambda, k: centre.k, temperature: centre.temperature }];
  for (const axis of CURVE_AXES) {
    for (const value of curveValues(centre, axis, maxK)) {
      const s = withValue(centre, axis, value);
      if (!out.some((o) => same(o, s))) out.push(s);
    }
  }
  return out;
}

/** The three curves from a kNN-LM `evaluate` result whose sweep held `curveSweep(centre)`. */
export function curvesOf(result: EvalResult, centre: KnnLmSettings, maxK = Infinity): Curves {
  const knn = result.knnlm;
  if (!knn) throw new Error('Not a kNN-LM evaluation: it has no sweep.');
  const find = (s: KnnLmSettings) => {
    const hit = knn.sweep.find((r) => same(r.settings, s));
    if (!hit) throw new Error(`The evaluation has no result for λ ${s.lambda}, k ${s.k}, T ${s.temperature}.`);
    return hit;
  };
  const curve = (axis: CurveAxis): CurvePoint[] =>
    curveValues(centre, axis, maxK).map((value) => {
      const r = find(withValue(centre, axis, value));
      return { value, tokenPpl: r.tokenPpl, nll: r.nll, current: value === centre[axis] };
    });
  return {
    centre: { lambda: centre.lambda, k: centre.k, temperature: centre.temperature },
    gpt: knn.gpt,
    curves: { lambda: curve('lambda'), temperature: curve('temperature'), k: curve('k') },
    scoredTokens: result.scoredTokens,
    windows: result.windows,
    totalWindows: result.totalWindows,
    targetInNeighbours: knn.targetInNeighbours,
  };
}
