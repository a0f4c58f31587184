/**
 * The VectorIndex interface every backend implements, and the exact-search helpers they share.
 * Distances are cosine distances `1 - q·x` between unit vectors (DistanceMetric in
 * src/protocol/retrieval.ts).
 */
import type { IndexKind, SearchOptions, SearchResult } from '../../protocol/retrieval';

export type { IndexKind, SearchOptions, SearchResult } from '../../protocol/retrieval';

/**
 * Where an index gets the exact float vectors it re-ranks with and reports distances from. In a
 * datastore these are recomputed from the chunk tokens by the embedder (identical to the build),
 * so a shard stores only the int8 codes.
 */
export interface VectorSource {
  readonly count: number;
  readonly dim: number;
  /** Writes vector `id` into `out[0..dim)`. */
  vector(id: number, out: Float32Array): void;
}

export interface VectorIndex {
  readonly kind: IndexKind;
  /** vectors indexed */
  readonly size: number;
  readonly dim: number;
  /** The k nearest vectors to `query` (a unit vector), nearest first; fewer when fewer pass `exclude`. */
  search(query: Float32Array, k: number, options?: SearchOptions): SearchResult;
  /** The index's own bytes, for the shard's index section (deserialize with the backend's `deserialize`). */
  serialize(): Uint8Array;
  /** Frees memory held outside the JS heap (WASM). The index is unusable afterwards. */
  dispose(): void;
}

/** Float vectors held in memory, row-major. */
export class ArrayVectorSource implements VectorSource {
  readonly count: number;
  constructor(
    readonly vectors: Float32Array,
    readonly dim: number,
  ) {
    if (vectors.length % dim !== 0) throw new RangeError(`${vectors.length} floats are not a whole number of ${dim}-d vectors`);
    this.count = vectors.length / dim;
  }
  vector(id: number, out: Float32Array): void {
    out.set(this.vectors.subarray(id * this.dim, (id + 1) * this.dim));
  }
}

/** Dot product in float64 of a float32 query and vector. */
export function dot(a: Float32Array, b: Float32Array, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += a[j]! * b[j]!;
  return s;
}

/**
 * Keeps the k best (score, id) pairs seen: higher score first, the smaller id on equal scores,
 * so every backend and the brute-force reference order ties the same way.
 */
export class TopK {
  private readonly scores: Float64Array;
  private readonly ids: Int32Array;
  private n = 0;

  constructor(readonly k: number) {
    this.scores = new Float64Array(Math.max(k, 1));
    this.ids = new Int32Array(Math.max(k, 1));
  }

  get length(): number {
    return this.n;
  }

  /** The worst score kept once full (-Infinity before). */
  get threshold(): number {
    return this.n < this.k ? -Infinity : this.scores[0]!;
  }

  /** a ranks below b */
  private worse(sa: number, ia: number, sb: number, ib: number): boolean {
    return sa < sb || (sa === sb && ia > ib);
  }

  push(score: number, id: number): void {
    if (this.k <= 0) return;
    const { scores, ids } = this;
    if (this.n < this.k) {
      // sift up in a min-heap of "worst first"
      let i = this.n++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!this.worse(score, id, scores[p]!, ids[p]!)) break;
        scores[i] = scores[p]!;
        ids[i] = ids[p]!;
        i = p;
      }
      scores[i] = score;
      ids[i] = id;
      return;
    }
    if (!this.worse(scores[0]!, ids[0]!, score, id)) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.n) break;
      const r = l + 1;
      const c = r < this.n && this.worse(scores[r]!, ids[r]!, scores[l]!, ids[l]!) ? r : l;
      if (!this.worse(scores[c]!, ids[c]!, score, id)) break;
      scores[i] = scores[c]!;
      ids[i] = ids[c]!;
      i = c;
    }
    scores[i] = score;
    ids[i] = id;
  }

  /** Best first. */
  sorted(): { ids: Int32Array; scores: Float64Array } {
    const order = Array.from({ length: this.n }, (_, i) => i);
    order.sort((a, b) => this.scores[b]! - this.scores[a]! || this.ids[a]! - this.ids[b]!);
    return { ids: Int32Array.from(order, (i) => this.ids[i]!), scores: Float64Array.from(order, (i) => this.scores[i]!) };
  }
}

/** Score -> cosine distance, as every backend reports it. */
export function toSearchResult(best: { ids: Int32Array; scores: Float64Array }): SearchResult {
  return { ids: best.ids, distances: Float32Array.from(best.scores, (s) => 1 - s) };
}

/** Brute-force exact search over a source: the reference the indexes are tested against. */
export function exactSearch(source: VectorSource, query: Float32Array, k: number, options: SearchOptions = {}): SearchResult {
  const top = new TopK(Math.min(k, source.count));
  const v = new Float32Array(source.dim);
  for (let i = 0; i < source.count; i++) {
    if (options.exclude?.(i)) continue;
    source.vector(i, v);
    top.push(dot(query, v, source.dim), i);
  }
  return toSearchResult(top.sorted());
}
