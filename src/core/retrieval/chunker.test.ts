import { describe, expect, it } from 'vitest';
import { chunkDocuments, countChunks } from './chunker';

describe('chunkDocuments', () => {
  const opts = { chunkSize: 3, neighbourLen: 6, eotId: 1 };

  it('cuts every document from its first token and appends the continuation, padded with eot', () => {
    const docs = [
      [10, 11, 12, 13, 14, 15, 16], // 3 chunks: 3 + 3 + 1
      [20, 21], // 1 short chunk
      [],
      [30, 31, 32],
    ];
    const c = chunkDocuments(docs, opts, 100);
    expect(c.count).toBe(5);
    const rows = Array.from({ length: c.count }, (_, r) => Array.from(c.tokens.subarray(r * 6, r * 6 + 6)));
    expect(rows).toEqual([
      [10, 11, 12, 13, 14, 15],
      [13, 14, 15, 16, 1, 1],
      [16, 1, 1, 1, 1, 1],
      [20, 21, 1, 1, 1, 1],
      [30, 31, 32, 1, 1, 1],
    ]);
    expect(Array.from(c.lengths)).toEqual([3, 3, 1, 2, 3]);
    expect(Array.from(c.continuationLengths)).toEqual([3, 1, 0, 0, 0]);
    expect(Array.from(c.docs)).toEqual([0, 0, 0, 1, 3]);
    expect(Array.from(c.starts)).toEqual([0, 3, 6, 0, 0]);
    expect(c.tokens).toBeInstanceOf(Uint16Array);
  });

  it('uses Int32 ids for vocabularies past 65536 and checks ids', () => {
    expect(chunkDocuments([[70000]], opts, 80000).tokens).toBeInstanceOf(Int32Array);
    expect(() => chunkDocuments([[5, 100]], opts, 100)).toThrow(/outside the vocabulary/);
    expect(() => chunkDocuments([[5]], { ...opts, neighbourLen: 2 }, 100)).toThrow(RangeError);
  });

  it('counts chunks as ceil(length / C)', () => {
    expect([0, 1, 32, 33, 64].map((n) => countChunks(n, 32))).toEqual([0, 1, 1, 2, 2]);
  });
});
