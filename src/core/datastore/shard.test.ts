import { describe, expect, it } from 'vitest';
import { SHARD_FIXED_HEADER_BYTES, SHARD_FORMAT_VERSION, type Shard } from '../../protocol/shard';
import { buildShard } from './builder';
import { ShardCorruptError, ShardMagicError, ShardTruncatedError, ShardVersionError } from './errors';
import { blobShardSource, decodeShard, decodeShardFrom, encodeShard, readShardHeader, readShardHeaderFrom } from './shard';
import { byteTokenizer, testEmbedder, TOY_DOCUMENTS } from './test-helpers';

async function toy(): Promise<{ shard: Shard; bytes: Uint8Array }> {
  const { shard, bytes } = await buildShard(TOY_DOCUMENTS, {
    name: 'toy',
    description: 'four small documents',
    tokenizer: byteTokenizer(),
    embedder: testEmbedder(),
    chunkSize: 8,
    now: () => new Date('2026-11-21T00:00:00Z'),
  });
  return { shard, bytes };
}

function expectSameShard(a: Shard, b: Shard) {
  expect(b.meta).toEqual(a.meta);
  for (const key of ['chunkSize', 'neighbourLen', 'vocabSize', 'eotId', 'dim', 'indexKind', 'titles'] as const) expect(b[key]).toEqual(a[key]);
  for (const key of ['tokens', 'chunkLengths', 'chunkDocs', 'chunkTextSpans', 'docTextOffsets', 'texts', 'indexBytes'] as const) {
    expect(Array.from(b[key])).toEqual(Array.from(a[key]));
  }
  expect(Array.from(b.embeddings.codes)).toEqual(Array.from(a.embeddings.codes));
  expect(Array.from(b.embeddings.scales)).toEqual(Array.from(a.embeddings.scales));
  expect(Array.from(b.embeddings.errors)).toEqual(Array.from(a.embeddings.errors));
}

describe('shard format', () => {
  it('round-trips every field', async () => {
    const { shard, bytes } = await toy();
    expect(shard.formatVersion).toBe(SHARD_FORMAT_VERSION);
    expect(shard.titles).toEqual(TOY_DOCUMENTS.map((d) => d.title));
    const again = encodeShard(shard);
    expect(again).toEqual(bytes); // deterministic
    expectSameShard(shard, decodeShard(again));
    const header = readShardHeader(bytes);
    expect(header.chunkCount).toBe(shard.chunkLengths.length);
    expect(header.totalBytes).toBe(bytes.length);
    expect(header.sections.map((s) => s.name)).toContain('embeddingCodes');
  });

  it('decodes from a misaligned copy (e.g. a pooled Node Buffer)', async () => {
    const { shard, bytes } = await toy();
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    expectSameShard(shard, decodeShard(padded.subarray(3)));
  });

  it('carries the optional kNN-LM section behind its flag', async () => {
    const { shard } = await toy();
    // The format-1 placeholder layout (flag bit 0); src/core/knnlm tests the kNN-LM datastore layout.
    const knnlm = { keyDim: 4, dim: 4, encoding: 'f32' as const, keys: Float32Array.from({ length: 12 }, (_, i) => i / 7), codes: null, scales: null, pca: null, values: Uint32Array.of(5, 6, 7), textOffsets: null };
    const withKnn: Shard = { ...shard, knnlm };
    const back = decodeShard(encodeShard(withKnn));
    expect(readShardHeader(encodeShard(withKnn)).flags).toBe(1);
    expect(back.knnlm?.keyDim).toBe(4);
    expect(Array.from(back.knnlm!.values)).toEqual([5, 6, 7]);
    expect(Array.from(back.knnlm!.keys!)).toEqual(Array.from(knnlm.keys));
    expect(decodeShard(encodeShard(shard)).knnlm).toBeNull();
  });

  it('detects a flipped byte anywhere, naming the damaged section', async () => {
    const { bytes } = await toy();
    const header = readShardHeader(bytes);
    for (const s of header.sections.filter((x) => x.bytes > 0)) {
      const damaged = bytes.slice();
      damaged[s.offset + Math.floor(s.bytes / 2)]! ^= 0x10;
      const error = (() => {
        try {
          decodeShard(damaged);
        } catch (e) {
          return e;
        }
      })();
      expect(error, s.name).toBeInstanceOf(ShardCorruptError);
      expect((error as ShardCorruptError).name).toBe('ShardCorruptError');
      expect((error as ShardCorruptError).section).toBe(s.name);
    }
    // Every single byte after the version field: no flip goes unnoticed.
    for (let i = 12; i < bytes.length; i++) {
      const damaged = bytes.slice();
      damaged[i]! ^= 0x01;
      expect(() => decodeShard(damaged), `byte ${i}`).toThrow(/damaged|inconsistent|padding|truncated|unexpected|outside|length|misaligned|JSON|index kind|element type|overlaps|missing/);
    }
  });

  it('decodes section by section from a source (a Blob) as from bytes, each array in a buffer of its own, and finds the same damage', async () => {
    const { shard, bytes } = await toy();
    const source = blobShardSource(new Blob([bytes.slice()]));
    expect(await readShardHeaderFrom(source)).toEqual(readShardHeader(bytes));
    const { shard: read, codes } = await decodeShardFrom(source);
    expect(codes).toBeNull();
    expectSameShard(shard, read);
    for (const a of [read.tokens, read.texts, read.docTextOffsets, read.embeddings.codes]) expect(a.byteLength).toBe(a.buffer.byteLength);
    // Every 7th byte after the version field: damage is found, as decodeShard finds it.
    for (let i = 12; i < bytes.length; i += 7) {
      const damaged = bytes.slice();
      damaged[i]! ^= 0x01;
      await expect(decodeShardFrom(blobShardSource(new Blob([damaged]))), `byte ${i}`).rejects.toThrow(/damaged|inconsistent|padding|truncated|unexpected|outside|length|misaligned|JSON|index kind|element type|overlaps|missing/);
    }
    await expect(decodeShardFrom(blobShardSource(new Blob([bytes.slice(0, bytes.length - 8) as Uint8Array<ArrayBuffer>])))).rejects.toBeInstanceOf(ShardTruncatedError);
  });

  it('reports truncation, wrong magic and wrong version with typed errors', async () => {
    const { bytes } = await toy();
    expect(() => decodeShard(bytes.subarray(0, bytes.length - 1))).toThrow(ShardTruncatedError);
    expect(() => decodeShard(bytes.subarray(0, 40))).toThrow(ShardTruncatedError);
    expect(() => decodeShard(new Uint8Array(0))).toThrow(ShardTruncatedError);
    try {
      decodeShard(bytes.subarray(0, 1000));
    } catch (e) {
      expect((e as Error).name).toBe('ShardTruncatedError');
      expect((e as ShardTruncatedError).expectedBytes).toBe(bytes.length);
      expect((e as Error).message).toMatch(/truncated: 1,000 of/);
    }

    const magic = bytes.slice();
    magic[0] = 0x7b; // '{': someone dropped a JSON file
    expect(() => decodeShard(magic)).toThrow(ShardMagicError);
    expect(() => decodeShard(new TextEncoder().encode('hello world, not a shard at all, definitely longer than the header is; '.repeat(3)))).toThrow(/not a RetroLab datastore/);

    const newer = bytes.slice();
    new DataView(newer.buffer).setUint32(8, SHARD_FORMAT_VERSION + 1, true);
    expect(() => decodeShard(newer)).toThrow(ShardVersionError);
    expect(() => decodeShard(newer)).toThrow(/newer than this app reads/);

    const longer = new Uint8Array(bytes.length + 8);
    longer.set(bytes);
    expect(() => decodeShard(longer)).toThrow(/unexpected bytes after the end/);
    expect(SHARD_FIXED_HEADER_BYTES).toBe(80);
  });

  it('refuses to encode an inconsistent shard', async () => {
    const { shard } = await toy();
    expect(() => encodeShard({ ...shard, chunkLengths: shard.chunkLengths.subarray(1) })).toThrow(RangeError);
  });
});
