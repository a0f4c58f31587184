/**
 * The kNN-LM datastore in the shard format, and the builder's bookkeeping (which key and value
 * each entry gets, where its text is), with a small deterministic key model in place of the GPT so
 * the test runs without model files. src/core/knnlm/knnlm.test.ts runs the real GPT.
 */
import { describe, expect, it } from 'vitest';
import type { ModelManifest } from '../../protocol/manifest';
import { SHARD_FLAGS, type Shard } from '../../protocol/shard';
import { buildShard } from '../datastore/builder';
import { Datastore } from '../datastore/datastore';
import { ShardCorruptError, ShardMismatchError } from '../datastore/errors';
import { decodeShard, encodeShard, readShardHeader } from '../datastore/shard';
import { byteTokenizer, testEmbedder, TOY_DOCUMENTS } from '../datastore/test-helpers';
import { streamWindows } from '../eval/perplexity';
import type { StartOptions, StepOutput } from '../models/types';
import { buildKnnShard, compressKnnShard, tokenStream, type KeyBatchModel, type KeyModel } from './build';
import { KnnDatastore } from './datastore';
import { dequantize } from './search';

const KEY_DIM = 8;
const CONTEXT = 16;

/**
 * Keys that depend on the whole window prefix (a running hash), so an entry keyed from the wrong
 * window or position would differ. Logits are zeros: the builder does not read them.
 */
function windowKeyModel(log: number[][] = []): KeyModel {
  const manifest = {
    id: 'toy-gpt',
    architecture: 'gpt',
    hyperparameters: { vocab_size: 258, context: CONTEXT, d_model: KEY_DIM, n_layer: 1, n_head: 1, head_dim: KEY_DIM, dropout: 0 },
    onnx: { decoder: { sha256: 'toy-sha' } },
  } as unknown as ModelManifest;
  return {
    manifest,
    async start(ids: readonly number[], options?: StartOptions): Promise<StepOutput> {
      log.push([...ids]);
      expect(options?.allLogits).toBe(true);
      return { logits: new Float32Array(ids.length * 258), rows: ids.length, knnKeys: keysFor(ids), retrievals: [], restarted: false };
    },
  };
}

function keysFor(ids: readonly number[]): Float32Array {
  const keys = new Float32Array(ids.length * KEY_DIM);
  let h = 17;
  ids.forEach((id, t) => {
    h = (Math.imul(h, 31) + id) >>> 0;
    for (let j = 0; j < KEY_DIM; j++) keys[t * KEY_DIM + j] = (((h >>> (j * 3)) & 63) - 31.5) / 8 + j * 0.1;
  });
  return keys;
}

/** keysFor of each sequence, one after another: what keysBatch returns for a batch of equal-length windows. */
function batchKeys(sequences: readonly (readonly number[])[]): Float32Array {
  const out = new Float32Array(sequences.length * sequences[0]!.length * KEY_DIM);
  sequences.forEach((s, b) => out.set(keysFor(s), b * s.length * KEY_DIM));
  return out;
}

async function toyBase(): Promise<Shard> {
  return (await buildShard(TOY_DOCUMENTS, { name: 'toy', tokenizer: byteTokenizer(), embedder: testEmbedder(), chunkSize: 8, now: () => new Date('2026-11-21T00:00:00Z') })).shard;
}

describe('kNN-LM datastore shards', () => {
  it('gives every token after the first exactly one key, from the eval windows, and its text', async () => {
    const tokenizer = byteTokenizer();
    const log: number[][] = [];
    const { shard, stats } = await buildKnnShard(TOY_DOCUMENTS, { name: 'toy-knn', tokenizer, model: windowKeyModel(log), encoding: 'f32', stride: 4 });
    const stream = await tokenStream(TOY_DOCUMENTS, tokenizer);
    const N = stream.ids.length;
    const knn = shard.knnlm!;
    expect(stats.entries).toBe(N - 1);
    expect(knn.values.length).toBe(N - 1);
    expect(Array.from(knn.values)).toEqual(Array.from(stream.ids.subarray(1)));
    // Entry i's key is the key of position i in the one window that scores target i+1.
    const windows = streamWindows(N, CONTEXT, 4);
    expect(log.length).toBe(windows.length);
    const seen = new Uint8Array(N - 1);
    for (const w of windows) {
      const keys = keysFor(Array.from(stream.ids.subarray(w.start, w.start + w.length - 1)));
      for (let t = w.firstScored; t < w.length - 1; t++) {
        const i = w.start + t;
        seen[i]!++;
        expect(Array.from(knn.keys!.subarray(i * KEY_DIM, (i + 1) * KEY_DIM))).toEqual(Array.from(keys.subarray(t * KEY_DIM, (t + 1) * KEY_DIM)));
      }
    }
    expect(seen.every((c) => c === 1)).toBe(true);

    // Each entry's text is its value token's byte: the byte tokenizer makes that checkable.
    const ds = KnnDatastore.fromShard(shard);
    const allText = new TextEncoder().encode(TOY_DOCUMENTS.map((d) => d.text).join(''));
    for (let i = 0; i < N - 1; i++) {
      expect(knn.textOffsets![i + 1]! - knn.textOffsets![i]!).toBe(1);
      expect(allText[knn.textOffsets![i]!]).toBe(knn.values[i]! - 2);
    }
    // Document 1 starts 'naïve' (ï is two bytes). The entry whose value is its first byte:
    const first = TOY_DOCUMENTS[0]!.text.length - 1;
    const view = ds.entryText(first, 5, 4);
    expect(view).toEqual({ docId: 1, title: TOY_DOCUMENTS[1]!.title, textBefore: '', tokenText: 'n', textAfter: 'aïv' });
    // The value 'v' (byte 4): text before it never starts inside a character.
    expect(ds.entryText(first + 4, 3).textBefore).toBe('aï');
    expect(ds.entryText(first + 4, 2).textBefore).toBe('ï');
    expect(ds.entryText(first + 4, 1).textBefore).toBe('');
    expect(ds.entryText(first - 1, 4, 10).textAfter).toBe('');
  });

  it('keys equal-length windows in batches through keysBatch, to the same entries as one window at a time', async () => {
    const tokenizer = byteTokenizer();
    const oneByOne = await buildKnnShard(TOY_DOCUMENTS, { name: 'toy-knn', tokenizer, model: windowKeyModel(), encoding: 'f32', stride: 4 });
    const batches: number[][][] = [];
    const batched: KeyModel = {
      ...windowKeyModel(),
      start: () => Promise.reject(new Error('the batched path must not call start')),
      async keysBatch(sequences) {
        batches.push(sequences.map((s) => [...s]));
        return batchKeys(sequences);
      },
    };
    const result = await buildKnnShard(TOY_DOCUMENTS, { name: 'toy-knn', tokenizer, model: batched, encoding: 'f32', stride: 4, keyBatch: 3 });
    expect(Array.from(result.shard.knnlm!.keys!)).toEqual(Array.from(oneByOne.shard.knnlm!.keys!));
    expect(Array.from(result.shard.knnlm!.values)).toEqual(Array.from(oneByOne.shard.knnlm!.values));
    const stream = await tokenStream(TOY_DOCUMENTS, tokenizer);
    const windows = streamWindows(stream.ids.length, CONTEXT, 4);
    expect(batches.flat().length).toBe(windows.length);
    expect(batches.every((b) => b.length <= 3 && b.every((s) => s.length === b[0]!.length))).toBe(true);
    expect(batches.some((b) => b.length === 3)).toBe(true);
  });


  it('keeps several forwards in flight for a pool of key workers and stores their keys in window order, however they finish', async () => {
    const tokenizer = byteTokenizer();
    const reference = await buildKnnShard(TOY_DOCUMENTS, { name: 'toy-knn', tokenizer, model: windowKeyModel(), encoding: 'int8', pca: 4, pcaSample: 40, stride: 4 });
    let running = 0;
    let mostAtOnce = 0;
    let call = 0;
    const pool: KeyBatchModel = {
      manifest: windowKeyModel().manifest,
      concurrency: 3,
      async keysBatch(sequences) {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        // Later calls finish first, as a faster worker's would.
        const delay = [6, 3, 0][call++ % 3]!;
        await new Promise((r) => setTimeout(r, delay));
        running--;
        return batchKeys(sequences);
      },
    };
    const result = await buildKnnShard(TOY_DOCUMENTS, { name: 'toy-knn', tokenizer, model: pool, encoding: 'int8', pca: 4, pcaSample: 40, stride: 4, keyBatch: 1 });
    expect(mostAtOnce).toBe(3);
    expect(Array.from(result.shard.knnlm!.codes!)).toEqual(Array.from(reference.shard.knnlm!.codes!));
    expect(Array.from(result.shard.knnlm!.scales!)).toEqual(Array.from(reference.shard.knnlm!.scales!));
    expect(Array.from(result.shard.knnlm!.pca!.basis)).toEqual(Array.from(reference.shard.knnlm!.pca!.basis));
  });
  it('round-trips int8 keys with a PCA projection, alone and attached to a chunk datastore', async () => {
    const tokenizer = byteTokenizer();
    const base = await toyBase();
    for (const attach of [false, true]) {
      const { shard, bytes } = await buildKnnShard(attach ? [] : TOY_DOCUMENTS, {
        name: 'toy-knn',
        tokenizer,
        model: windowKeyModel(),
        encoding: 'int8',
        pca: 3,
        pcaSample: 40,
        stride: 8,
        ...(attach ? { base } : {}),
        now: () => new Date('2026-11-21T00:00:00Z'),
      });
      const header = readShardHeader(bytes);
      expect(header.flags).toBe(SHARD_FLAGS.knnlmDatastore);
      expect(header.sections.map((s) => s.name)).toEqual(expect.arrayContaining(['knnlmCodes', 'knnlmScales', 'knnlmPcaMean', 'knnlmPcaBasis', 'knnlmValues', 'knnlmTextOffsets']));
      expect(header.sections.map((s) => s.name)).not.toContain('knnlmKeys');
      const again = decodeShard(encodeShard(shard));
      const k = shard.knnlm!;
      const b = again.knnlm!;
      expect({ keyDim: b.keyDim, dim: b.dim, encoding: b.encoding }).toEqual({ keyDim: KEY_DIM, dim: 3, encoding: 'int8' });
      expect(again.meta.knnlm).toEqual(shard.meta.knnlm);
      expect(shard.meta.knnlm!.pcaSample).toBe(40);
      for (const key of ['codes', 'scales', 'values', 'textOffsets'] as const) expect(Array.from(b[key]!)).toEqual(Array.from(k[key]!));
      expect(Array.from(b.pca!.basis)).toEqual(Array.from(k.pca!.basis));
      expect(Array.from(b.pca!.mean)).toEqual(Array.from(k.pca!.mean));
      if (attach) {
        // The chunk datastore is untouched and still opens for RETRO.
        expect(Array.from(again.embeddings.codes)).toEqual(Array.from(base.embeddings.codes));
        expect(Datastore.fromShard(again, testEmbedder()).chunkCount).toBe(base.chunkLengths.length);
        expect(KnnDatastore.fromShard(again).entryText(3).title).toBe(base.titles[0]);
      } else {
        expect(again.chunkSize).toBe(0);
        expect(again.chunkLengths.length).toBe(0);
        expect(() => Datastore.fromShard(again, testEmbedder())).toThrow(ShardMismatchError);
      }
    }
  });

  it('re-encodes float keys to int8 and PCA without the model', async () => {
    const { shard } = await buildKnnShard(TOY_DOCUMENTS, { name: 'toy-knn', tokenizer: byteTokenizer(), model: windowKeyModel(), encoding: 'f32' });
    const int8 = compressKnnShard(shard, { encoding: 'int8' }).shard.knnlm!;
    const floats = shard.knnlm!.keys!;
    const back = dequantize(int8.codes!, int8.scales!, KEY_DIM);
    let worst = 0;
    for (let i = 0; i < floats.length; i++) worst = Math.max(worst, Math.abs(back[i]! - floats[i]!));
    let max = 0;
    for (const x of floats) max = Math.max(max, Math.abs(x));
    expect(worst).toBeLessThanOrEqual(max / 127 / 2 + 1e-6);
    const pca = compressKnnShard(shard, { encoding: 'f32', pca: 4 }).shard;
    expect(pca.knnlm!.dim).toBe(4);
    expect(pca.meta.knnlm!.pcaVariance).toBeGreaterThan(0);
    expect(() => compressKnnShard(pca, { encoding: 'int8', pca: 2 })).toThrow(ShardMismatchError);
  });

  it('names the damaged kNN-LM section and refuses inconsistent ones', async () => {
    const { shard, bytes } = await buildKnnShard(TOY_DOCUMENTS, { name: 'toy-knn', tokenizer: byteTokenizer(), model: windowKeyModel(), pca: 4, pcaSample: 50 });
    for (const s of readShardHeader(bytes).sections.filter((x) => x.name.startsWith('knnlm'))) {
      const damaged = bytes.slice();
      damaged[s.offset + Math.floor(s.bytes / 2)]! ^= 0x04;
      let error: unknown;
      try {
        decodeShard(damaged);
      } catch (e) {
        error = e;
      }
      expect(error, s.name).toBeInstanceOf(ShardCorruptError);
      expect((error as ShardCorruptError).section).toBe(s.name);
    }
    const knn = shard.knnlm!;
    const bad = (knnlm: Partial<typeof knn>, meta = shard.meta) => () => encodeShard({ ...shard, meta, knnlm: { ...knn, ...knnlm } });
    expect(bad({ values: Uint32Array.from(knn.values, (v, i) => (i === 3 ? 9999 : v)) })).toThrow(/outside the vocabulary/);
    expect(bad({ textOffsets: Uint32Array.from(knn.textOffsets!, (v, i) => (i === 5 ? 0 : v)) })).toThrow(/decrease/);
    expect(bad({ scales: knn.scales!.subarray(1) })).toThrow(/scales/);
    expect(bad({}, { ...shard.meta, knnlm: { ...shard.meta.knnlm!, dim: 5 } })).toThrow(/metadata/);
    expect(bad({ pca: null })).toThrow(/without a projection/);
  });

  it('refuses a datastore built with other weights', async () => {
    const { shard } = await buildKnnShard(TOY_DOCUMENTS, { name: 'toy-knn', tokenizer: byteTokenizer(), model: windowKeyModel() });
    const ds = KnnDatastore.fromShard(shard);
    const model = windowKeyModel();
    expect(() => ds.checkModel(model.manifest)).not.toThrow();
    const other = { ...model.manifest, onnx: { decoder: { ...model.manifest.onnx.decoder, sha256: 'retrained' } } } as ModelManifest;
    expect(() => ds.checkModel(other)).toThrow(/Rebuild/);
    // A rewritten graph of the same weights (per-layer cache, fused attention) that names the one
    // the keys came from in same_keys_as keeps them; naming another graph does not.
    const decoder = model.manifest.onnx.decoder;
    const rewritten = (sameKeysAs: string[]) => ({ ...model.manifest, onnx: { decoder: { ...decoder, sha256: 'rewritten', same_keys_as: sameKeysAs } } }) as ModelManifest;
    expect(() => ds.checkModel(rewritten([decoder.sha256]))).not.toThrow();
    expect(() => ds.checkModel(rewritten(['retrained']))).toThrow(/Rebuild/);
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    const build = buildKnnShard(TOY_DOCUMENTS, {
      name: 'toy-knn',
      tokenizer: byteTokenizer(),
      model: windowKeyModel(),
      stride: 2,
      yieldEveryMs: 0,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'keys' && p.done > 20) controller.abort();
      },
    });
    await expect(build).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('leaves no forward running on a single session when cancelled (the app frees the key graph right after)', async () => {
    const controller = new AbortController();
    let running = 0;
    const session: KeyModel = {
      ...windowKeyModel(),
      async keysBatch(sequences) {
        running++;
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return batchKeys(sequences);
      },
    };
    const build = buildKnnShard(TOY_DOCUMENTS, {
      name: 'toy-knn',
      tokenizer: byteTokenizer(),
      model: session,
      stride: 2,
      keyBatch: 1,
      yieldEveryMs: 0,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'keys' && p.done > 20) controller.abort();
      },
    });
    await expect(build).rejects.toMatchObject({ name: 'AbortError' });
    expect(running).toBe(0);
  });
});
