/**
 * Exact flat index: a scan over int8 codes (one scale per vector) picks candidates, then exact
 * float re-ranking orders them. It returns exactly the exact-search top-k, not an approximation:
 *
 * each vector stores an error bound e_i >= ||x_i - x̂_i|| of its quantization, so the true score
 * s_i = q·x_i lies within ||q||·e_i of the cheap score q·x̂_i. Let L be the k-th largest lower
 * bound q·x̂_i - ||q||e_i; at least k vectors score >= L, so every member of the true top-k has
 * an upper bound >= L. Only vectors whose upper bound reaches L are re-ranked with exact floats.
 * With 256-d unit vectors e_i is about 0.007, so a handful to a few hundred vectors are re-ranked.
 *
 * The cheap scores come from a WebAssembly SIMD kernel (simd-scan.ts) where available: the query
 * is then quantized to int16 too, and its own error ||q - q̂|| times ||x̂_i|| joins the bound, so
 * the result stays exact. Elsewhere a JS loop scores the float query against the codes.
 */
import type { QuantizedVectors } from '../../protocol/shard';
import type { SearchOptions, SearchResult } from '../../protocol/retrieval';
import { QUERY_INT_MAX, SIMD_MAX_DIM, SimdInt8Scanner, simdScanSupported } from './simd-scan';
import { ArrayVectorSource, TopK, dot, toSearchResult, type VectorIndex, type VectorSource } from './vector-index';

/** Slack for float64 rounding in the bounds, far below any real score gap. */
const BOUND_SLACK = 1e-7;

const FLAT_MAGIC = 0x58464c52; // "RLFX" little-endian
const FLAT_VERSION = 1;

export class FlatIndexFormatError extends Error {
  override name = 'FlatIndexFormatError';
}

/**
 * Symmetric int8 quantization with one scale per vector (max |x| / 127) and a rounded-up bound
 * on each vector's quantization error.
 */
export function quantizeVectors(vectors: Float32Array, dim: number): QuantizedVectors {
  if (vectors.length % dim !== 0) throw new RangeError(`${vectors.length} floats are not a whole number of ${dim}-d vectors`);
  const count = vectors.length / dim;
  const codes = new Int8Array(count * dim);
  const scales = new Float32Array(count);
  const errors = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const o = i * dim;
    let max = 0;
    for (let j = 0; j < dim; j++) max = Math.max(max, Math.abs(vectors[o + j]!));
    const scale = Math.fround(max > 0 ? max / 127 : 1);
    scales[i] = scale;
    let err2 = 0;
    for (let j = 0; j < dim; j++) {
      const x = vectors[o + j]!;
      const c = Math.max(-127, Math.min(127, Math.round(x / scale)));
      codes[o + j] = c;
      const d = x - c * scale;
      err2 += d * d;
    }
    // Round the bound up so the float32 we store never undercuts the float64 we computed.
    const e = Math.sqrt(err2);
    const stored = Math.fround(e);
    errors[i] = stored >= e ? stored : Math.fround(e * (1 + 1e-6) + 1e-12);
  }
  return { count, dim, codes, scales, errors };
}

export interface FlatIndexOptions {
  /** Use the WebAssembly SIMD scan when available (default true); false forces the JS loop. */
  simd?: boolean;
}

export class FlatIndex implements VectorIndex {
  readonly kind = 'flat' as const;
  readonly size: number;
  readonly dim: number;
  /** What computes the cheap scores. */
  readonly backend: 'wasm-simd' | 'js';
  /** Vectors re-ranked by the last search (for benchmarks and tests). */
  lastCandidates = 0;
  private approx: Float64Array;
  private readonly buffer: Float32Array;
  private scanner: SimdInt8Scanner | null = null;
  /** upper bounds of ||x̂_i||, for the query-quantization term of the SIMD bound */
  private codeNorms: Float32Array | null = null;
  private readonly queryInt: Int16Array;

  private constructor(
    readonly quantized: QuantizedVectors,
    private readonly source: VectorSource,
    options: FlatIndexOptions,
  ) {
    if (source.count !== quantized.count || source.dim !== quantized.dim) {
      throw new RangeError(`vector source (${source.count} x ${source.dim}) does not match the codes (${quantized.count} x ${quantized.dim})`);
    }
    this.size = quantized.count;
    this.dim = quantized.dim;
    this.approx = new Float64Array(0);
    this.buffer = new Float32Array(quantized.dim);
    this.queryInt = new Int16Array(quantized.dim);
    if (options.simd !== false && simdScanSupported() && quantized.dim <= SIMD_MAX_DIM && quantized.count > 0) {
      this.scanner = new SimdInt8Scanner(quantized.codes, quantized.count, quantized.dim);
      const { codes, scales, count, dim } = quantized;
      this.codeNorms = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        let s = 0;
        for (let j = 0, o = i * dim; j < dim; j++) s += codes[o + j]! * codes[o + j]!;
        this.codeNorms[i] = Math.sqrt(s) * scales[i]! * (1 + 1e-6);
      }
    }
    this.backend = this.scanner ? 'wasm-simd' : 'js';
  }

  /** Quantizes `vectors`; re-ranks against `source` (default: the vectors themselves). */
  static build(vectors: Float32Array, dim: number, source?: VectorSource, options: FlatIndexOptions = {}): FlatIndex {
    return new FlatIndex(quantizeVectors(vectors, dim), source ?? new ArrayVectorSource(vectors, dim), options);
  }

  /** Over codes already quantized (a shard's embeddings section). */
  static fromQuantized(quantized: QuantizedVectors, source: VectorSource, options: FlatIndexOptions = {}): FlatIndex {
    return new FlatIndex(quantized, source, options);
  }

  /** Cheap scores q·x̂_i into `approx` (NaN when excluded), and the query's own quantization error. */
  private cheapScores(query: Float32Array, exclude: ((id: number) => boolean) | undefined): { approx: Float64Array; queryError: number } {
    const { size: n, dim } = this;
    const { codes, scales } = this.quantized;
    if (this.approx.length < n) this.approx = new Float64Array(n);
    const approx = this.approx;
    if (this.scanner) {
      let qmax = 0;
      for (let j = 0; j < dim; j++) qmax = Math.max(qmax, Math.abs(query[j]!));
      const step = qmax > 0 ? qmax / QUERY_INT_MAX : 1;
      let err2 = 0;
      for (let j = 0; j < dim; j++) {
        const c = Math.round(query[j]! / step);
        this.queryInt[j] = c;
        const d = query[j]! - c * step;
        err2 += d * d;
      }
      const sums = this.scanner.scan(this.queryInt);
      for (let i = 0; i < n; i++) approx[i] = exclude?.(i) ? NaN : sums[i]! * step * scales[i]!;
      return { approx, queryError: Math.sqrt(err2) * (1 + 1e-6) };
    }
    for (let i = 0; i < n; i++) {
      if (exclude?.(i)) {
        approx[i] = NaN;
        continue;
      }
      const o = i * dim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let j = 0;
      for (; j + 3 < dim; j += 4) {
        s0 += query[j]! * codes[o + j]!;
        s1 += query[j + 1]! * codes[o + j + 1]!;
        s2 += query[j + 2]! * codes[o + j + 2]!;
        s3 += query[j + 3]! * codes[o + j + 3]!;
      }
      for (; j < dim; j++) s0 += query[j]! * codes[o + j]!;
      approx[i] = (s0 + s1 + s2 + s3) * scales[i]!;
    }
    return { approx, queryError: 0 };
  }

  search(query: Float32Array, k: number, options: SearchOptions = {}): SearchResult {
    const { size: n, dim } = this;
    const { errors } = this.quantized;
    k = Math.max(0, Math.min(Math.floor(k), n));
    if (k === 0) return { ids: new Int32Array(0), distances: new Float32Array(0) };
    if (query.length !== dim) throw new RangeError(`query has ${query.length} dims, the index ${dim}`);
    let qnorm = 0;
    for (let j = 0; j < dim; j++) qnorm += query[j]! * query[j]!;
    qnorm = Math.sqrt(qnorm);
    const { approx, queryError } = this.cheapScores(query, options.exclude);
    const norms = this.codeNorms;

    // Pass 1: the k-th best lower bound; `approx` becomes each vector's upper bound.
    const lower = new TopK(k);
    let threshold = -Infinity;
    for (let i = 0; i < n; i++) {
      const a = approx[i]!;
      if (a !== a) continue; // excluded (NaN) stays NaN and fails pass 2
      const b = qnorm * errors[i]! + (norms === null ? 0 : queryError * norms[i]!);
      approx[i] = a + b;
      if (a - b > threshold) {
        lower.push(a - b, i);
        threshold = lower.threshold;
      }
    }
    const cut = threshold - BOUND_SLACK;

    // Pass 2: exact re-ranking of every vector that could still be in the top k.
    const top = new TopK(k);
    const v = this.buffer;
    let candidates = 0;
    for (let i = 0; i < n; i++) {
      if (!(approx[i]! >= cut)) continue;
      candidates++;
      this.source.vector(i, v);
      top.push(dot(query, v, dim), i);
    }
    this.lastCandidates = candidates;
    return toSearchResult(top.sorted());
  }

  /** "RLFX", version, count, dim (u32 LE each), then codes, zero padding to 4, scales, errors. */
  serialize(): Uint8Array {
    const { count, dim, codes, scales, errors } = this.quantized;
    const codeBytes = count * dim;
    const pad = (4 - (codeBytes % 4)) % 4;
    const out = new Uint8Array(16 + codeBytes + pad + count * 8);
    const view = new DataView(out.buffer);
    view.setUint32(0, FLAT_MAGIC, true);
    view.setUint32(4, FLAT_VERSION, true);
    view.setUint32(8, count, true);
    view.setUint32(12, dim, true);
    out.set(new Uint8Array(codes.buffer, codes.byteOffset, codeBytes), 16);
    let o = 16 + codeBytes + pad;
    for (let i = 0; i < count; i++, o += 4) view.setFloat32(o, scales[i]!, true);
    for (let i = 0; i < count; i++, o += 4) view.setFloat32(o, errors[i]!, true);
    return out;
  }

  static deserialize(bytes: Uint8Array, source: VectorSource, options: FlatIndexOptions = {}): FlatIndex {
    if (bytes.length < 16) throw new FlatIndexFormatError(`flat index bytes too short (${bytes.length})`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== FLAT_MAGIC) throw new FlatIndexFormatError('not a flat index (bad magic)');
    const version = view.getUint32(4, true);
    if (version !== FLAT_VERSION) throw new FlatIndexFormatError(`flat index version ${version}, this reader knows ${FLAT_VERSION}`);
    const count = view.getUint32(8, true);
    const dim = view.getUint32(12, true);
    const codeBytes = count * dim;
    const pad = (4 - (codeBytes % 4)) % 4;
    if (bytes.length !== 16 + codeBytes + pad + count * 8) throw new FlatIndexFormatError(`flat index of ${count} x ${dim} has the wrong length ${bytes.length}`);
    const codes = new Int8Array(codeBytes);
    codes.set(new Int8Array(bytes.buffer, bytes.byteOffset + 16, codeBytes));
    const scales = new Float32Array(count);
    const errors = new Float32Array(count);
    let o = 16 + codeBytes + pad;
    for (let i = 0; i < count; i++, o += 4) scales[i] = view.getFloat32(o, true);
    for (let i = 0; i < count; i++, o += 4) errors[i] = view.getFloat32(o, true);
    return new FlatIndex({ count, dim, codes, scales, errors }, source, options);
  }

  dispose(): void {
    this.approx = new Float64Array(0);
    this.scanner = null;
    this.codeNorms = null;
  }
}
