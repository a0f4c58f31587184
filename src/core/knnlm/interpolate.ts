/**
 * kNN-LM interpolation (Khandelwal et al. 2020): p = λ·p_kNN + (1−λ)·p_LM, with
 * p_kNN(w) = Σ_{neighbours i with value w} exp(−d_i/T) / Σ_i exp(−d_i/T).
 * Everything is mixed in log space with logsumexp, so tokens the LM gives ~1e-30 and neighbours
 * at distances of hundreds neither underflow nor produce log(0) for the mixture.
 */
import type { KnnLmSettings } from './types';

/** A sparse distribution over token ids: the tokens present among the neighbours. */
export interface SparseLogProbs {
  /** distinct token ids, in order of first appearance among the (nearest-first) neighbours */
  tokens: Int32Array;
  logProbs: Float64Array;
}

/** log(exp(a) + exp(b)), exact for -Infinity operands. */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/** log softmax of logits[offset, offset+V) into `out` (float64 sums). */
export function logSoftmax(logits: Float32Array, offset: number, V: number, out = new Float32Array(V)): Float32Array {
  let max = -Infinity;
  for (let j = 0; j < V; j++) if (logits[offset + j]! > max) max = logits[offset + j]!;
  let sum = 0;
  for (let j = 0; j < V; j++) sum += Math.exp(logits[offset + j]! - max);
  const lse = max + Math.log(sum);
  for (let j = 0; j < V; j++) out[j] = logits[offset + j]! - lse;
  return out;
}

/** logsumexp of −d_i/T over the first k neighbours: the softmax's normaliser. */
function knnNormaliser(distances: ArrayLike<number>, k: number, temperature: number): number {
  // Distances come nearest first, so the first is the largest exponent.
  const top = -distances[0]! / temperature;
  let sum = 0;
  for (let i = 0; i < k; i++) sum += Math.exp(-distances[i]! / temperature - top);
  return top + Math.log(sum);
}

/**
 * p_kNN over the first `k` neighbours (nearest first), as log-probabilities per distinct token.
 * `values[i]` is neighbour i's next-token id. Empty when k = 0.
 */
export function knnLogProbs(distances: ArrayLike<number>, values: ArrayLike<number>, k: number, temperature: number): SparseLogProbs {
  k = Math.min(k, distances.length, values.length);
  if (k <= 0) return { tokens: new Int32Array(0), logProbs: new Float64Array(0) };
  if (!(temperature > 0)) throw new RangeError(`kNN temperature must be positive, got ${temperature}`);
  const lse = knnNormaliser(distances, k, temperature);
  const slot = new Map<number, number>();
  const tokens: number[] = [];
  const logProbs: number[] = [];
  for (let i = 0; i < k; i++) {
    const w = values[i]!;
    const lp = -distances[i]! / temperature - lse;
    const at = slot.get(w);
    if (at === undefined) {
      slot.set(w, tokens.length);
      tokens.push(w);
      logProbs.push(lp);
    } else {
      logProbs[at] = logAddExp(logProbs[at]!, lp);
    }
  }
  return { tokens: Int32Array.from(tokens), logProbs: Float64Array.from(logProbs) };
}

/** log p_kNN(target) over the first k neighbours; -Infinity when no neighbour has that value. */
export function knnLogProbOf(distances: ArrayLike<number>, values: ArrayLike<number>, k: number, temperature: number, target: number): number {
  k = Math.min(k, distances.length, values.length);
  if (k <= 0) return -Infinity;
  const lse = knnNormaliser(distances, k, temperature);
  let acc = -Infinity;
  for (let i = 0; i < k; i++) if (values[i] === target) acc = logAddExp(acc, -distances[i]! / temperature - lse);
  return acc;
}

/** log(λ·p_kNN + (1−λ)·p_LM) of one token from its two log-probabilities. */
export function mixLogProb(lmLogProb: number, knnLogProb: number, lambda: number): number {
  const a = lambda < 1 ? Math.log1p(-lambda) + lmLogProb : -Infinity;
  const b = lambda > 0 ? Math.log(lambda) + knnLogProb : -Infinity;
  return logAddExp(a, b);
}

/**
 * The mixture over the whole vocabulary, as log-probabilities: `lmLogProbs` is one row of
 * log p_LM (length V), `knn` the sparse p_kNN. Returns log p (a valid "logits" row: its softmax
 * is the mixture itself).
 */
export function mixLogProbs(lmLogProbs: Float32Array, knn: SparseLogProbs, lambda: number, out = new Float32Array(lmLogProbs.length)): Float32Array {
  checkLambda(lambda);
  const V = lmLogProbs.length;
  const lmWeight = lambda < 1 ? Math.log1p(-lambda) : -Infinity;
  for (let j = 0; j < V; j++) out[j] = lmWeight + lmLogProbs[j]!;
  if (lambda > 0) {
    for (let t = 0; t < knn.tokens.length; t++) {
      const w = knn.tokens[t]!;
      out[w] = mixLogProb(lmLogProbs[w]!, knn.logProbs[t]!, lambda);
    }
  }
  return out;
}

export function checkLambda(lambda: number): void {
  if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`λ must be in [0, 1], got ${lambda}`);
}

/** Throws a RangeError naming the first invalid control. */
export function validateKnnSettings(settings: KnnLmSettings, maxK = Infinity): void {
  checkLambda(settings.lambda);
  if (!(Number.isInteger(settings.k) && settings.k >= 1 && settings.k <= maxK)) throw new RangeError(`k must be an integer in 1..${maxK}, got ${settings.k}`);
  if (!(settings.temperature > 0 && Number.isFinite(settings.temperature))) throw new RangeError(`the kNN temperature must be positive, got ${settings.temperature}`);
  const pointers = settings.pointers ?? 0;
  if (!(Number.isInteger(pointers) && pointers >= 0)) throw new RangeError(`the RetoMaton pointer threshold must be a whole number >= 0, got ${settings.pointers}`);
  if (settings.fraction !== undefined && !(settings.fraction > 0 && settings.fraction <= 1)) throw new RangeError(`the datastore fraction must be in (0, 1], got ${settings.fraction}`);
  validateAdaptive(settings);
}

/** Adaptive kNN-LM (adaptive.ts): throws a RangeError when θ or the λ table is malformed. */
export function validateAdaptive(settings: Pick<KnnLmSettings, 'skipAbove' | 'lambdaTable'>): void {
  const theta = settings.skipAbove ?? 0;
  if (!(theta >= 0 && theta <= 1)) throw new RangeError(`the skip threshold θ must be in [0, 1] (0 = off), got ${settings.skipAbove}`);
  const table = settings.lambdaTable;
  if (!table) return;
  if (!Array.isArray(table.edges) || !Array.isArray(table.lambdas) || table.lambdas.length !== table.edges.length + 1) {
    throw new RangeError(`a λ table needs one λ more than it has bucket edges, got ${table.edges?.length} edges and ${table.lambdas?.length} λ`);
  }
  for (let i = 0; i < table.edges.length; i++) {
    if (!Number.isFinite(table.edges[i]) || (i > 0 && !(table.edges[i]! > table.edges[i - 1]!))) throw new RangeError('λ table bucket edges must be finite and increasing');
  }
  for (const lambda of table.lambdas) checkLambda(lambda);
}
