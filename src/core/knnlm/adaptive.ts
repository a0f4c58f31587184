/**
 * Adaptive kNN-LM (docs/adaptive-knnlm.md), training-free:
 *
 * - Skip the search when the GPT is confident (He et al. 2021, "Efficient Nearest Neighbor Language
 *   Models", adaptive retrieval; here with a fixed threshold instead of their learned gate): if the
 *   GPT's top next-token probability is at least θ (`skipAbove`), no search runs and the token uses
 *   p_LM alone (λ = 0).
 * - λ by retrieval quality (Drozdov et al. 2022, "You can't pick your neighbors, or can you? When and
 *   how to rely on retrieval in the kNN-LM"): the nearest neighbour's distance falls in one of a few
 *   buckets, and each bucket has its own λ, tuned on validation text (`fitLambdaTable`, run by
 *   `npm run eval:study -- --knnlm --fit-adaptive`).
 *
 * With neither set, every function here gives the plain kNN-LM's λ.
 */
import type { KnnLmSettings, LambdaTable } from '../../protocol/knnlm';
import { mixLogProb } from './interpolate';

export { validateAdaptive } from './interpolate';

export type { LambdaTable } from '../../protocol/knnlm';

/**
 * λ per nearest-neighbour distance bucket for the default settings (k = 1024, T = 10, the WikiText-2
 * train PCA-64 int8 datastore), fitted on two stretches of WikiText-2 valid, eval windows 500-539 and
 * 1500-1539 (10,240 targets, other articles than the first windows), by
 *   npm run eval:study -- --model public/models/gpt-wt2 --split valid --knnlm \
 *     --knn-datastore public/datastores/wikitext-2-train.knn-pca64.rlds --windows 500:540 --fit-records v500.f32
 *   (the same with --windows 1500:1540 --fit-records v1500.f32), then
 *   npm run eval:study -- --fit-from v500.f32,v1500.f32 --fit-adaptive 4 --write-lambda-table table.json
 * (4 buckets at the quartiles of the nearest distance, λ on a 0.05 grid). 4 buckets were chosen over
 * 2 and 8 by fitting on one stretch and scoring the other (docs/adaptive-knnlm.md); a table fitted
 * on the first 40 windows alone (8 buckets) did not carry over to other text. Distances are squared
 * L2 in that datastore's key space, so on another datastore (a custom one in the app) the table
 * applies as is but was not tuned for it.
 */
export const DEFAULT_LAMBDA_TABLE: Readonly<LambdaTable> = {
  edges: [8.25, 13.2, 20.9],
  lambdas: [0.65, 0.45, 0.4, 0.35],
};

/** Which bucket a nearest distance falls in: i such that edges[i−1] <= d < edges[i] (0..edges.length). */
export function bucketOf(edges: readonly number[], distance: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (distance < edges[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** λ of the bucket that `nearest` (the first neighbour's distance) falls in. */
export function tableLambda(table: LambdaTable, nearest: number): number {
  return table.lambdas[bucketOf(table.edges, nearest)]!;
}

/** Whether the skip rule is on and the GPT is confident enough to skip the search. */
export function skipsSearch(settings: Pick<KnnLmSettings, 'skipAbove'>, lmTopProbability: number): boolean {
  const theta = settings.skipAbove ?? 0;
  return theta > 0 && lmTopProbability >= theta;
}

/**
 * The λ a token is mixed with: 0 when the search was skipped (`nearest` undefined), the table's λ
 * for the nearest distance when there is a table, else the fixed λ.
 */
export function effectiveLambda(settings: Pick<KnnLmSettings, 'lambda' | 'lambdaTable'>, nearest: number | undefined): number {
  if (nearest === undefined) return 0;
  return settings.lambdaTable ? tableLambda(settings.lambdaTable, nearest) : settings.lambda;
}

/** The largest probability of a row of log-probabilities (its top token's). */
export function topProbability(logProbs: ArrayLike<number>, offset = 0, length = logProbs.length - offset): number {
  let max = -Infinity;
  for (let i = 0; i < length; i++) if (logProbs[offset + i]! > max) max = logProbs[offset + i]!;
  return Math.exp(max);
}

/** One scored target, as the fit needs it. */
export interface FitRecord {
  /** log p_LM(target) */
  lm: number;
  /** log p_kNN(target) with the settings being fitted (−Infinity when no neighbour has it) */
  knn: number;
  /** the nearest neighbour's distance */
  nearest: number;
}

export interface LambdaFit {
  table: LambdaTable;
  /** summed −log p of the records with the fitted table */
  nll: number;
  /** the best single λ on the same grid and records, for comparison */
  constant: { lambda: number; nll: number };
  buckets: { from: number; to: number; count: number; lambda: number; nll: number }[];
}

/** Rounds to 3 significant digits (table edges that read well in a comment). */
function round3(x: number): number {
  return Number(x.toPrecision(3));
}

/**
 * Fits a λ table to scored targets: bucket edges at the quantiles of the nearest distance (`buckets`
 * buckets of about equal counts), and in each bucket the λ of `grid` with the least summed −log p.
 */
export function fitLambdaTable(records: readonly FitRecord[], buckets: number, grid: readonly number[] = Array.from({ length: 21 }, (_, i) => i / 20)): LambdaFit {
  if (records.length === 0) throw new RangeError('fitLambdaTable needs scored targets');
  if (!(Number.isInteger(buckets) && buckets >= 1)) throw new RangeError(`buckets must be a whole number >= 1, got ${buckets}`);
  const sorted = records.map((r) => r.nearest).sort((a, b) => a - b);
  const edges: number[] = [];
  for (let b = 1; b < buckets; b++) {
    const edge = round3(sorted[Math.floor((b * sorted.length) / buckets)]!);
    if (edge > (edges.at(-1) ?? -Infinity) && edge > sorted[0]!) edges.push(edge);
  }
  const nllAt = new Float64Array((edges.length + 1) * grid.length);
  const counts = new Int32Array(edges.length + 1);
  const constantNll = new Float64Array(grid.length);
  for (const r of records) {
    const b = bucketOf(edges, r.nearest);
    counts[b]!++;
    grid.forEach((lambda, g) => {
      const nll = -mixLogProb(r.lm, r.knn, lambda);
      nllAt[b * grid.length + g]! += nll;
      constantNll[g]! += nll;
    });
  }
  const best = (values: ArrayLike<number>, offset: number) => {
    let at = 0;
    for (let g = 1; g < grid.length; g++) if (values[offset + g]! < values[offset + at]!) at = g;
    return at;
  };
  const table: LambdaTable = { edges, lambdas: [] };
  const rows: LambdaFit['buckets'] = [];
  let nll = 0;
  for (let b = 0; b <= edges.length; b++) {
    const g = counts[b] ? best(nllAt, b * grid.length) : best(constantNll, 0);
    table.lambdas.push(grid[g]!);
    const bucketNll = counts[b] ? nllAt[b * grid.length + g]! : 0;
    nll += bucketNll;
    rows.push({ from: b === 0 ? 0 : edges[b - 1]!, to: b === edges.length ? Infinity : edges[b]!, count: counts[b]!, lambda: grid[g]!, nll: bucketNll });
  }
  const c = best(constantNll, 0);
  return { table, nll, constant: { lambda: grid[c]!, nll: constantNll[c]! }, buckets: rows };
}

/** A scored target with the GPT's top probability too: enough to score any θ and table offline. */
export interface AdaptiveRecord extends FitRecord {
  lmTop: number;
}

/**
 * Summed −log p of recorded targets under a fixed λ or a table, with the skip rule (a skipped
 * target scores log p_LM), and how many targets the rule skipped. The records' p_kNN must be of the
 * k and T the settings have (they are not recomputed).
 */
export function scoreRecords(records: readonly AdaptiveRecord[], settings: Pick<KnnLmSettings, 'lambda' | 'lambdaTable' | 'skipAbove'>): { nll: number; skipped: number } {
  let nll = 0;
  let skipped = 0;
  for (const r of records) {
    if (skipsSearch(settings, r.lmTop)) {
      skipped++;
      nll -= r.lm;
    } else {
      nll -= mixLogProb(r.lm, r.knn, effectiveLambda(settings, r.nearest));
    }
  }
  return { nll, skipped };
}
