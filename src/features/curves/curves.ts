import type { EvalRequest, EvalResult, KnnLmSettings } from '../../client';

/** Which kNN-LM setting a curve varies; the other two stay at the centre setting. */
export type SettingAxis = 'lambda' | 'temperature' | 'k';

/** What a curve's x axis is: a kNN-LM setting, the share of the kNN-LM datastore, or In-Context RALM's stride. */
export type CurveAxis = SettingAxis | 'fraction' | 'stride';

export const CURVE_AXES: readonly SettingAxis[] = ['lambda', 'temperature', 'k'];

/**
 * What one Compute computes: the three kNN-LM setting curves (one pass), kNN-LM against the share
 * of its datastore (one forward, one search per share), or In-Context RALM against its stride (one
 * pass per stride, then the GPT alone).
 */
export type CurveFamily = 'settings' | 'fraction' | 'stride';

export const CURVE_FAMILIES: readonly CurveFamily[] = ['settings', 'fraction', 'stride'];

/** Shares of the kNN-LM datastore's entries (its first ones: the datastore text's first tokens). */
export const FRACTION_VALUES: readonly number[] = [0.01, 0.03, 0.1, 0.3, 1];

/** In-Context RALM's retrieval strides s; the first is the paper's (and the app's) default. */
export const STRIDE_VALUES: readonly number[] = [4, 8, 16, 32, 64];

/**
 * The values each curve visits. λ stops short of 1: at λ = 1 a target outside the k neighbours has
 * probability 0, so the perplexity is infinite. k is capped by the datastore's entries by `curveSweep`.
 */
export const CURVE_VALUES: Readonly<Record<SettingAxis, readonly number[]>> = {
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
  curves: Record<SettingAxis, CurvePoint[]>;
  scoredTokens: number;
  windows: number;
  totalWindows: number;
  targetInNeighbours: number;
}

function withValue(centre: KnnLmSettings, axis: SettingAxis, value: number): KnnLmSettings {
  return { lambda: centre.lambda, k: centre.k, temperature: centre.temperature, [axis]: value };
}

/** The points of one curve: the axis's values and the centre's own, sorted, no repeats. */
export function curveValues(centre: KnnLmSettings, axis: SettingAxis, maxK = Infinity): number[] {
  const values = [...CURVE_VALUES[axis], centre[axis]].filter((v) => axis !== 'k' || v <= maxK);
  return [...new Set(values)].sort((a, b) => a - b);
}

const same = (a: KnnLmSettings, b: KnnLmSettings) => a.lambda === b.lambda && a.k === b.k && a.temperature === b.temperature && (a.fraction ?? 1) === (b.fraction ?? 1);

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
  const curve = (axis: SettingAxis): CurvePoint[] =>
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

/** One curve with its reference: the GPT alone on the same targets. */
export interface SingleCurve {
  gpt: { tokenPpl: number; nll: number };
  points: CurvePoint[];
  scoredTokens: number;
  windows: number;
  totalWindows: number;
}

/** The centre setting on each share of the datastore (the whole first, with no fraction: the headline). */
export function fractionSweep(centre: KnnLmSettings): KnnLmSettings[] {
  const plain = { lambda: centre.lambda, k: centre.k, temperature: centre.temperature };
  return [plain, ...FRACTION_VALUES.filter((f) => f < 1).map((fraction) => ({ ...plain, fraction }))];
}

/** Which family a request computed. */
export function familyOf(request: EvalRequest): CurveFamily {
  if (request.model === 'icralm') return 'stride';
  return request.knn.sweep?.some((s) => s.fraction !== undefined) ? 'fraction' : 'settings';
}

/** kNN-LM against the share of its datastore, from a kNN-LM `evaluate` whose sweep held `fractionSweep(centre)`. */
export function fractionCurveOf(result: EvalResult, centre: KnnLmSettings): SingleCurve {
  const knn = result.knnlm;
  if (!knn) throw new Error('Not a kNN-LM evaluation: it has no sweep.');
  const plain = { lambda: centre.lambda, k: centre.k, temperature: centre.temperature };
  const points = FRACTION_VALUES.map((fraction) => {
    const want = fraction < 1 ? { ...plain, fraction } : plain;
    const hit = knn.sweep.find((r) => same(r.settings, want));
    if (!hit) throw new Error(`The evaluation has no result for ${fraction * 100}% of the datastore.`);
    return { value: fraction, tokenPpl: hit.tokenPpl, nll: hit.nll, current: fraction === 1 };
  });
  return { gpt: knn.gpt, points, scoredTokens: result.scoredTokens, windows: result.windows, totalWindows: result.totalWindows };
}

/** In-Context RALM against its stride, from an `evaluate` with `icralm.strides`; the request's own stride is ringed. */
export function strideCurveOf(result: EvalResult, stride: number): SingleCurve {
  const ic = result.icralm;
  if (!ic) throw new Error('Not an In-Context RALM stride sweep: it has no strides.');
  const points = [...ic.strides].sort((a, b) => a.stride - b.stride).map((p) => ({ value: p.stride, tokenPpl: p.tokenPpl, nll: p.nll, current: p.stride === stride }));
  return { gpt: ic.gpt, points, scoredTokens: result.scoredTokens, windows: result.windows, totalWindows: result.totalWindows };
}
