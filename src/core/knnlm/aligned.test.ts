/**
 * Token-aligned RETRO neighbours on the shipped models (WASM): spans around a kNN-LM entry, search
 * over several datastores in one key space, and the shipped RETRO reading them. With the evaluated
 * text in the datastore, chunk u's query finds chunk u itself and its true continuation (the
 * leakage case), so RETRO's perplexity must collapse; random entries must not help it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDir } from '../datastore/node';
import { parseDocuments } from '../datastore/parse';
import { alignedWindowNeighbours } from '../eval/neighbours';
import { evaluatePerplexity } from '../eval/perplexity';
import { GptModel } from '../models/gpt';
import { RetroModel } from '../models/retro';
import { GPT_ID, MODELS_DIR, RETRO_ID } from '../models/test-support';
import { keysMatchDecoder } from '../../protocol/manifest';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { loadTokenizer, type RetroTokenizer } from '../tokenizer';
import { alignedNeighbourIds, alignedNeighbourSource, alignedNprobe, queryKey, searchAligned, type QueryGpt } from './aligned';
import { buildKnnShard, tokenStream } from './build';
import { KnnDatastore } from './datastore';

const TOKENS = 1800;
const LONG = 240_000;

describe('alignedNeighbourIds', () => {
  const values = Array.from({ length: 40 }, (_, i) => 100 + i); // value i = stream token i + 1

  it('gives the chunk ending at the match and the chunk after it', () => {
    // entry 20: stream tokens 13..28 = values 12..27
    expect(Array.from(alignedNeighbourIds(values, 20, 8))).toEqual(Array.from({ length: 16 }, (_, i) => 112 + i));
  });

  it('moves the span inside the stream at either end, and shortens it only for a tiny stream', () => {
    expect(Array.from(alignedNeighbourIds(values, 3, 8))).toEqual(Array.from({ length: 16 }, (_, i) => 100 + i));
    expect(Array.from(alignedNeighbourIds(values, 39, 8))).toEqual(Array.from({ length: 16 }, (_, i) => 124 + i));
    expect(Array.from(alignedNeighbourIds([5, 6, 7], 1, 8))).toEqual([5, 6, 7]);
  });
});

describe('alignedNprobe', () => {
  const store = (nprobe: number) => ({ nprobe }) as KnnDatastore;

  it('scans a quarter of the default lists (at least 8) for a few neighbours, the default for many', () => {
    expect(alignedNprobe(store(64), 2)).toBe(16);
    expect(alignedNprobe(store(64), 8)).toBe(16);
    expect(alignedNprobe(store(64), 9)).toBeUndefined();
    expect(alignedNprobe(store(64), 1024)).toBeUndefined();
    expect(alignedNprobe(store(16), 2)).toBe(8);
    expect(alignedNprobe(store(8), 2)).toBe(8);
    expect(alignedNprobe(store(4), 2)).toBe(4);
    expect(alignedNprobe(store(0), 2)).toBeUndefined(); // no IVF lists: the exact scan
  });
});

describe('token-aligned RETRO on the shipped models', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  let retro: RetroModel;
  let tokenizer: RetroTokenizer;
  let evalIds: Uint16Array | Int32Array;
  /** other text (WikiText-2 test), with its own PCA */
  let other: KnnDatastore;
  /** the evaluated text (valid), keyed in `other`'s PCA space */
  let leaked: KnnDatastore;

  beforeAll(async () => {
    runtime = await Runtime.create({ prefer: 'wasm' });
    gpt = await GptModel.load(runtime, nodeModelFiles(join(MODELS_DIR, GPT_ID)));
    retro = await RetroModel.load(runtime, nodeModelFiles(join(MODELS_DIR, RETRO_ID)));
    tokenizer = loadTokenizer(JSON.parse(readFileSync(join(MODELS_DIR, GPT_ID, 'tokenizer.json'), 'utf8')), { id: gpt.manifest.tokenizer.id });
    const read = (split: string) => parseDocuments(new Uint8Array(readFileSync(join(dataDir(), 'wikitext-2', `wiki.${split}.tokens`))), `wiki.${split}.tokens`, 'wikitext');
    const valid = read('valid');
    evalIds = (await tokenStream(valid, tokenizer, TOKENS)).ids;
    other = KnnDatastore.fromShard((await buildKnnShard(read('test'), { name: 'test head', tokenizer, model: gpt, maxTokens: 2 * TOKENS, pca: 64 })).shard);
    const projection = other.section.pca!;
    leaked = KnnDatastore.fromShard((await buildKnnShard(valid, { name: 'valid head', tokenizer, model: gpt, maxTokens: TOKENS, projection })).shard);
  }, LONG);

  afterAll(async () => {
    await gpt?.dispose();
    await retro?.dispose();
  });

  it('the shipped RETRO is token-aligned and queries with the shipped GPT', () => {
    const r = retro.manifest.retrieval;
    expect(r?.kind).toBe('token-aligned');
    // The GPT's graph was rewritten since RETRO shipped (per-layer cache, fused attention) without
    // changing its keys: it names the graph RETRO was shipped against.
    expect(keysMatchDecoder(gpt.manifest.onnx.decoder, r!.query_decoder_sha256)).toBe(true);
    expect(retro.hp.neighbour_len).toBe(2 * retro.hp.chunk);
  });

  it('a datastore built with another one’s projection shares its key space', async () => {
    expect(leaked.section.dim).toBe(64);
    expect(Array.from(leaked.section.pca!.basis)).toEqual(Array.from(other.section.pca!.basis));
    expect(leaked.shard.meta.knnlm!.pcaSample).toBe(0);
    // A context of the leaked text finds itself first among both datastores, merged by distance.
    const d = gpt.manifest.hyperparameters.d_model;
    const w = await gpt.start(Array.from(evalIds.subarray(0, 120)), { allLogits: true });
    for (const t of [15, 63, 119]) {
      const key = w.knnKeys!.subarray(t * d, (t + 1) * d);
      const merged = searchAligned([other, leaked], key, 6);
      expect(merged[0]).toMatchObject({ store: 1, entry: t });
      expect(merged.map((m) => m.distance)).toEqual([...merged.map((m) => m.distance)].sort((a, b) => a - b));
      const fromOther = other.search(key, 6);
      expect(merged.filter((m) => m.store === 0).map((m) => m.entry)).toEqual(Array.from(fromOther.ids).slice(0, merged.filter((m) => m.store === 0).length));
    }
  });

  it('queryKey feeds only the new tokens when the GPT holds the previous query, and gets the prefill key', async () => {
    const context = Array.from(evalIds.subarray(0, 40));
    const calls = { start: 0, next: 0 };
    const counted: QueryGpt = {
      manifest: gpt.manifest,
      get sequence() {
        return gpt.sequence;
      },
      start: (ids, options) => (calls.start++, gpt.start(ids, options)),
      next: (id) => (calls.next++, gpt.next(id)),
    };
    const byPrefill = Float32Array.from(await queryKey(counted, context));
    await queryKey(counted, context.slice(0, 32)); // not an extension of what it holds: a prefill
    expect(calls).toEqual({ start: 2, next: 0 });
    const bySteps = await queryKey(counted, context); // 8 decode steps on the cache
    expect(calls).toEqual({ start: 2, next: 8 });
    expect(gpt.sequence).toEqual(context);
    expect(Math.max(...byPrefill.map((x, i) => Math.abs(x - bySteps[i]!)))).toBeLessThan(1e-3);
    expect(Math.max(...byPrefill.map(Math.abs))).toBeGreaterThan(0.1);

    // With extend (GptModel has it), the 8 new tokens go in one call, and the key is the same.
    const calls2 = { start: 0, next: 0, extend: 0 };
    const batched: QueryGpt = {
      ...counted,
      get sequence() {
        return gpt.sequence;
      },
      start: (ids, options) => (calls2.start++, gpt.start(ids, options)),
      next: (id) => (calls2.next++, gpt.next(id)),
      extend: (ids) => (calls2.extend++, gpt.extend(ids)),
    };
    await queryKey(batched, context.slice(0, 32));
    const byExtend = await queryKey(batched, context);
    expect(calls2).toEqual({ start: 1, next: 0, extend: 1 });
    expect(gpt.sequence).toEqual(context);
    expect(Math.max(...byPrefill.map((x, i) => Math.abs(x - byExtend[i]!)))).toBeLessThan(1e-3);
  });

  it('the random-neighbour control draws k places seeded by the query, skips excluded documents, and runs no search', async () => {
    const chunk = retro.hp.chunk;
    let keyCalls = 0;
    const counting: QueryGpt = { manifest: gpt.manifest, get sequence() { return gpt.sequence; }, start: (ids, o) => (keyCalls++, gpt.start(ids, o)), next: (id) => gpt.next(id) };
    const source = alignedNeighbourSource({ queryGpt: () => counting, datastore: () => other, chunk: () => chunk });
    const context = Array.from(evalIds.subarray(0, 24));
    const query = context.slice(-chunk);
    const a = await source(query, 2, { context, random: true });
    const b = await source(query, 2, { context, random: true });
    expect(keyCalls).toBe(0);
    expect(a).toHaveLength(2);
    expect(b).toEqual(a);
    for (const n of a) expect(Number.isNaN((n as { distance: number }).distance)).toBe(true);
    const other2 = await source(query, 2, { context: Array.from(evalIds.subarray(1, 25)), random: true });
    expect(other2.map((n) => (n as { tokenIds: ArrayLike<number> }).tokenIds)).not.toEqual(a.map((n) => (n as { tokenIds: ArrayLike<number> }).tokenIds));
    const firstDoc = (a[0] as { docId: number }).docId;
    const without = await source(query, 2, { context, random: true, excludeDocIds: [firstDoc] });
    expect(without.every((n) => (n as { docId: number }).docId !== firstDoc)).toBe(true);
    // The real search, for contrast, asks the GPT for its key and returns finite distances.
    const real = await source(query, 2, { context });
    expect(keyCalls).toBe(1);
    expect(real.every((n) => Number.isFinite((n as { distance: number }).distance))).toBe(true);
  });

  it('GptModel.extend past the window restarts from the last context - overflowDrop tokens, like next', async () => {
    const window = gpt.manifest.hyperparameters.context;
    const ids = Array.from(evalIds.subarray(0, window + 8));
    await gpt.start(ids.slice(0, window - 4));
    const out = await gpt.extend(ids.slice(window - 4));
    expect(out.restarted).toBe(true);
    expect(gpt.sequence).toEqual(ids);
    await expect(gpt.extend([])).rejects.toThrow(RangeError);
  });

  it('RETRO reads its continuation through aligned neighbours (leakage), and random entries do not help', async () => {
    const hp = retro.hp;
    const base = { chunk: hp.chunk, k: hp.neighbours, K: hp.neighbours, neighbourLen: hp.neighbour_len, eotId: retro.manifest.tokenizer.eot_id, queryModel: gpt };
    const options = { context: 256, stride: 128 };
    const g = await evaluatePerplexity(gpt, evalIds, options);
    const leak = await evaluatePerplexity(retro, evalIds, { ...options, neighbours: alignedWindowNeighbours({ ...base, mode: 'leakage', stores: [other, leaked] }) });
    const random = await evaluatePerplexity(retro, evalIds, { ...options, neighbours: alignedWindowNeighbours({ ...base, mode: 'random', stores: [other] }) });
    expect(leak.token_ppl, `leakage ${leak.token_ppl} vs GPT ${g.token_ppl}`).toBeLessThan(0.5 * g.token_ppl);
    expect(random.token_ppl, `random ${random.token_ppl} vs GPT ${g.token_ppl}`).toBeGreaterThan(0.95 * g.token_ppl);
  }, LONG);
});
