import { beforeAll, describe, expect, it } from 'vitest';
import { loadVoyForNode } from '../datastore/node';
import { SimdInt8Scanner } from './simd-scan';
import { ArrayVectorSource, exactSearch, FlatIndex, quantizeVectors, TopK, VOY_MAX_VECTORS, VoyIndex, VoyLimitError } from './index';

/** Clustered unit vectors (closer to real chunk embeddings than Gaussian ones) with exact duplicates. */
function clustered(n: number, dim: number, clusters: number, seed: number): Float32Array {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: dim }, rnd));
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    if (i % 97 === 5) {
      out.copyWithin(o, o - dim, o); // duplicate of the previous vector: ties must break by id
      continue;
    }
    const c = centres[i % clusters]!;
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      out[o + j] = c[j]! + 0.35 * rnd();
      norm += out[o + j]! ** 2;
    }
    for (let j = 0; j < dim; j++) out[o + j] = out[o + j]! / Math.sqrt(norm);
  }
  return out;
}

function queries(vectors: Float32Array, dim: number, count: number): Float32Array[] {
  // Stored vectors perturbed a little, plus exact stored vectors.
  return Array.from({ length: count }, (_, q) => {
    const base = vectors.subarray(((q * 7919) % (vectors.length / dim)) * dim, ((q * 7919) % (vectors.length / dim)) * dim + dim);
    const v = Float32Array.from(base, (x, j) => (q % 3 === 0 ? x : x + 0.05 * Math.sin(q * 31 + j)));
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  });
}

describe('TopK', () => {
  it('keeps the k best, breaking ties by smaller id', () => {
    const t = new TopK(3);
    [[0.5, 4], [0.9, 2], [0.5, 1], [0.1, 0], [0.9, 3], [0.5, 0]].forEach(([s, id]) => t.push(s!, id!));
    expect(Array.from(t.sorted().ids)).toEqual([2, 3, 0]);
  });
});

describe.each([
  { backend: 'wasm-simd', simd: true },
  { backend: 'js', simd: false },
] as const)('FlatIndex ($backend scan)', ({ backend, simd }) => {
  const dim = 64;
  const n = 6000;
  const vectors = clustered(n, dim, 40, 3);
  const source = new ArrayVectorSource(vectors, dim);
  const index = FlatIndex.build(vectors, dim, undefined, { simd });

  it('uses the requested scan', () => {
    expect(index.backend).toBe(backend);
  });

  it('bounds every vector’s quantization error', () => {
    const q = quantizeVectors(vectors, dim);
    for (let i = 0; i < n; i += 37) {
      let err = 0;
      for (let j = 0; j < dim; j++) err += (vectors[i * dim + j]! - q.codes[i * dim + j]! * q.scales[i]!) ** 2;
      expect(Math.sqrt(err)).toBeLessThanOrEqual(q.errors[i]!);
    }
  });

  it('returns exactly the brute-force top-k with the same distances', () => {
    let candidates = 0;
    for (const [qi, query] of queries(vectors, dim, 60).entries()) {
      for (const k of [1, 2, 10, 100]) {
        const got = index.search(query, k);
        const want = exactSearch(source, query, k);
        expect(Array.from(got.ids), `query ${qi} k=${k}`).toEqual(Array.from(want.ids));
        expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
        if (k === 10) candidates += index.lastCandidates;
      }
    }
    // The int8 pass must actually prune: far fewer re-ranked vectors than a full float scan.
    expect(candidates / 60).toBeLessThan(n / 4);
  });

  it('reports cosine distances, nearest first, 0 for the vector itself', () => {
    const r = index.search(vectors.subarray(10 * dim, 11 * dim), 5);
    expect(r.ids[0]).toBe(10);
    expect(Math.abs(r.distances[0]!)).toBeLessThan(1e-6);
    for (let i = 1; i < 5; i++) expect(r.distances[i]!).toBeGreaterThanOrEqual(r.distances[i - 1]!);
  });

  it('honours exclusions exactly and handles k past the size', () => {
    const exclude = (id: number) => id % 3 !== 0;
    for (const query of queries(vectors, dim, 10)) {
      const got = index.search(query, 20, { exclude });
      expect(Array.from(got.ids)).toEqual(Array.from(exactSearch(source, query, 20, { exclude }).ids));
      expect(Array.from(got.ids).every((id) => id % 3 === 0)).toBe(true);
    }
    expect(index.search(queries(vectors, dim, 1)[0]!, n + 50).ids.length).toBe(n);
    expect(index.search(queries(vectors, dim, 1)[0]!, 0).ids.length).toBe(0);
  });

  it('serializes and deserializes to the same results', () => {
    const bytes = index.serialize();
    const back = FlatIndex.deserialize(bytes, source, { simd });
    const q = queries(vectors, dim, 3)[2]!;
    expect(Array.from(back.search(q, 10).ids)).toEqual(Array.from(index.search(q, 10).ids));
    expect(() => FlatIndex.deserialize(bytes.subarray(0, bytes.length - 4), source)).toThrow(/wrong length/);
  });
});

describe('SimdInt8Scanner', () => {
  it('computes exact int16 x int8 dot products, including padded rows and extreme values', () => {
    for (const dim of [16, 40, 256]) {
      const n = 300;
      let s = dim;
      const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
      const codes = Int8Array.from({ length: n * dim }, (_, i) => (i % 13 === 0 ? -127 : Math.round(rnd() * 254 - 127)));
      const q = Int16Array.from({ length: dim }, (_, j) => (j % 5 === 0 ? -8191 : Math.round(rnd() * 16382 - 8191)));
      const got = new SimdInt8Scanner(codes, n, dim).scan(q);
      for (let i = 0; i < n; i++) {
        let want = 0;
        for (let j = 0; j < dim; j++) want += q[j]! * codes[i * dim + j]!;
        expect(got[i], `dim ${dim} row ${i}`).toBe(want);
      }
    }
  });
});

describe('FlatIndex SIMD scan with a dimension that is not a multiple of 16', () => {
  it('is still exact', () => {
    const dim = 40;
    const vectors = clustered(2000, dim, 9, 17);
    const source = new ArrayVectorSource(vectors, dim);
    const index = FlatIndex.build(vectors, dim);
    expect(index.backend).toBe('wasm-simd');
    for (const query of queries(vectors, dim, 25)) {
      expect(Array.from(index.search(query, 7).ids)).toEqual(Array.from(exactSearch(source, query, 7).ids));
    }
  });
});

describe('VoyIndex (voy-search WASM in Node)', () => {
  const dim = 32;
  const n = 1500;
  const vectors = clustered(n, dim, 12, 11);
  const source = new ArrayVectorSource(vectors, dim);
  beforeAll(loadVoyForNode);

  it('finds the exact top-k and reports distances computed from the vectors', () => {
    const index = VoyIndex.build(source);
    for (const query of queries(vectors, dim, 20)) {
      const got = index.search(query, 10);
      const want = exactSearch(source, query, 10);
      // voy ranks in float32; ranks may swap only between (near-)equal distances.
      expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
      expect(new Set(got.ids)).toEqual(new Set(want.ids));
    }
    index.dispose();
  });

  it('round-trips through its own serialization and filters exclusions', () => {
    const index = VoyIndex.build(source);
    const bytes = index.serialize();
    const back = VoyIndex.deserialize(bytes, source);
    const q = queries(vectors, dim, 2)[1]!;
    expect(Array.from(back.search(q, 5).ids)).toEqual(Array.from(index.search(q, 5).ids));
    const exclude = (id: number) => id % 2 === 0;
    const got = back.search(q, 5, { exclude });
    expect(Array.from(got.ids)).toEqual(Array.from(exactSearch(source, q, 5, { exclude }).ids));
    index.dispose();
    back.dispose();
  });

  it('refuses datastores past its documented limit before building', () => {
    const tooMany = { count: VOY_MAX_VECTORS + 1, dim, vector: () => undefined };
    expect(() => VoyIndex.build(tooMany)).toThrow(VoyLimitError);
  });
});
