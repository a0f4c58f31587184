/**
 * Exact k-nearest-neighbour search by squared L2 distance (the kNN-LM's metric), over int8 keys.
 *
 * Each key x_i is stored as int8 codes c_i with one scale s_i (x̂_i = s_i·c_i), optionally next to
 * its float32 original x_i. The scan computes d̂_i = ‖q − x̂_i‖² for every key from an int16 copy of
 * the query (WASM SIMD, l2-kernel.ts) and a global bound β on its error:
 *   ‖q − x̂_i‖² = ‖q‖² − 2 s_i q·c_i + s_i²‖c_i‖², and with q = σq̃ + r the scan's q·c_i is off by
 *   at most ‖r‖·‖c_i‖, so |d̂_i − ‖q − x̂_i‖²| ≤ 2‖r‖·max_i‖x̂_i‖ + float32 rounding = β.
 * With float originals the distance to x_i differs further by the quantization error e_i ≥ ‖x_i − x̂_i‖
 * (in the sqrt domain). Let U be the k-th smallest upper bound; every member of the true top k has a
 * lower bound ≤ U, so only keys with d̂_i ≤ bound(k-th smallest d̂) can be in it. Those are re-ranked
 * exactly in float64, against x_i or x̂_i. The result is the exact top k of what is stored, not an
 * approximation: tests compare it with brute force.
 *
 * To avoid sorting a million distances in JS, the k-th smallest d̂ is first estimated from a strided
 * sample, the kernel lists the keys under a threshold derived from it (retrying higher in the rare
 * case fewer than k pass), and only those are sorted.
 */
import { quantizeVectors } from '../retrieval/flat';
import { TopK } from '../retrieval/vector-index';
import { L2Kernel, l2KernelSupported } from './l2-kernel';
import type { KnnSearchResult } from './types';

export interface KnnIndexOptions {
  /** Use the WebAssembly SIMD kernel when available (default true); false forces the JS loop. */
  simd?: boolean;
}

const clock = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Below this many keys per k the sampled threshold is not worth it: every key is a candidate. */
const SAMPLE_MIN_STRIDE = 4;

/**
 * The query as the kernel's integer codes, written into `into`: q ≈ σ·c with |c| ≤ queryMax, and
 * ‖r‖² = ‖q − σ·c‖², which bounds the scan's error (β). Shared by the exact and the IVF searches.
 */
export function quantizeQuery(query: Float32Array, queryMax: number, into: Int16Array): { sigma: number; residual2: number } {
  let qmax = 0;
  for (let j = 0; j < query.length; j++) qmax = Math.max(qmax, Math.abs(query[j]!));
  const sigma = Math.fround(qmax > 0 ? qmax / queryMax : 1);
  let residual2 = 0;
  for (let j = 0; j < query.length; j++) {
    const c = Math.max(-queryMax, Math.min(queryMax, Math.round(query[j]! / sigma)));
    into[j] = c;
    const d = query[j]! - c * sigma;
    residual2 += d * d;
  }
  return { sigma, residual2 };
}

/**
 * The largest d̂ (minus ‖q‖²) that can still be in the top k when the k-th smallest d̂ is `kth`:
 * β from the query's codes, and `maxError` the largest ‖x − x̂‖ of float keys (0 for int8 keys).
 */
export function rerankBound(kth: number, qq: number, beta: number, maxError: number): number {
  if (maxError === 0) return kth + 2 * beta;
  const upper = Math.sqrt(Math.max(0, kth + qq + beta)) + 2 * maxError;
  return upper * upper + beta - qq + 1e-9 * (qq + upper * upper);
}

export class KnnIndex {
  readonly size: number;
  readonly dim: number;
  readonly backend: 'wasm-simd' | 'js';
  /** Keys re-ranked exactly by the last search (for benchmarks and tests). */
  lastCandidates = 0;
  /** Where the last search spent its time, in ms: the scan, picking candidates, exact re-ranking. */
  lastTimings = { scan: 0, select: 0, rerank: 0 };
  private readonly kernel: L2Kernel | null;
  /** s_i²‖c_i‖² and −2 s_i: the per-key terms of d̂_i (JS path) */
  private readonly base: Float32Array;
  private readonly coef: Float32Array;
  private readonly maxNorm: number;
  private readonly maxBase: number;
  private readonly maxError: number;
  private readonly queryMax: number;
  private readonly queryInt: Int16Array;
  private jsOut = new Float64Array(0);

  private constructor(
    private readonly codes: Int8Array,
    private readonly scales: Float32Array,
    /** float originals to re-rank against, or null: the search is then exact over x̂_i */
    private readonly floats: Float32Array | null,
    errors: Float32Array | null,
    dim: number,
    options: KnnIndexOptions,
  ) {
    const n = scales.length;
    if (codes.length !== n * dim || (floats && floats.length !== n * dim) || (errors && errors.length !== n)) {
      throw new RangeError(`kNN keys do not match: ${n} scales, ${codes.length} codes of ${dim} dims`);
    }
    this.size = n;
    this.dim = dim;
    this.base = new Float32Array(n);
    this.coef = new Float32Array(n);
    let maxBase = 0;
    for (let i = 0; i < n; i++) {
      let c2 = 0;
      for (let j = 0, o = i * dim; j < dim; j++) c2 += codes[o + j]! * codes[o + j]!;
      const s = scales[i]!;
      const b = s * s * c2;
      this.base[i] = b;
      this.coef[i] = -2 * s;
      if (b > maxBase) maxBase = b;
    }
    this.maxBase = maxBase;
    this.maxNorm = Math.sqrt(maxBase) * (1 + 1e-6);
    let maxError = 0;
    if (floats && errors) for (let i = 0; i < n; i++) maxError = Math.max(maxError, errors[i]!);
    this.maxError = maxError;
    const dim16 = Math.ceil(dim / 16) * 16;
    // The kernel's int32 sums must not overflow: |q̃| * 127 * dim16 < 2^31.
    this.queryMax = Math.min(32767, Math.floor(0x7fffffff / (127 * dim16)));
    this.queryInt = new Int16Array(dim);
    this.kernel = options.simd !== false && l2KernelSupported(dim) && n > 0 ? new L2Kernel(codes, n, dim, this.base, this.coef) : null;
    this.backend = this.kernel ? 'wasm-simd' : 'js';
  }

  /** Exact search over int8 keys (x̂_i = scales[i] * codes[i]). */
  static fromCodes(codes: Int8Array, scales: Float32Array, dim: number, options: KnnIndexOptions = {}): KnnIndex {
    return new KnnIndex(codes, scales, null, null, dim, options);
  }

  /** Exact search over float keys: scans int8 copies, re-ranks against the floats. */
  static fromFloats(vectors: Float32Array, dim: number, options: KnnIndexOptions = {}): KnnIndex {
    const q = quantizeVectors(vectors, dim);
    return new KnnIndex(q.codes, q.scales, vectors, q.errors, dim, options);
  }

  /** Bytes this index holds beyond the keys it was given (WASM copy of the codes, per-key terms). */
  get memoryBytes(): number {
    return (this.kernel?.bytes ?? 0) + this.base.byteLength + this.coef.byteLength + this.jsOut.byteLength;
  }

  /** Exact squared L2 between `query` and the stored key `i`: what the search re-ranks by. */
  exactDistance(query: Float32Array, i: number): number {
    return exactKeyDistance(this.codes, this.scales, this.floats, this.dim, query, i);
  }

  /**
   * The k nearest keys to `query` by squared L2, nearest first (ties: smaller id first). With
   * `prefix`, among keys [0, prefix) only: the datastore's first entries, which are its text's first
   * tokens (a smaller datastore without rebuilding one). The scan then stops at `prefix`; the error
   * bound β, taken over all keys, still holds for the prefix, so the result is still exact.
   */
  search(query: Float32Array, k: number, prefix = this.size): KnnSearchResult {
    const { dim } = this;
    if (!(Number.isInteger(prefix) && prefix >= 0 && prefix <= this.size)) throw new RangeError(`a search limit must be a whole number in 0..${this.size}, got ${prefix}`);
    const n = prefix;
    if (query.length !== dim) throw new RangeError(`query has ${query.length} dims, the kNN keys ${dim}`);
    k = Math.max(0, Math.min(Math.floor(k), n));
    if (k === 0) return { ids: new Int32Array(0), distances: new Float32Array(0) };
    const t0 = clock();
    let qq = 0;
    for (let j = 0; j < dim; j++) qq += query[j]! * query[j]!;
    const qnorm = Math.sqrt(qq);

    // d̂_i − ‖q‖² = base_i + coef_i·(q·c_i) for every key (`approx`), and the bound β on its error.
    let approx: (i: number) => number;
    let beta: number;
    let below: (thr: number) => ArrayLike<number>;
    const { base, coef } = this;
    // float32 per-key terms and float32 x̂ in the re-ranking: a few ulps of the magnitudes involved.
    const rounding = 2 ** -20 * (this.maxBase + 2 * qnorm * this.maxNorm);
    if (this.kernel) {
      const { sigma, residual2: r2 } = quantizeQuery(query, this.queryMax, this.queryInt);
      const kernel = this.kernel;
      let sums: Int32Array;
      if (n === this.size) sums = kernel.scan(this.queryInt, sigma);
      else {
        kernel.setQuery(this.queryInt, sigma);
        kernel.scanRange(0, n);
        sums = kernel.sums();
      }
      approx = (i) => base[i]! + sigma * coef[i]! * sums[i]!;
      beta = 2 * Math.sqrt(r2) * this.maxNorm * (1 + 1e-6) + rounding;
      // The kernel filters in float32: widen the threshold by its rounding so no key at or
      // under it in float64 is dropped.
      below = (thr) => kernel.below(Math.fround(thr + rounding), n);
    } else {
      if (this.jsOut.length < n) this.jsOut = new Float64Array(n);
      const out = this.jsOut;
      const { codes } = this;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0, o = i * dim; j < dim; j++) s += query[j]! * codes[o + j]!;
        out[i] = base[i]! + coef[i]! * s;
      }
      approx = (i) => out[i]!;
      beta = rounding;
      below = (thr) => {
        const ids: number[] = [];
        for (let i = 0; i < n; i++) if (out[i]! <= thr) ids.push(i);
        return ids;
      };
    }
    const t1 = clock();
    const stride = sampleStride(n, k);
    const { best, candidates, selected } = selectExactTopK({
      k,
      positions: n,
      eligible: null,
      samples: stride ? Math.floor(n / stride) : 0,
      sampleAt: (t) => (stride >> 1) + t * stride,
      stride,
      approx,
      below,
      bound: (kth) => rerankBound(kth, qq, beta, this.maxError),
      exact: (i) => this.exactDistance(query, i),
      id: (i) => i,
    });
    this.lastCandidates = candidates;
    this.lastTimings = { scan: t1 - t0, select: selected - t1, rerank: clock() - selected };
    return { ids: best.ids, distances: Float32Array.from(best.scores, (s) => -s) };
  }
}

/**
 * Keys per sample when `eligible` keys are sampled to set the first candidate threshold, or 0 when
 * they are too few to sample (every key is then a candidate).
 */
export function sampleStride(eligible: number, k: number): number {
  const stride = Math.floor(eligible / (16 * Math.max(k, 256)));
  return stride >= SAMPLE_MIN_STRIDE ? stride : 0;
}

/** One query's scan of an index, as the exact top-k selection reads it. Positions are 0..positions−1. */
export interface ScannedQuery {
  k: number;
  positions: number;
  /** which positions count (a prefix search over list-ordered keys), or null: all */
  eligible: ((p: number) => boolean) | null;
  /** eligible positions sampled about `stride` eligible keys apart (0 samples: no sampling) */
  samples: number;
  sampleAt: (t: number) => number;
  stride: number;
  /** d̂ − ‖q‖² from the int8 scan */
  approx: (p: number) => number;
  /** the eligible positions whose d̂ − ‖q‖² may be ≤ threshold (the kernel's filter) */
  below: (threshold: number) => ArrayLike<number>;
  /** rerankBound for this query */
  bound: (kth: number) => number;
  /** exact squared distance, and the entry id, at a position */
  exact: (p: number) => number;
  id: (p: number) => number;
}

/**
 * The exact top k from an approximate scan (KnnIndex's entry-order keys, IvfIndex's list-ordered
 * ones): a threshold from the sample, raised until k keys pass, tightened by the k-th best bound;
 * then every key the bound cannot rule out re-ranked in float64. Ties: smaller id first.
 */
export function selectExactTopK(q: ScannedQuery): { best: { ids: Int32Array; scores: Float64Array }; candidates: number; selected: number } {
  const { k, positions: n, eligible, approx, below, bound } = q;
  // `pool` null = every eligible key is a candidate (small indexes, or the sample never found k).
  let pool: ArrayLike<number> | null = null;
  let used = Infinity;
  for (let rank = Math.ceil((1.25 * k) / Math.max(1, q.stride)) + 8; q.samples > 0 && rank <= q.samples; rank *= 4) {
    const sample = new TopK(rank);
    for (let t = 0; t < q.samples; t++) {
      const p = q.sampleAt(t);
      sample.push(-approx(p), p);
    }
    used = bound(-sample.threshold);
    const passed = below(used);
    if (passed.length >= k) {
      pool = passed;
      break;
    }
    used = Infinity;
  }
  const kth = new TopK(k);
  if (pool) for (let t = 0; t < pool.length; t++) kth.push(-approx(pool[t]!), pool[t]!);
  else for (let p = 0; p < n; p++) if (!eligible || eligible(p)) kth.push(-approx(p), p);
  const limit = bound(-kth.threshold);
  // The sample's threshold can undercut the bound: then list again with the exact one.
  if (pool && limit > used) pool = below(limit);

  const selected = clock();
  // Exact re-ranking in float64.
  const top = new TopK(k);
  let candidates = 0;
  const poolSize = pool ? pool.length : n;
  for (let t = 0; t < poolSize; t++) {
    const p = pool ? pool[t]! : t;
    if (!pool && eligible && !eligible(p)) continue;
    if (!(approx(p) <= limit)) continue;
    candidates++;
    top.push(-q.exact(p), q.id(p));
  }
  return { best: top.sorted(), candidates, selected };
}

/** Brute-force squared-L2 top k over float keys [n, dim]: the reference the index is tested against. */
export function bruteForceKnn(vectors: Float32Array, dim: number, query: Float32Array, k: number): KnnSearchResult {
  const n = vectors.length / dim;
  const top = new TopK(Math.min(k, n));
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let j = 0, o = i * dim; j < dim; j++) {
      const e = query[j]! - vectors[o + j]!;
      d += e * e;
    }
    top.push(-d, i);
  }
  const best = top.sorted();
  return { ids: best.ids, distances: Float32Array.from(best.scores, (s) => -s) };
}

/** Float keys of int8 codes with one scale per key. */
/**
 * Exact squared L2 between `query` and stored key `i` (float keys, or int8 codes times their row
 * scale): the distance both the exact index and the IVF index re-rank by.
 */
export function exactKeyDistance(codes: Int8Array, scales: Float32Array, floats: Float32Array | null, dim: number, query: Float32Array, i: number): number {
  const o = i * dim;
  let d = 0;
  if (floats) {
    for (let j = 0; j < dim; j++) {
      const e = query[j]! - floats[o + j]!;
      d += e * e;
    }
  } else {
    const s = scales[i]!;
    for (let j = 0; j < dim; j++) {
      // x̂ is float32(s·c), exactly what dequantize() and a float scan would see.
      const e = query[j]! - Math.fround(s * codes[o + j]!);
      d += e * e;
    }
  }
  return d;
}

export function dequantize(codes: Int8Array, scales: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(codes.length);
  for (let i = 0; i < scales.length; i++) {
    const s = scales[i]!;
    for (let j = 0, o = i * dim; j < dim; j++) out[o + j] = s * codes[o + j]!;
  }
  return out;
}
