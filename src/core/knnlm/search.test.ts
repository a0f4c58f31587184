import { describe, expect, it } from 'vitest';
import { quantizeVectors } from '../retrieval/flat';
import { l2KernelSupported } from './l2-kernel';
import { fitPca, projectKeys, symmetricEigen } from './pca';
import { KnnIndex, bruteForceKnn, dequantize } from './search';

function rng(seed: number) {
  let s = seed >>> 0;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  return { uniform, gauss: () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()) };
}

/** Clustered vectors (closer to real keys than white noise: many near neighbours, close calls at rank k). */
function clustered(n: number, dim: number, clusters: number, seed: number): Float32Array {
  const r = rng(seed);
  const centres = Float32Array.from({ length: clusters * dim }, () => r.gauss() * 3);
  const v = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r.uniform() * clusters);
    for (let j = 0; j < dim; j++) v[i * dim + j] = centres[c * dim + j]! + r.gauss();
  }
  return v;
}

function queries(vectors: Float32Array, dim: number, count: number, seed: number): Float32Array[] {
  const r = rng(seed);
  const n = vectors.length / dim;
  return Array.from({ length: count }, (_, t) => {
    const i = Math.floor(r.uniform() * n);
    // Half near a stored key (its cluster), half a stored key itself (distance 0 at rank 1).
    return Float32Array.from(vectors.subarray(i * dim, (i + 1) * dim), (x) => (t % 2 ? x : x + r.gauss() * 0.3));
  });
}

describe('exact kNN search over int8 keys', () => {
  it('has the WebAssembly SIMD kernel in Node', () => {
    expect(l2KernelSupported(64)).toBe(true);
  });

  // 20,000 keys reach the sampled-threshold path for k <= 256; 40 dims exercise the row padding.
  describe.each([
    ['wasm-simd', true],
    ['js', false],
  ])('%s', (backend, simd) => {
    const dim = 40;
    const n = 20_000;
    const vectors = clustered(n, dim, 60, 11);
    const q = quantizeVectors(vectors, dim);
    const stored = dequantize(q.codes, q.scales, dim);

    it.each([1, 10, 256, 1500])('int8 keys: identical to brute force over the dequantized keys (k=%i)', (k) => {
      const index = KnnIndex.fromCodes(q.codes, q.scales, dim, { simd });
      expect(index.backend).toBe(backend);
      for (const query of queries(vectors, dim, 8, k)) {
        const got = index.search(query, k);
        const want = bruteForceKnn(stored, dim, query, k);
        expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
        expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
        expect(index.lastCandidates).toBeGreaterThanOrEqual(k);
      }
    });

    // A prefix search is the kNN-LM with a smaller datastore: it must equal an index built from the
    // prefix alone (whose error bound and sample differ), ids and distances.
    it.each([1, 777, 5_003, 19_999])('first %i keys: identical to an index built from those keys alone', (limit) => {
      const index = KnnIndex.fromCodes(q.codes, q.scales, dim, { simd });
      const alone = KnnIndex.fromCodes(q.codes.subarray(0, limit * dim), q.scales.subarray(0, limit), dim, { simd });
      const floats = KnnIndex.fromFloats(vectors, dim, { simd });
      const floatsAlone = KnnIndex.fromFloats(vectors.subarray(0, limit * dim), dim, { simd });
      for (const k of [1, 64, 1024]) {
        for (const query of queries(vectors, dim, 4, limit + k)) {
          const got = index.search(query, k, limit);
          expect(Array.from(got.ids)).toEqual(Array.from(alone.search(query, k).ids));
          expect(Array.from(got.distances)).toEqual(Array.from(alone.search(query, k).distances));
          expect(got.ids.length).toBe(Math.min(k, limit));
          expect(Array.from(floats.search(query, k, limit).ids)).toEqual(Array.from(floatsAlone.search(query, k).ids));
        }
      }
      // The prefix really restricts: the whole index finds keys beyond it.
      if (limit <= n / 2) {
        const query = queries(vectors, dim, 1, 5)[0]!;
        expect(Math.max(...index.search(query, 64).ids)).toBeGreaterThanOrEqual(limit);
      }
      expect(() => index.search(queries(vectors, dim, 1, 5)[0]!, 4, n + 1)).toThrow(RangeError);
    });

    it.each([1, 64])('float keys: identical to brute force over the floats (k=%i)', (k) => {
      const index = KnnIndex.fromFloats(vectors, dim, { simd });
      for (const query of queries(vectors, dim, 6, 100 + k)) {
        const got = index.search(query, k);
        const want = bruteForceKnn(vectors, dim, query, k);
        expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
        expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
      }
    });
  });

  it('orders exact ties by entry and handles k above the size', () => {
    const dim = 16;
    const base = clustered(50, dim, 5, 3);
    // Every key three times: ties at every rank.
    const vectors = new Float32Array(150 * dim);
    for (let c = 0; c < 3; c++) vectors.set(base, c * base.length);
    const q = quantizeVectors(vectors, dim);
    const index = KnnIndex.fromCodes(q.codes, q.scales, dim);
    const query = base.slice(7 * dim, 8 * dim);
    const got = index.search(query, 9);
    expect(Array.from(got.ids.slice(0, 3))).toEqual([7, 57, 107]);
    expect(Array.from(got.ids)).toEqual(Array.from(bruteForceKnn(dequantize(q.codes, q.scales, dim), dim, query, 9).ids));
    expect(index.search(query, 1000).ids.length).toBe(150);
    expect(index.search(query, 0).ids.length).toBe(0);
    expect(() => index.search(new Float32Array(3), 2)).toThrow(RangeError);
  });
});

describe('PCA', () => {
  it('diagonalises a symmetric matrix', () => {
    const a = Float64Array.of(4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 1);
    const copy = a.slice();
    const { values, vectors } = symmetricEigen(copy, 3);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 3; i++) {
        let av = 0;
        for (let j = 0; j < 3; j++) av += a[i * 3 + j]! * vectors[j * 3 + c]!;
        expect(av).toBeCloseTo(values[c]! * vectors[i * 3 + c]!, 10);
      }
    }
  });

  it('finds the directions of largest variance and keeps distances when nothing is dropped', () => {
    const r = rng(5);
    const dim = 12;
    const n = 4000;
    // Variance 25 along (1,1,0,...)/√2, 4 along e_5, 0.01 elsewhere; mean 3 everywhere.
    const keys = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      const a = r.gauss() * 5;
      const b = r.gauss() * 2;
      for (let j = 0; j < dim; j++) keys[i * dim + j] = 3 + r.gauss() * 0.1;
      keys[i * dim] = keys[i * dim]! + a / Math.SQRT2;
      keys[i * dim + 1] = keys[i * dim + 1]! + a / Math.SQRT2;
      keys[i * dim + 5] = keys[i * dim + 5]! + b;
    }
    const pca = fitPca(keys, dim, 2);
    expect(Math.abs(pca.basis[0]!)).toBeCloseTo(Math.SQRT1_2, 2);
    expect(Math.abs(pca.basis[1]!)).toBeCloseTo(Math.SQRT1_2, 2);
    expect(Math.abs(pca.basis[dim + 5]!)).toBeCloseTo(1, 2);
    expect(pca.variances[0]).toBeGreaterThan(20);
    expect(pca.explained).toBeGreaterThan(0.99);
    for (let j = 0; j < dim; j++) expect(pca.mean[j]).toBeCloseTo(3, 0);

    const full = fitPca(keys, dim, dim);
    const p = projectKeys(full, keys.subarray(0, 2 * dim));
    let d0 = 0;
    let d1 = 0;
    for (let j = 0; j < dim; j++) {
      d0 += (keys[j]! - keys[dim + j]!) ** 2;
      d1 += (p[j]! - p[dim + j]!) ** 2;
    }
    expect(d1).toBeCloseTo(d0, 4);
  });

  it('projects to the same bits as one float64 sum per output, in order (the keys of every datastore built before)', () => {
    const r = rng(9);
    for (const dim of [64, 7]) {
      const keyDim = 40;
      const keys = Float32Array.from({ length: 30 * keyDim }, () => r.gauss() * 3);
      const pca = { keyDim, dim, mean: Float32Array.from({ length: keyDim }, () => r.gauss()), basis: Float32Array.from({ length: dim * keyDim }, () => r.gauss()) };
      const expected = new Float32Array(30 * dim);
      for (let i = 0; i < 30; i++) {
        for (let c = 0; c < dim; c++) {
          let s = 0;
          for (let j = 0; j < keyDim; j++) s += pca.basis[c * keyDim + j]! * (keys[i * keyDim + j]! - pca.mean[j]!);
          expected[i * dim + c] = s;
        }
      }
      expect(Array.from(projectKeys(pca, keys))).toEqual(Array.from(expected));
    }
  });
});
