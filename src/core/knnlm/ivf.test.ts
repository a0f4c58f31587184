/**
 * The IVF kNN-LM index: recall against the exact search on clustered keys, exactly the exact
 * search's results when every list is probed, deterministic training, and the shard sections.
 */
import { describe, expect, it } from 'vitest';
import type { KnnlmMeta, Shard } from '../../protocol/shard';
import { buildShard } from '../datastore/builder';
import { ShardCorruptError } from '../datastore/errors';
import { decodeShard, encodeShard, readShardHeader } from '../datastore/shard';
import { byteTokenizer, testEmbedder, TOY_DOCUMENTS } from '../datastore/test-helpers';
import { quantizeVectors } from '../retrieval/flat';
import { addIvfToShard } from './build';
import { KnnDatastore, defaultNprobe } from './datastore';
import { IvfIndex, trainIvf } from './ivf';
import { KnnIndex } from './search';

function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
}

/** n keys of `dim` dims around `clusters` Gaussian centres (like real keys: clumpy, not uniform). */
function clusteredKeys(n: number, dim: number, clusters: number, seed: number): Float32Array {
  const u = random(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  const centres = Float32Array.from({ length: clusters * dim }, () => 3 * gauss());
  const keys = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(u() * clusters);
    for (let j = 0; j < dim; j++) keys[i * dim + j] = centres[c * dim + j]! + 0.8 * gauss();
  }
  return keys;
}

const DIM = 16;
const N = 12_000;
const keys = clusteredKeys(N, DIM, 60, 7);
const q8 = quantizeVectors(keys, DIM);
const queries = (count: number, seed: number): Float32Array[] => {
  const u = random(seed);
  return Array.from({ length: count }, () => {
    const i = Math.floor(u() * N);
    return Float32Array.from({ length: DIM }, (_, j) => keys[i * DIM + j]! + 0.3 * (u() - 0.5));
  });
};

describe('IVF kNN-LM index', () => {
  const { ivf, stats } = trainIvf(q8.codes, q8.scales, DIM, { lists: 64, sample: 4096, iterations: 8 });
  const exact = KnnIndex.fromCodes(q8.codes, q8.scales, DIM);
  const index = IvfIndex.fromCodes(q8.codes, q8.scales, DIM, ivf);

  it('trains every key into one list, deterministically', () => {
    expect(stats.lists).toBe(64);
    expect(ivf.offsets[64]).toBe(N);
    expect(new Set(ivf.ids).size).toBe(N);
    expect(stats.inertia.at(-1)!).toBeLessThan(stats.inertia[0]!);
    const again = trainIvf(q8.codes, q8.scales, DIM, { lists: 64, sample: 4096, iterations: 8 }).ivf;
    expect(Array.from(again.ids)).toEqual(Array.from(ivf.ids));
    expect(Array.from(again.centroids)).toEqual(Array.from(ivf.centroids));
    // The JS fallback assigns keys like the kernel (up to int8 rounding of the centroids).
    const js = trainIvf(q8.codes, q8.scales, DIM, { lists: 64, sample: 4096, iterations: 8, simd: false }).ivf;
    const listOf = (lists: typeof ivf) => {
      const of = new Int32Array(N);
      for (let c = 0; c + 1 < lists.offsets.length; c++) for (let t = lists.offsets[c]!; t < lists.offsets[c + 1]!; t++) of[lists.ids[t]!] = c;
      return of;
    };
    const a = listOf(ivf);
    const b = listOf(js);
    let same = 0;
    for (let i = 0; i < N; i++) if (a[i] === b[i]) same++;
    expect(same / N).toBeGreaterThan(0.9);
  });

  it('finds at least 99% of the exact top k with enough probes', () => {
    for (const k of [8, 256]) {
      let found = 0;
      let scanned = 0;
      const qs = queries(40, 11 + k);
      for (const q of qs) {
        const want = new Set(exact.search(q, k).ids);
        const got = index.search(q, k, { nprobe: 12 });
        scanned += index.lastScanned;
        for (const id of got.ids) if (want.has(id)) found++;
        // Distances are the exact search's: sorted, and the true distance of each id.
        for (let t = 0; t < got.ids.length; t++) {
          expect(got.distances[t]).toBe(Math.fround(exact.exactDistance(q, got.ids[t]!)));
          if (t > 0) expect(got.distances[t]!).toBeGreaterThanOrEqual(got.distances[t - 1]!);
        }
      }
      expect(found / (qs.length * k)).toBeGreaterThanOrEqual(0.99);
      // ...while scanning a fraction of the keys.
      expect(scanned / qs.length).toBeLessThan(N / 2);
    }
  });

  it('one probe misses neighbours (so the recall test can fail)', () => {
    let found = 0;
    const qs = queries(40, 5);
    for (const q of qs) {
      const want = new Set(exact.search(q, 256).ids);
      for (const id of index.search(q, 256, { nprobe: 1 }).ids) if (want.has(id)) found++;
    }
    expect(found / (qs.length * 256)).toBeLessThan(0.99);
  });

  it('gives exactly the exact search when every list is probed', () => {
    const floats = IvfIndex.fromFloats(keys, DIM, ivf);
    const exactFloats = KnnIndex.fromFloats(keys, DIM);
    const jsIndex = IvfIndex.fromCodes(q8.codes, q8.scales, DIM, ivf, { simd: false });
    for (const q of queries(10, 3)) {
      for (const k of [1, 10, 300]) {
        const want = exact.search(q, k);
        for (const got of [index.search(q, k, { nprobe: 64 }), jsIndex.search(q, k, { nprobe: 1000 })]) {
          expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
          expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
        }
        const wantF = exactFloats.search(q, k);
        const gotF = floats.search(q, k, { nprobe: 64 });
        expect(Array.from(gotF.ids)).toEqual(Array.from(wantF.ids));
        expect(Array.from(gotF.distances)).toEqual(Array.from(wantF.distances));
      }
    }
  });

  it('searches a prefix of the entries: all lists probed = the exact search over an index of the prefix alone', () => {
    const jsIndex = IvfIndex.fromCodes(q8.codes, q8.scales, DIM, ivf, { simd: false });
    for (const limit of [1, 1_501, 6_000]) {
      const alone = KnnIndex.fromCodes(q8.codes.subarray(0, limit * DIM), q8.scales.subarray(0, limit), DIM);
      for (const q of queries(6, limit)) {
        for (const k of [1, 50, 2_000]) {
          const want = alone.search(q, k);
          for (const got of [index.search(q, k, { nprobe: 64, limit }), jsIndex.search(q, k, { nprobe: 64, limit })]) {
            expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
            expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
          }
        }
        // Fewer probes: still only prefix entries.
        const few = index.search(q, 300, { nprobe: 8, limit });
        expect(few.ids.every((id) => id < limit)).toBe(true);
        expect(index.lastScanned).toBeLessThanOrEqual(limit);
      }
    }
  });

  it('re-ranks a fixed number of candidates when asked', () => {
    const q = queries(1, 9)[0]!;
    const got = index.search(q, 10, { nprobe: 64, rerank: 50 });
    expect(index.lastCandidates).toBe(50);
    expect(Array.from(got.ids)).toEqual(Array.from(exact.search(q, 10).ids));
  });
});

describe('IVF sections in the shard', () => {
  async function knnShard(): Promise<Shard> {
    const base = (await buildShard(TOY_DOCUMENTS, { name: 'toy', tokenizer: byteTokenizer(), embedder: testEmbedder(), chunkSize: 8, now: () => new Date('2026-11-21T00:00:00Z') })).shard;
    const n = 3000;
    const meta: KnnlmMeta = { count: n, keyDim: DIM, dim: DIM, encoding: 'int8', model: { id: 'toy', decoderSha256: 'toy', context: 16, stride: 8 }, streamTokens: n + 1 };
    return {
      ...base,
      meta: { ...base.meta, knnlm: meta },
      knnlm: {
        keyDim: DIM,
        dim: DIM,
        encoding: 'int8',
        keys: null,
        codes: q8.codes.slice(0, n * DIM),
        scales: q8.scales.slice(0, n),
        pca: null,
        values: new Uint32Array(n),
        textOffsets: new Uint32Array(n + 1),
      },
    };
  }

  it('round-trips the lists with their checksums; a damaged list is reported; old shards search exactly', async () => {
    const plain = await knnShard();
    const plainBytes = encodeShard(plain);
    expect(decodeShard(plainBytes).knnlm!.ivf).toBeNull();
    const old = KnnDatastore.open(plainBytes, { index: 'ivf' });
    expect(old.defaultIndex).toBe('exact');
    expect(old.ivf).toBeNull();

    const { shard, bytes, stats } = addIvfToShard(decodeShard(plainBytes), { lists: 16, sample: 2000 });
    expect(stats.lists).toBe(16);
    expect(shard.meta.knnlm!.ivf).toEqual({ version: 1, lists: 16, sample: 2000, iterations: 10, seed: 1 });
    const header = readShardHeader(bytes);
    const names = header.sections.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['knnlmIvfCentroids', 'knnlmIvfOffsets', 'knnlmIvfIds']));
    const decoded = decodeShard(bytes);
    const ivf = decoded.knnlm!.ivf!;
    expect(ivf.offsets.length).toBe(17);
    expect(Array.from(ivf.ids)).toEqual(Array.from(shard.knnlm!.ivf!.ids));
    expect(Array.from(ivf.centroids)).toEqual(Array.from(shard.knnlm!.ivf!.centroids));
    // Everything else is as it was.
    expect(Array.from(decoded.knnlm!.codes!)).toEqual(Array.from(plain.knnlm!.codes!));
    // Re-encoding gives the same bytes (sections and CRCs).
    expect(encodeShard(decoded)).toEqual(bytes);

    // A flipped byte in the ids fails that section's CRC.
    const ids = header.sections.find((s) => s.name === 'knnlmIvfIds')!;
    const damaged = bytes.slice();
    damaged[ids.offset + 5]! ^= 1;
    expect(() => decodeShard(damaged)).toThrow(ShardCorruptError);
    expect(() => decodeShard(damaged)).toThrow(/knnlmIvfIds/);

    // The datastore uses the lists only when asked; all lists probed = the exact search.
    const ds = KnnDatastore.open(bytes, { index: 'ivf', nprobe: 16 });
    expect(ds.defaultIndex).toBe('ivf');
    expect(KnnDatastore.open(bytes).defaultIndex).toBe('exact');
    for (const q of queries(5, 21)) {
      const got = ds.search(q, 20);
      const want = ds.search(q, 20, { index: 'exact' });
      expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
    }
  });

  it('searches 1/32 of the lists by default (at least 8), and the exact scan when a search asks for it', async () => {
    expect([defaultNprobe(2048), defaultNprobe(197), defaultNprobe(31), defaultNprobe(4)]).toEqual([64, 8, 8, 4]);
    const { bytes } = addIvfToShard(await knnShard(), { lists: 64, sample: 2000 });
    const ds = KnnDatastore.open(bytes, { index: 'ivf' });
    expect(ds.nprobe).toBe(8);
    let differs = 0;
    for (const q of queries(20, 33)) {
      const ivf = ds.search(q, 200);
      const ivfScanned = ds.lastCandidates;
      const exact = ds.search(q, 200, { index: 'exact' });
      expect(Array.from(exact.ids)).toEqual(Array.from(ds.index.search(q, 200).ids));
      if (Array.from(ivf.ids).join() !== Array.from(exact.ids).join()) differs++;
      expect(ivfScanned).toBeGreaterThan(0);
    }
    // 8 of 64 lists miss some of the 200 nearest: the two searches are really different paths.
    expect(differs).toBeGreaterThan(0);
  });

  it('scans a small prefix exactly and filters the probed lists for a large one', async () => {
    const { bytes } = addIvfToShard(await knnShard(), { lists: 64, sample: 2000 });
    const ds = KnnDatastore.open(bytes, { index: 'ivf' });
    // 8 of 64 lists hold ~375 of the 3,000 keys: a prefix of at most that many is scanned exactly.
    expect([ds.prefixLimit(0.1), ds.prefixLimit(0.5), ds.prefixLimit(1), ds.prefixLimit(1e-9)]).toEqual([300, 1500, 3000, 1]);
    expect(() => ds.prefixLimit(0)).toThrow(RangeError);
    for (const q of queries(10, 41)) {
      const small = ds.search(q, 50, { limit: 300 });
      expect(ds.lastIndex).toBe('exact');
      expect(Array.from(small.ids)).toEqual(Array.from(ds.index.search(q, 50, 300).ids));
      const large = ds.search(q, 50, { limit: 1500 });
      expect(ds.lastIndex).toBe('ivf');
      expect(large.ids.every((id) => id < 1500)).toBe(true);
      ds.search(q, 50);
      expect(ds.lastIndex).toBe('ivf');
    }
  });

  it('refuses lists that do not cover every entry once', async () => {
    const { shard } = addIvfToShard(await knnShard(), { lists: 8, sample: 1000 });
    const ids = shard.knnlm!.ivf!.ids.slice();
    ids[1] = ids[0]!;
    expect(() => encodeShard({ ...shard, knnlm: { ...shard.knnlm!, ivf: { ...shard.knnlm!.ivf!, ids } } })).toThrow(/listed twice/);
  });
});
