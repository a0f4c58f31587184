/**
 * An approximate kNN-LM key index (IVF, inverted file) with exact re-ranking.
 *
 * The keys are split into `lists` clusters by k-means (Lloyd's algorithm on a seeded sample of the
 * keys, then every key assigned to its nearest centroid); each list holds the ids of its keys. A
 * search scores the query against the centroids, scans only the `nprobe` nearest lists with the
 * exact search's int8 kernel (l2-kernel.ts, the keys stored list by list so each list is one
 * contiguous scan), and re-ranks candidates with the exact search's distance (search.ts): either
 * every scanned key that the int8 error bound cannot rule out of the top k (the default: the result
 * is then the exact top k of the scanned lists, so nprobe = lists gives exactly KnnIndex's result),
 * or the `rerank` best by the int8 distance.
 *
 * The approximation is only which lists are scanned: a true neighbour in an unprobed list is missed.
 * Training is deterministic (a seeded sample, the first `lists` sampled keys as initial centroids,
 * a fixed number of iterations), so the same keys and settings give the same lists.
 */
import { quantizeVectors } from '../retrieval/flat';
import { TopK } from '../retrieval/vector-index';
import type { KnnlmIvf } from '../../protocol/shard';
import { checkIvf } from '../datastore/ivf-format';
import { L2Kernel, l2KernelSupported } from './l2-kernel';
import { exactKeyDistance } from './search';
import type { KnnSearchResult } from './types';

export { IVF_FORMAT_VERSION, checkIvf } from '../datastore/ivf-format';

export const IVF_DEFAULTS = { lists: 2048, sample: 65536, iterations: 10, seed: 1, nprobe: 32 } as const;

export interface IvfTrainOptions {
  /** clusters (default 2048, at most the key count) */
  lists?: number;
  /** keys k-means is trained on (default 65,536) */
  sample?: number;
  /** Lloyd iterations (default 10) */
  iterations?: number;
  seed?: number;
  /** use the WebAssembly SIMD kernel when available (default true) */
  simd?: boolean;
  onProgress?: (phase: 'train' | 'assign', done: number, total: number) => void;
}

export interface IvfTrainStats {
  lists: number;
  sample: number;
  iterations: number;
  seed: number;
  /** keys in the smallest and largest list */
  minList: number;
  maxList: number;
  /** mean squared distance of the sample to its centroid after each iteration */
  inertia: number[];
  seconds: { train: number; assign: number };
}

export interface IvfSearchOptions {
  /** lists scanned (default 32, clamped to 1..lists) */
  nprobe?: number;
  /**
   * Candidates re-ranked exactly: a count (the best by int8 distance, at least k), or undefined for
   * every scanned key the int8 error bound cannot rule out (exact over the scanned lists).
   */
  rerank?: number;
  /**
   * Only entries with id < limit (the datastore's first entries: its text's first tokens): the
   * probed lists' other ids are dropped after the scan. The lists were trained on every key, so a
   * small prefix leaves few keys in the probed lists (KnnDatastore scans small prefixes exactly).
   */
  limit?: number;
}

const clock = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Deterministic uniform [0, 1) (LCG), for the sample and empty-cluster reseeding. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Nearest centroid of int8 keys: the centroids quantized to int8 in a kernel, each key's codes as
 * the int16 query, argmin of ‖ĉ‖² − 2 s_x (c_x · ĉ). Approximate (int8 centroids); the search scores
 * queries against the float centroids.
 */
class Assigner {
  private readonly kernel: L2Kernel | null;
  private readonly base: Float32Array;
  private readonly coef: Float32Array;
  private readonly query: Int16Array;
  private readonly cent: Float32Array;

  constructor(
    centroids: Float32Array,
    private readonly lists: number,
    private readonly dim: number,
    simd: boolean,
  ) {
    const q = quantizeVectors(centroids, dim);
    this.base = new Float32Array(lists);
    this.coef = new Float32Array(lists);
    for (let c = 0; c < lists; c++) {
      let c2 = 0;
      for (let j = 0; j < dim; j++) c2 += q.codes[c * dim + j]! ** 2;
      this.base[c] = q.scales[c]! ** 2 * c2;
      this.coef[c] = -2 * q.scales[c]!;
    }
    this.cent = centroids;
    this.query = new Int16Array(dim);
    this.kernel = simd && l2KernelSupported(dim) ? new L2Kernel(q.codes, lists, dim, this.base, this.coef) : null;
  }

  /** Nearest centroid of the key scale·codes[offset .. offset + dim). */
  nearest(codes: Int8Array, offset: number, scale: number): number {
    const { lists, dim, base, coef } = this;
    let best = 0;
    let bestD = Infinity;
    if (this.kernel) {
      for (let j = 0; j < dim; j++) this.query[j] = codes[offset + j]!;
      this.kernel.setQuery(this.query, scale);
      this.kernel.scanRange(0, lists);
      const sums = this.kernel.sums();
      for (let c = 0; c < lists; c++) {
        const d = base[c]! + scale * coef[c]! * sums[c]!;
        if (d < bestD) {
          bestD = d;
          best = c;
        }
      }
      return best;
    }
    const cent = this.cent;
    for (let c = 0; c < lists; c++) {
      let d = 0;
      for (let j = 0, o = c * dim; j < dim; j++) {
        const e = scale * codes[offset + j]! - cent[o + j]!;
        d += e * e;
      }
      if (d < bestD) {
        bestD = d;
        best = c;
      }
    }
    return best;
  }
}

/**
 * Trains IVF lists over int8 keys (key i = scales[i] * codes[i*dim ..]): k-means on a seeded sample,
 * then every key assigned to its nearest centroid. Ids within a list are ascending.
 */
export function trainIvf(codes: Int8Array, scales: Float32Array, dim: number, options: IvfTrainOptions = {}): { ivf: KnnlmIvf; stats: IvfTrainStats } {
  const n = scales.length;
  if (codes.length !== n * dim) throw new RangeError(`kNN keys do not match: ${n} scales, ${codes.length} codes of ${dim} dims`);
  if (n === 0) throw new RangeError('no keys to train IVF lists on');
  const lists = Math.max(1, Math.min(options.lists ?? IVF_DEFAULTS.lists, n));
  const sampleSize = Math.max(lists, Math.min(options.sample ?? IVF_DEFAULTS.sample, n));
  const iterations = Math.max(0, options.iterations ?? IVF_DEFAULTS.iterations);
  const seed = options.seed ?? IVF_DEFAULTS.seed;
  const simd = options.simd !== false;
  const random = rng(seed);
  const t0 = clock();

  // Seeded sample without replacement (partial Fisher–Yates over the ids).
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = 0; i < sampleSize; i++) {
    const j = i + Math.floor(random() * (n - i));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  const sample = perm.slice(0, sampleSize);

  const centroids = new Float32Array(lists * dim);
  for (let c = 0; c < lists; c++) {
    const id = sample[c]!;
    for (let j = 0; j < dim; j++) centroids[c * dim + j] = scales[id]! * codes[id * dim + j]!;
  }
  const assign = new Int32Array(sampleSize);
  const sums = new Float64Array(lists * dim);
  const counts = new Uint32Array(lists);
  const inertia: number[] = [];
  for (let it = 0; it < iterations; it++) {
    const assigner = new Assigner(centroids, lists, dim, simd);
    sums.fill(0);
    counts.fill(0);
    let total = 0;
    for (let t = 0; t < sampleSize; t++) {
      const id = sample[t]!;
      const s = scales[id]!;
      const c = assigner.nearest(codes, id * dim, s);
      assign[t] = c;
      counts[c]!++;
      let d = 0;
      for (let j = 0; j < dim; j++) {
        const x = s * codes[id * dim + j]!;
        sums[c * dim + j]! += x;
        const e = x - centroids[c * dim + j]!;
        d += e * e;
      }
      total += d;
    }
    inertia.push(total / sampleSize);
    for (let c = 0; c < lists; c++) {
      if (counts[c]! > 0) {
        for (let j = 0; j < dim; j++) centroids[c * dim + j] = sums[c * dim + j]! / counts[c]!;
      } else {
        // An empty cluster restarts at a random sampled key.
        const id = sample[Math.floor(random() * sampleSize)]!;
        for (let j = 0; j < dim; j++) centroids[c * dim + j] = scales[id]! * codes[id * dim + j]!;
      }
    }
    options.onProgress?.('train', it + 1, iterations);
  }
  const t1 = clock();

  // Every key to its nearest centroid, then a counting sort into lists (ids ascending in each).
  const assigner = new Assigner(centroids, lists, dim, simd);
  const of = new Uint32Array(n);
  const sizes = new Uint32Array(lists);
  const step = Math.max(1, Math.floor(n / 100));
  for (let i = 0; i < n; i++) {
    const c = assigner.nearest(codes, i * dim, scales[i]!);
    of[i] = c;
    sizes[c]!++;
    if (options.onProgress && (i + 1) % step === 0) options.onProgress('assign', i + 1, n);
  }
  const offsets = new Uint32Array(lists + 1);
  for (let c = 0; c < lists; c++) offsets[c + 1] = offsets[c]! + sizes[c]!;
  const fill = offsets.slice(0, lists);
  const ids = new Uint32Array(n);
  for (let i = 0; i < n; i++) ids[fill[of[i]!]!++] = i;
  let minList = Infinity;
  let maxList = 0;
  for (let c = 0; c < lists; c++) {
    minList = Math.min(minList, sizes[c]!);
    maxList = Math.max(maxList, sizes[c]!);
  }
  return {
    ivf: { centroids, offsets, ids },
    stats: { lists, sample: sampleSize, iterations, seed, minList, maxList, inertia, seconds: { train: (t1 - t0) / 1000, assign: (clock() - t1) / 1000 } },
  };
}

export interface IvfIndexOptions {
  /** Use the WebAssembly SIMD kernel when available (default true); false forces the JS loop. */
  simd?: boolean;
}

/** IVF search over int8 keys (or float keys scanned as int8), re-ranked exactly like KnnIndex. */
export class IvfIndex {
  readonly size: number;
  readonly dim: number;
  readonly lists: number;
  readonly backend: 'wasm-simd' | 'js';
  /** Keys re-ranked exactly and keys scanned by the last search. */
  lastCandidates = 0;
  lastScanned = 0;
  /** Where the last search spent its time, in ms: centroids, the list scans and selection, re-ranking. */
  lastTimings = { probe: 0, scan: 0, rerank: 0 };
  private readonly kernel: L2Kernel | null;
  /** per-key distance terms in list order (see search.ts) */
  private readonly base: Float32Array;
  private readonly coef: Float32Array;
  private readonly maxNorm: number;
  private readonly maxBase: number;
  private readonly maxError: number;
  private readonly queryMax: number;
  private readonly queryInt: Int16Array;
  private readonly centroids: Float32Array;
  private readonly offsets: Uint32Array;
  /** entry id at each list-order position */
  private readonly order: Uint32Array;
  private positions = new Int32Array(0);
  private approxs = new Float64Array(0);

  private constructor(
    private readonly codes: Int8Array,
    private readonly scales: Float32Array,
    private readonly floats: Float32Array | null,
    errors: Float32Array | null,
    dim: number,
    ivf: KnnlmIvf,
    options: IvfIndexOptions,
  ) {
    const n = scales.length;
    if (codes.length !== n * dim || (floats && floats.length !== n * dim)) throw new RangeError(`kNN keys do not match: ${n} scales, ${codes.length} codes of ${dim} dims`);
    const problem = checkIvf(ivf, n, dim);
    if (problem) throw new RangeError(problem);
    this.size = n;
    this.dim = dim;
    this.lists = ivf.offsets.length - 1;
    this.centroids = ivf.centroids;
    this.offsets = ivf.offsets;
    this.order = ivf.ids;
    this.base = new Float32Array(n);
    this.coef = new Float32Array(n);
    let maxBase = 0;
    for (let p = 0; p < n; p++) {
      const i = this.order[p]!;
      let c2 = 0;
      for (let j = 0, o = i * dim; j < dim; j++) c2 += codes[o + j]! * codes[o + j]!;
      const s = scales[i]!;
      const b = s * s * c2;
      this.base[p] = b;
      this.coef[p] = -2 * s;
      if (b > maxBase) maxBase = b;
    }
    this.maxBase = maxBase;
    this.maxNorm = Math.sqrt(maxBase) * (1 + 1e-6);
    let maxError = 0;
    if (floats && errors) for (let i = 0; i < n; i++) maxError = Math.max(maxError, errors[i]!);
    this.maxError = maxError;
    const dim16 = Math.ceil(dim / 16) * 16;
    this.queryMax = Math.min(32767, Math.floor(0x7fffffff / (127 * dim16)));
    this.queryInt = new Int16Array(dim);
    this.kernel = options.simd !== false && l2KernelSupported(dim) && n > 0 ? new L2Kernel(codes, n, dim, this.base, this.coef, this.order) : null;
    this.backend = this.kernel ? 'wasm-simd' : 'js';
  }

  /** IVF search over int8 keys (x̂_i = scales[i] * codes[i]). */
  static fromCodes(codes: Int8Array, scales: Float32Array, dim: number, ivf: KnnlmIvf, options: IvfIndexOptions = {}): IvfIndex {
    return new IvfIndex(codes, scales, null, null, dim, ivf, options);
  }

  /** IVF search over float keys: scans int8 copies, re-ranks against the floats. */
  static fromFloats(vectors: Float32Array, dim: number, ivf: KnnlmIvf, options: IvfIndexOptions = {}): IvfIndex {
    const q = quantizeVectors(vectors, dim);
    return new IvfIndex(q.codes, q.scales, vectors, q.errors, dim, ivf, options);
  }

  /** Bytes this index holds beyond the keys and lists it was given. */
  get memoryBytes(): number {
    return (this.kernel?.bytes ?? 0) + this.base.byteLength + this.coef.byteLength + this.positions.byteLength + this.approxs.byteLength;
  }

  /** Exact squared L2 between `query` and the stored key `i`: the same as KnnIndex.exactDistance. */
  exactDistance(query: Float32Array, i: number): number {
    return exactKeyDistance(this.codes, this.scales, this.floats, this.dim, query, i);
  }

  /** The k nearest keys among the `nprobe` lists nearest to `query`, nearest first (ties: smaller id first). */
  search(query: Float32Array, k: number, options: IvfSearchOptions = {}): KnnSearchResult {
    const { size: n, dim, lists, centroids, offsets, order, base, coef } = this;
    if (query.length !== dim) throw new RangeError(`query has ${query.length} dims, the kNN keys ${dim}`);
    k = Math.max(0, Math.min(Math.floor(k), n));
    if (k === 0) return { ids: new Int32Array(0), distances: new Float32Array(0) };
    const nprobe = Math.max(1, Math.min(lists, Math.floor(options.nprobe ?? IVF_DEFAULTS.nprobe)));
    const prefix = options.limit ?? n;
    if (!(Number.isInteger(prefix) && prefix >= 0 && prefix <= n)) throw new RangeError(`a search limit must be a whole number in 0..${n}, got ${prefix}`);
    const t0 = clock();

    // The nprobe nearest centroids (float distances).
    const probe = new TopK(nprobe);
    for (let c = 0; c < lists; c++) {
      let d = 0;
      for (let j = 0, o = c * dim; j < dim; j++) {
        const e = query[j]! - centroids[o + j]!;
        d += e * e;
      }
      probe.push(-d, c);
    }
    const probed = probe.sorted().ids;
    let scanned = 0;
    for (const c of probed) scanned += offsets[c + 1]! - offsets[c]!;
    if (this.positions.length < scanned) {
      this.positions = new Int32Array(scanned);
      this.approxs = new Float64Array(scanned);
    }
    const positions = this.positions;
    const approxs = this.approxs;
    const t1 = clock();

    let qq = 0;
    let qmax = 0;
    for (let j = 0; j < dim; j++) {
      qq += query[j]! * query[j]!;
      qmax = Math.max(qmax, Math.abs(query[j]!));
    }
    const qnorm = Math.sqrt(qq);
    const rounding = 2 ** -20 * (this.maxBase + 2 * qnorm * this.maxNorm);
    let beta: number;
    let m = 0;
    if (this.kernel) {
      const sigma = Math.fround(qmax > 0 ? qmax / this.queryMax : 1);
      let r2 = 0;
      for (let j = 0; j < dim; j++) {
        const c = Math.max(-this.queryMax, Math.min(this.queryMax, Math.round(query[j]! / sigma)));
        this.queryInt[j] = c;
        const d = query[j]! - c * sigma;
        r2 += d * d;
      }
      beta = 2 * Math.sqrt(r2) * this.maxNorm * (1 + 1e-6) + rounding;
      const kernel = this.kernel;
      kernel.setQuery(this.queryInt, sigma);
      for (const c of probed) kernel.scanRange(offsets[c]!, offsets[c + 1]! - offsets[c]!);
      const sums = kernel.sums();
      for (const c of probed) {
        for (let p = offsets[c]!, end = offsets[c + 1]!; p < end; p++) {
          if (order[p]! >= prefix) continue;
          positions[m] = p;
          approxs[m++] = base[p]! + sigma * coef[p]! * sums[p]!;
        }
      }
    } else {
      beta = rounding;
      const { codes } = this;
      for (const c of probed) {
        for (let p = offsets[c]!, end = offsets[c + 1]!; p < end; p++) {
          if (order[p]! >= prefix) continue;
          let s = 0;
          for (let j = 0, o = order[p]! * dim; j < dim; j++) s += query[j]! * codes[o + j]!;
          positions[m] = p;
          approxs[m++] = base[p]! + coef[p]! * s;
        }
      }
    }

    // Candidates: the `rerank` best by int8 distance, or every scanned key the bound cannot rule out.
    let limit = Infinity;
    let pick: Int32Array | null = null;
    if (options.rerank !== undefined) {
      const r = Math.max(k, Math.floor(options.rerank));
      if (r < m) {
        const best = new TopK(r);
        for (let t = 0; t < m; t++) best.push(-approxs[t]!, t);
        pick = best.sorted().ids;
      }
    } else if (m > k) {
      const kth = new TopK(k);
      for (let t = 0; t < m; t++) kth.push(-approxs[t]!, t);
      const worst = -kth.threshold;
      const maxError = this.maxError;
      if (maxError === 0) limit = worst + 2 * beta;
      else {
        const upper = Math.sqrt(Math.max(0, worst + qq + beta)) + 2 * maxError;
        limit = upper * upper + beta - qq + 1e-9 * (qq + upper * upper);
      }
    }
    const t2 = clock();

    const top = new TopK(k);
    let candidates = 0;
    if (pick) {
      for (const t of pick) {
        const id = order[positions[t]!]!;
        candidates++;
        top.push(-this.exactDistance(query, id), id);
      }
    } else {
      for (let t = 0; t < m; t++) {
        if (!(approxs[t]! <= limit)) continue;
        const id = order[positions[t]!]!;
        candidates++;
        top.push(-this.exactDistance(query, id), id);
      }
    }
    this.lastCandidates = candidates;
    this.lastScanned = m;
    const best = top.sorted();
    this.lastTimings = { probe: t1 - t0, scan: t2 - t1, rerank: clock() - t2 };
    return { ids: best.ids, distances: Float32Array.from(best.scores, (s) => -s) };
  }
}
