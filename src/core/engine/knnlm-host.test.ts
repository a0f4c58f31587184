/**
 * The inference engine's kNN-LM host on the shipped GPT (WASM, Node): kNN-LM keys attached to a
 * chunk datastore built from real text, the datastore loaded back from those bytes, a generation,
 * and explanations that survive the GPT session being used by another column afterwards.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDir, loadModelFiles } from '../datastore/node';
import { buildShard } from '../datastore/builder';
import { parseDocuments } from '../datastore/parse';
import { decodeShard, encodeShard, readShardHeader } from '../datastore/shard';
import { KnnDatastore, addIvfToShard } from '../knnlm';
import { generate } from '../generate/loop';
import { GptModel } from '../models/gpt';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { loadTokenizer, type RetroTokenizer } from '../tokenizer';
import { KnnHost } from './knnlm-host';
import { inThread } from './transfer';
import type { KnnShardBytes, NeighbourServer, Progress } from '../../protocol/api';
import { TokenBytes, TokenTexts } from './token-text';

const LONG = 180_000;

describe('KnnHost', () => {
  let gpt: GptModel;
  let tokenizer: RetroTokenizer;
  let texts: TokenTexts;
  let chunkShard: Uint8Array;
  let withKeys: Uint8Array;
  let text: string;
  const shards = new Map<string, Uint8Array>();
  /** Shards stored as Blobs (how the retrieval engine stores kNN-LM-only ones) */
  const blobs = new Map<string, Blob>();
  const server = {
    knnShard: async (id: string): Promise<KnnShardBytes> => {
      const blob = blobs.get(id);
      if (blob) return { id, name: `store ${id}`, blob };
      const bytes = shards.get(id);
      if (!bytes) throw new Error(`no ${id}`);
      // The worker transfers the buffer; hand over a copy so the test keeps its own.
      return { id, name: `store ${id}`, bytes: bytes.slice() };
    },
  } as unknown as NeighbourServer;
  let busy = false;
  let host: KnnHost;

  beforeAll(async () => {
    const runtime = await Runtime.create({ prefer: 'wasm' });
    const dir = join(MODELS_DIR, GPT_ID);
    gpt = await GptModel.load(runtime, nodeModelFiles(dir));
    const tokenizerJson: unknown = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
    tokenizer = loadTokenizer(tokenizerJson, { id: gpt.manifest.tokenizer.id });
    texts = new TokenTexts(new TokenBytes(tokenizerJson));
    host = new KnnHost({ gpt: () => gpt, tokenizer: () => tokenizer, texts: () => texts, server: () => server, busy: () => busy, transfer: inThread });

    // A few paragraphs of WikiText-2 valid as a "dropped file": a chunk datastore first, as the retrieval engine builds it.
    text = readFileSync(join(dataDir(), 'wikitext-2', 'wiki.valid.tokens'), 'utf8').slice(0, 3000);
    const documents = parseDocuments(new TextEncoder().encode(text), 'lobster.txt', 'txt');
    const files = loadModelFiles({});
    chunkShard = (await buildShard(documents, { name: 'Lobster', tokenizer: files.tokenizer, embedder: files.embedder, chunkSize: files.chunkSize, neighbourLen: files.neighbourLen })).bytes;
  }, LONG);

  afterAll(async () => {
    await host?.unload();
    await gpt?.dispose();
  });

  it('attaches kNN-LM keys to a chunk datastore, keeping its chunks, with progress in tokens', async () => {
    const events: Progress[] = [];
    withKeys = await host.keyBuilder.attachKeys(chunkShard.slice(), (p) => void events.push(p));
    const before = decodeShard(chunkShard);
    const after = decodeShard(withKeys);
    expect(after.chunkLengths).toEqual(before.chunkLengths);
    expect(after.titles).toEqual(before.titles);
    expect(after.meta.knnlm?.model.decoderSha256).toBe(gpt.manifest.onnx.decoder.sha256);
    const entries = after.meta.knnlm!.count;
    expect(entries).toBe(tokenizer.encode(text).length - 1);
    const keys = events.filter((e) => e.phase === 'kNN-LM keys (running the GPT)');
    expect(keys.at(-1)).toMatchObject({ done: entries, total: entries, unit: 'tokens' });
    expect(keys.some((e) => (e.rate ?? 0) > 0)).toBe(true);
    expect(host.building).toBe(false);
  }, LONG);

  it('cancel rejects with AbortError and frees the GPT', async () => {
    const run = host.keyBuilder.attachKeys(chunkShard.slice(), () => undefined);
    host.keyBuilder.cancel();
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(host.building).toBe(false);
  }, LONG);

  it('loads the datastore, generates, and explains after the GPT session was used by another column', async () => {
    shards.set('lobster', withKeys);
    const state = await host.load('lobster', () => undefined);
    expect(state).toMatchObject({ datastoreId: 'lobster', name: 'store lobster', entries: decodeShard(withKeys).meta.knnlm!.count });
    const model = host.active!;
    model.setSettings({ lambda: 0.5, k: 64, temperature: 10 });
    const ids = tokenizer.encode(text);
    const prompt = ids.slice(0, 60);
    const summary = await generate(model, prompt, { temperature: 0, topK: 0, topP: 1, seed: 1, maxNewTokens: 4, stopTokenId: null });
    // The text is in the datastore: greedy kNN-LM continues it.
    expect(summary.tokenIds).toEqual(ids.slice(60, 64));

    // The 'gpt' column (same session) runs something else afterwards.
    await gpt.start(ids.slice(100, 140));

    // Generated token j was drawn from the distribution after position prompt.length + j - 1.
    for (let j = 0; j < 4; j++) {
      const e = host.explain(prompt.length + j - 1, {}, summary.tokenIds[j]);
      expect(e.next?.tokenId).toBe(summary.tokenIds[j]);
      expect(e.next!.mix).toBeCloseTo(0.5 * e.next!.knn + 0.5 * e.next!.lm, 5);
      expect(e.neighbours[0]!.title).toBe('lobster.txt');
      expect(e.tokenTexts[e.next!.tokenId]).toBe(tokenizer.decode([e.next!.tokenId]));
    }
    // A token of another run is refused rather than explained with the wrong "next".
    expect(() => host.explain(prompt.length, {}, (summary.tokenIds[1]! + 1) % 100)).toThrow(/earlier kNN-LM run/);
    // Re-mixing with λ = 0 gives the GPT's own probability.
    const e = host.explain(prompt.length - 1, { settings: { lambda: 0 } });
    expect(e.next!.mix).toBeCloseTo(e.next!.lm, 6);
  }, LONG);

  it('reads a datastore handed over as a Blob by pieces, keys straight into the IVF index, and searches as from bytes', async () => {
    const { bytes } = addIvfToShard(decodeShard(withKeys), { lists: 8, sample: 500 });
    blobs.set('lobster-blob', new Blob([bytes.slice()]));
    await host.load('lobster-blob', () => undefined);
    const read = host.datastore!;
    expect(read.defaultIndex).toBe('ivf');
    expect(read.section.encoding).toBe('int8');
    expect(read.section.codes).toBeNull();
    const opened = KnnDatastore.open(bytes.slice(), { index: 'ivf' });
    const w = await gpt.start(tokenizer.encode(text).slice(0, 40), { allLogits: true });
    const d = gpt.manifest.hyperparameters.d_model;
    for (let t = 0; t < 40; t += 7) {
      const key = w.knnKeys!.subarray(t * d, (t + 1) * d);
      for (const index of ['ivf', 'exact'] as const) {
        const got = read.search(key, 32, { index });
        const want = opened.search(key, 32, { index });
        expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
        expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
      }
    }
    // A damaged key fails the streamed section's checksum.
    const codes = readShardHeader(bytes).sections.find((s) => s.name === 'knnlmCodes')!;
    const damaged = bytes.slice();
    damaged[codes.offset + 3]! ^= 1;
    blobs.set('damaged', new Blob([damaged]));
    await expect(host.load('damaged', () => undefined)).rejects.toThrow(/knnlmCodes failed its checksum/);
    await host.load('lobster', () => undefined);
  }, LONG);

  it('refuses a datastore keyed by other weights with a message naming both decoders', async () => {
    const shard = decodeShard(withKeys);
    const meta = shard.meta.knnlm!;
    shards.set('other', encodeShard({ ...shard, meta: { ...shard.meta, knnlm: { ...meta, model: { ...meta.model, decoderSha256: 'f'.repeat(64) } } } }));
    await expect(host.load('other', () => undefined)).rejects.toThrow(/ffffffffffff…/);
    // The loaded one stays.
    expect(host.state?.datastoreId).toBe('lobster');
  }, LONG);

  it('measures the key-building speed once; never while the GPT is busy', async () => {
    busy = true;
    const fresh = new KnnHost({ gpt: () => gpt, tokenizer: () => tokenizer, texts: () => texts, server: () => server, busy: () => busy, transfer: inThread });
    expect(await fresh.keyRate()).toBe(0);
    busy = false;
    const rate = await fresh.keyRate();
    expect(rate).toBeGreaterThan(10);
    expect(await fresh.keyRate()).toBe(rate);
  }, LONG);
});
