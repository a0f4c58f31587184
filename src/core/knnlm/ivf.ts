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
import { KnnIndex, exactKeyDistance, quantizeQuery, rerankBound, sampleStride, selectExactTopK } from './search';

const EMPTY_CODES = new Int8Array(0);
const EMPTY_SCALES = new Float32Array(0);
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

/** The exact search's surface (KnnIndex, or the IVF index scanning every list): what KnnDatastore.index gives. */
export interface ExactKnnIndex {
  readonly size: number;
  readonly dim: number;
  readonly backend: 'wasm-simd' | 'js';
  lastCandidates: number;
  lastTimings: { scan: number; select: number; rerank: number };
  readonly memoryBytes: number;
  search(query: Float32Array, k: number, prefix?: number): KnnSearchResult;
  exactDistance(query: Float32Array, i: number): number;
}

/** Where the keys live: the kernel's memory in list order (with SIMD), or JS arrays in entry order. */
interface KeyStore {
  kernel: L2Kernel | null;
  /** entry-order codes and scales: the JS path only (the kernel holds its own copy) */
  codes: Int8Array | null;
  scales: Float32Array | null;
  /** per-key terms in list order: views of the kernel's memory, or JS arrays */
  base: Float32Array;
  coef: Float32Array;
  maxBase: number;
}

/**
 * Writes int8 keys into a kernel (or JS arrays) list by list as they arrive, in pieces of whole
 * keys in entry order: a datastore read from a file section by section never holds the codes twice.
 */
export class IvfKeyWriter {
  private readonly kernel: L2Kernel | null;
  private readonly codes: Int8Array | null;
  private readonly base: Float32Array;
  private readonly coef: Float32Array;
  private readonly kernelCodes: Int8Array | null;
  /** list-order position of each entry (dropped when done) */
  private positions: Uint32Array | null;
  private maxBase = 0;
  private written = 0;

  constructor(
    private readonly scales: Float32Array,
    private readonly dim: number,
    private readonly ivf: KnnlmIvf,
    private readonly options: IvfIndexOptions = {},
  ) {
    const n = scales.length;
    const problem = checkIvf(ivf, n, dim);
    if (problem) throw new RangeError(problem);
    this.kernel = options.simd !== false && l2KernelSupported(dim) && n > 0 ? new L2Kernel(null, n, dim) : null;
    if (this.kernel) {
      this.codes = null;
      this.base = this.kernel.base();
      this.coef = this.kernel.coef();
      this.kernelCodes = this.kernel.codes();
      this.positions = new Uint32Array(n);
      for (let p = 0; p < n; p++) this.positions[ivf.ids[p]!] = p;
    } else {
      this.codes = new Int8Array(n * dim);
      this.base = new Float32Array(n);
      this.coef = new Float32Array(n);
      this.kernelCodes = null;
      this.positions = null;
    }
  }

  /** Keys first .. first + codes.length / dim (entry ids), in order: each piece follows the last. */
  write(codes: Int8Array): void {
    const { dim, scales } = this;
    const first = this.written;
    const rows = codes.length / dim;
    if (!Number.isInteger(rows) || first + rows > scales.length) throw new RangeError(`kNN keys do not match: ${codes.length} codes after ${first} of ${scales.length} keys of ${dim} dims`);
    if (this.kernel) {
      const { kernel, positions, base, coef, kernelCodes } = this;
      for (let r = 0; r < rows; r++) {
        const b = kernel.writeKey(positions![first + r]!, codes, r * dim, scales[first + r]!, kernelCodes!, base, coef);
        if (b > this.maxBase) this.maxBase = b;
      }
    } else this.codes!.set(codes, first * dim);
    this.written += rows;
  }

  /** The index, once every key is written. */
  finish(): IvfIndex {
    const n = this.scales.length;
    if (this.written !== n) throw new RangeError(`only ${this.written} of ${n} kNN keys were written`);
    this.positions = null;
    if (this.kernel) return IvfIndex.fromStore({ kernel: this.kernel, codes: null, scales: null, base: this.base, coef: this.coef, maxBase: this.maxBase }, null, null, this.dim, this.ivf);
    return IvfIndex.fromCodes(this.codes!, this.scales, this.dim, this.ivf, { ...this.options, simd: false });
  }
}

/** The exact search of an IVF index over its list-ordered keys, with KnnIndex's surface (its own search statistics). */
/**
 * Exact prefix searches over at most 1/PREFIX_COPY_FRACTION of the entries copy that prefix's keys
 * into their own index (at most 21 MB for the built-in 2.63M keys); larger prefixes scan every list.
 */
const PREFIX_COPY_FRACTION = 8;
/** Prefix indexes kept at once: a data-size curve's small points. */
const PREFIX_INDEXES_KEPT = 3;

class ListOrderExact implements ExactKnnIndex {
  readonly size: number;
  readonly dim: number;
  readonly backend: 'wasm-simd' | 'js';
  lastCandidates = 0;
  lastTimings = { scan: 0, select: 0, rerank: 0 };

  constructor(
    private readonly index: IvfIndex,
    private readonly run: (query: Float32Array, k: number, prefix: number | undefined, stats: ExactKnnIndex) => KnnSearchResult,
  ) {
    this.size = index.size;
    this.dim = index.dim;
    this.backend = index.backend;
  }

  get memoryBytes(): number {
    return this.index.memoryBytes;
  }

  search(query: Float32Array, k: number, prefix?: number): KnnSearchResult {
    return this.run(query, k, prefix, this);
  }

  exactDistance(query: Float32Array, i: number): number {
    return this.index.exactDistance(query, i);
  }
}

/**
 * IVF search over int8 keys (or float keys scanned as int8), re-ranked exactly like KnnIndex. With
 * the SIMD kernel the keys live only in the kernel's memory, in list order; the exact search then
 * scans every list (`exact`), so no second, entry-ordered copy of the keys is kept.
 */
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
  /** the kernel's codes (list order, rows of dim16), or null on the JS path */
  private readonly kernelCodes: Int8Array | null;
  private readonly dim16: number;
  /** entry-order keys: the JS path only */
  private readonly codes: Int8Array | null;
  private readonly scales: Float32Array | null;
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
  /** list-order position of each entry: built on first exactDistance (RetoMaton, random neighbours) */
  private inverse: Uint32Array | null = null;
  private exactView: ExactKnnIndex | null = null;
  /** Exact indexes over the first entries of the datastore (the data-size curve's small prefixes). */
  private readonly prefixIndexes = new Map<number, KnnIndex>();
  private positions = new Int32Array(0);
  private approxs = new Float64Array(0);

  private constructor(
    store: KeyStore,
    private readonly floats: Float32Array | null,
    errors: Float32Array | null,
    dim: number,
    ivf: KnnlmIvf,
  ) {
    const n = ivf.ids.length;
    const problem = checkIvf(ivf, n, dim);
    if (problem) throw new RangeError(problem);
    if (floats && floats.length !== n * dim) throw new RangeError(`kNN keys do not match: ${n} keys, ${floats.length} floats of ${dim} dims`);
    this.size = n;
    this.dim = dim;
    this.dim16 = Math.ceil(dim / 16) * 16;
    this.lists = ivf.offsets.length - 1;
    this.centroids = ivf.centroids;
    this.offsets = ivf.offsets;
    this.order = ivf.ids;
    this.kernel = store.kernel;
    this.kernelCodes = store.kernel ? store.kernel.codes() : null;
    this.codes = store.codes;
    this.scales = store.scales;
    this.base = store.base;
    this.coef = store.coef;
    this.maxBase = store.maxBase;
    this.maxNorm = Math.sqrt(store.maxBase) * (1 + 1e-6);
    let maxError = 0;
    if (floats && errors) for (let i = 0; i < n; i++) maxError = Math.max(maxError, errors[i]!);
    this.maxError = maxError;
    this.queryMax = Math.min(32767, Math.floor(0x7fffffff / (127 * this.dim16)));
    this.queryInt = new Int16Array(dim);
    this.backend = this.kernel ? 'wasm-simd' : 'js';
  }

  /** @internal The index over keys already in place (IvfKeyWriter). */
  static fromStore(store: KeyStore, floats: Float32Array | null, errors: Float32Array | null, dim: number, ivf: KnnlmIvf): IvfIndex {
    return new IvfIndex(store, floats, errors, dim, ivf);
  }

  /** IVF search over int8 keys (x̂_i = scales[i] * codes[i]). With the kernel, `codes` and `scales` are not kept. */
  static fromCodes(codes: Int8Array, scales: Float32Array, dim: number, ivf: KnnlmIvf, options: IvfIndexOptions = {}): IvfIndex {
    return IvfIndex.build(codes, scales, null, null, dim, ivf, options);
  }

  /** IVF search over float keys: scans int8 copies, re-ranks against the floats. */
  static fromFloats(vectors: Float32Array, dim: number, ivf: KnnlmIvf, options: IvfIndexOptions = {}): IvfIndex {
    const q = quantizeVectors(vectors, dim);
    return IvfIndex.build(q.codes, q.scales, vectors, q.errors, dim, ivf, options);
  }

  private static build(codes: Int8Array, scales: Float32Array, floats: Float32Array | null, errors: Float32Array | null, dim: number, ivf: KnnlmIvf, options: IvfIndexOptions): IvfIndex {
    const n = scales.length;
    if (codes.length !== n * dim) throw new RangeError(`kNN keys do not match: ${n} scales, ${codes.length} codes of ${dim} dims`);
    const problem = checkIvf(ivf, n, dim);
    if (problem) throw new RangeError(problem);
    if (options.simd !== false && l2KernelSupported(dim) && n > 0) {
      const writer = new IvfKeyWriter(scales, dim, ivf, options);
      writer.write(codes);
      const built = writer.finish();
      return floats ? new IvfIndex({ kernel: built.kernel, codes: null, scales: null, base: built.base, coef: built.coef, maxBase: built.maxBase }, floats, errors, dim, ivf) : built;
    }
    const base = new Float32Array(n);
    const coef = new Float32Array(n);
    let maxBase = 0;
    for (let p = 0; p < n; p++) {
      const i = ivf.ids[p]!;
      let c2 = 0;
      for (let j = 0, o = i * dim; j < dim; j++) c2 += codes[o + j]! * codes[o + j]!;
      const s = scales[i]!;
      const b = s * s * c2;
      base[p] = b;
      coef[p] = -2 * s;
      if (b > maxBase) maxBase = b;
    }
    return new IvfIndex({ kernel: null, codes, scales, base, coef, maxBase }, floats, errors, dim, ivf);
  }

  /** Bytes this index holds beyond the lists it was given (with the kernel: the keys too). */
  get memoryBytes(): number {
    const js = this.kernel ? 0 : this.base.byteLength + this.coef.byteLength;
    return (this.kernel?.bytes ?? 0) + js + (this.inverse?.byteLength ?? 0) + this.positions.byteLength + this.approxs.byteLength;
  }

  /** Exact squared L2 between `query` and the key at list position p. */
  private exactAt(query: Float32Array, p: number): number {
    const { dim, floats } = this;
    if (floats || !this.kernel) return exactKeyDistance(this.codes ?? EMPTY_CODES, this.scales ?? EMPTY_SCALES, floats, dim, query, this.order[p]!);
    // The scale is −coef/2 exactly (coef is float32(−2s) of a float32 s); x̂ as in exactKeyDistance.
    const s = -0.5 * this.coef[p]!;
    const codes = this.kernelCodes!;
    let d = 0;
    for (let j = 0, o = p * this.dim16; j < dim; j++) {
      const e = query[j]! - Math.fround(s * codes[o + j]!);
      d += e * e;
    }
    return d;
  }

  /** Exact squared L2 between `query` and the stored key `i`: the same as KnnIndex.exactDistance. */
  exactDistance(query: Float32Array, i: number): number {
    if (!this.kernel || this.floats) return exactKeyDistance(this.codes ?? EMPTY_CODES, this.scales ?? EMPTY_SCALES, this.floats, this.dim, query, i);
    return this.exactAt(query, this.listPositions()[i]!);
  }

  /** The list-order position of every entry, built on first use. */
  private listPositions(): Uint32Array {
    if (!this.inverse) {
      const inverse = new Uint32Array(this.size);
      for (let p = 0; p < this.size; p++) inverse[this.order[p]!] = p;
      this.inverse = inverse;
    }
    return this.inverse;
  }

  /**
   * A KnnIndex over entries [0, prefix), its keys copied out of the list-ordered kernel memory (the
   * scale is −coef/2 exactly): the same keys, so the same exact top k as a prefix search of the
   * whole. A small prefix then costs a scan of itself, not of every list; the last few are kept.
   */
  private prefixExact(prefix: number): KnnIndex {
    const cached = this.prefixIndexes.get(prefix);
    if (cached) return cached;
    const { dim, dim16 } = this;
    const positions = this.listPositions();
    const source = this.kernelCodes!;
    const codes = new Int8Array(prefix * dim);
    const scales = new Float32Array(prefix);
    for (let i = 0; i < prefix; i++) {
      const p = positions[i]!;
      codes.set(source.subarray(p * dim16, p * dim16 + dim), i * dim);
      scales[i] = -0.5 * this.coef[p]!;
    }
    const index = KnnIndex.fromCodes(codes, scales, dim);
    if (this.prefixIndexes.size >= PREFIX_INDEXES_KEPT) this.prefixIndexes.delete(this.prefixIndexes.keys().next().value!);
    this.prefixIndexes.set(prefix, index);
    return index;
  }

  /**
   * The exact search (every list scanned): the same ids and distances as KnnIndex over the same keys.
   * With the kernel it scans the list-ordered keys; on the JS path it is a KnnIndex over the entry-order keys.
   */
  get exact(): ExactKnnIndex {
    if (this.exactView) return this.exactView;
    if (!this.kernel) {
      this.exactView = this.floats ? KnnIndex.fromFloats(this.floats, this.dim, { simd: false }) : KnnIndex.fromCodes(this.codes!, this.scales!, this.dim, { simd: false });
      return this.exactView;
    }
    this.exactView = new ListOrderExact(this, (query, k, prefix, stats) => this.searchExact(query, k, prefix, stats));
    return this.exactView;
  }

  /**
   * KnnIndex.search over the list-ordered keys: the scan covers every list, candidates are list
   * positions (mapped to entry ids for the result), and with `prefix` only entries < prefix count.
   * The result is the exact top k, so it equals KnnIndex's (ties: smaller id first).
   */
  private searchExact(query: Float32Array, k: number, prefix = this.size, stats: ExactKnnIndex): KnnSearchResult {
    const { dim, size: n, order, base, coef } = this;
    const kernel = this.kernel!;
    if (!(Number.isInteger(prefix) && prefix >= 0 && prefix <= n)) throw new RangeError(`a search limit must be a whole number in 0..${n}, got ${prefix}`);
    if (query.length !== dim) throw new RangeError(`query has ${query.length} dims, the kNN keys ${dim}`);
    k = Math.max(0, Math.min(Math.floor(k), prefix));
    if (k === 0) return { ids: new Int32Array(0), distances: new Float32Array(0) };
    if (prefix < n && prefix * PREFIX_COPY_FRACTION <= n) {
      const index = this.prefixExact(prefix);
      const result = index.search(query, k);
      stats.lastCandidates = this.lastCandidates = index.lastCandidates;
      stats.lastTimings = index.lastTimings;
      return result;
    }
    const all = prefix === n;
    const t0 = clock();
    let qq = 0;
    for (let j = 0; j < dim; j++) qq += query[j]! * query[j]!;
    const qnorm = Math.sqrt(qq);
    const rounding = 2 ** -20 * (this.maxBase + 2 * qnorm * this.maxNorm);
    const { sigma, residual2: r2 } = quantizeQuery(query, this.queryMax, this.queryInt);
    const sums = kernel.scan(this.queryInt, sigma);
    const approx = (p: number) => base[p]! + sigma * coef[p]! * sums[p]!;
    const beta = 2 * Math.sqrt(r2) * this.maxNorm * (1 + 1e-6) + rounding;
    // The kernel filters in float32: widen the threshold by its rounding so no key at or under it
    // in float64 is dropped; keys of entries past the prefix are dropped after.
    const below = (thr: number): ArrayLike<number> => {
      const passed = kernel.below(Math.fround(thr + rounding));
      if (all) return passed;
      const kept: number[] = [];
      for (let t = 0; t < passed.length; t++) if (order[passed[t]!]! < prefix) kept.push(passed[t]!);
      return kept;
    };
    const t1 = clock();
    const eligible = all ? null : (p: number) => order[p]! < prefix;
    // Positions every `step` apart hold about one eligible key per `stride` of them.
    const stride = sampleStride(prefix, k);
    const sampled: number[] = [];
    if (stride) {
      const step = all ? stride : Math.max(1, Math.floor((stride * n) / prefix));
      for (let p = step >> 1; p < n; p += step) if (!eligible || eligible(p)) sampled.push(p);
    }
    const { best, candidates, selected } = selectExactTopK({
      k,
      positions: n,
      eligible,
      samples: sampled.length,
      sampleAt: (t) => sampled[t]!,
      stride,
      approx,
      below,
      bound: (kth) => rerankBound(kth, qq, beta, this.maxError),
      exact: (p) => this.exactAt(query, p),
      id: (p) => order[p]!,
    });
    stats.lastCandidates = candidates;
    this.lastCandidates = candidates;
    stats.lastTimings = { scan: t1 - t0, select: selected - t1, rerank: clock() - selected };
    return { ids: best.ids, distances: Float32Array.from(best.scores, (s) => -s) };
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
    for (let j = 0; j < dim; j++) qq += query[j]! * query[j]!;
    const qnorm = Math.sqrt(qq);
    const rounding = 2 ** -20 * (this.maxBase + 2 * qnorm * this.maxNorm);
    let beta: number;
    let m = 0;
    if (this.kernel) {
      const { sigma, residual2: r2 } = quantizeQuery(query, this.queryMax, this.queryInt);
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
      const codes = this.codes!;
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
      limit = rerankBound(-kth.threshold, qq, beta, this.maxError);
    }
    const t2 = clock();

    const top = new TopK(k);
    let candidates = 0;
    if (pick) {
      for (const t of pick) {
        const p = positions[t]!;
        candidates++;
        top.push(-this.exactAt(query, p), order[p]!);
      }
    } else {
      for (let t = 0; t < m; t++) {
        if (!(approxs[t]! <= limit)) continue;
        const p = positions[t]!;
        candidates++;
        top.push(-this.exactAt(query, p), order[p]!);
      }
    }
    this.lastCandidates = candidates;
    this.lastScanned = m;
    const best = top.sorted();
    this.lastTimings = { probe: t1 - t0, scan: t2 - t1, rerank: clock() - t2 };
    return { ids: best.ids, distances: Float32Array.from(best.scores, (s) => -s) };
  }
}
