import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShard } from '../datastore/builder';
import { Datastore } from '../datastore/datastore';
import { GptModel } from '../models/gpt';
import { RetroModel } from '../models/retro';
import { GPT_ID, MODELS_DIR, RETRO_ID } from '../models/test-support';
import { MeanEmbedder } from '../retrieval/embedder';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import type { RetroTokenizer } from '../tokenizer';
import { readEmbedder, readTokenizer } from '../datastore/node';
import { datastoreEvalStore, windowNeighbours, withLeakedStream } from './neighbours';
import { evaluatePerplexity, selectWindows, streamWindows } from './perplexity';

describe('streamWindows', () => {
  it('scores every token but the first exactly once', () => {
    for (const n of [2, 200, 257, 258, 600, 1000]) {
      const counts = new Array<number>(n).fill(0);
      for (const w of streamWindows(n, 256, 128)) {
        for (let t = w.firstScored; t < w.length - 1; t++) counts[w.start + t + 1]!++;
      }
      expect(counts[0]).toBe(0);
      expect(counts.slice(1).every((c) => c === 1)).toBe(true);
    }
    expect(streamWindows(1000, 256, 128).map((w) => w.start)).toEqual([0, 128, 256, 384, 512, 640, 768]);
    expect(streamWindows(1000, 256, 128, 2)).toHaveLength(2);
  });

  it('splits into window ranges that together are the whole protocol, and refuses bad ranges', () => {
    const all = streamWindows(1000, 256, 128);
    const parts = [selectWindows(all, { start: 0, end: 3 }), selectWindows(all, { start: 3, end: 7 })];
    expect(parts.flat()).toEqual(all);
    expect(selectWindows(all, undefined)).toBe(all);
    expect(() => selectWindows(all, { start: 3, end: 3 })).toThrow(RangeError);
    expect(() => selectWindows(all, { start: -1, end: 2 })).toThrow(RangeError);
  });
});

const ARTICLES = [
  ' = Alpha River = \n The Alpha River flows north through the valley for 120 miles before it joins the sea near the old harbour town . \n',
  ' = Beta Castle = \n Beta Castle was built in the twelfth century by a local lord and was rebuilt twice after fires in 1402 and 1688 . \n',
  ' = Gamma Song = \n " Gamma Song " is a single by the band Delta , released in 1999 ; it reached number four on the charts . \n',
];

describe('perplexity on the shipped models', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  let retro: RetroModel;
  let tokenizer: RetroTokenizer;
  let embedder: MeanEmbedder;
  let stream: number[];

  beforeAll(async () => {
    runtime = await Runtime.create();
    gpt = await GptModel.load(runtime, nodeModelFiles(join(MODELS_DIR, GPT_ID)));
    retro = await RetroModel.load(runtime, nodeModelFiles(join(MODELS_DIR, RETRO_ID)));
    const dir = join(MODELS_DIR, RETRO_ID);
    tokenizer = readTokenizer(join(dir, 'tokenizer.json'));
    const e = retro.manifest.embedder!;
    embedder = readEmbedder(join(dir, e.file), e.vocab_size, e.dim, e.id);
    const once = tokenizer.encodeDocuments(ARTICLES).flat();
    stream = [];
    while (stream.length < 420) stream.push(...once);
  });

  afterAll(async () => {
    await gpt?.dispose();
    await retro?.dispose();
  });

  it('equals the log-likelihood summed from the sequence path, whatever the batch', async () => {
    const V = gpt.info.vocabSize;
    const one = await evaluatePerplexity(gpt, stream, { context: 256, stride: 128, batch: 1 });
    const three = await evaluatePerplexity(gpt, stream, { context: 256, stride: 128, batch: 3, words: 100 });
    expect(three.nll).toBeCloseTo(one.nll, 2);
    let nll = 0;
    let scored = 0;
    for (const w of streamWindows(stream.length, 256, 128)) {
      const logits = (await gpt.start(stream.slice(w.start, w.start + w.length - 1), { allLogits: true })).logits;
      for (let t = w.firstScored; t < w.length - 1; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
        const lse = Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0)) + max;
        nll += lse - row[stream[w.start + t + 1]!]!;
        scored++;
      }
    }
    expect(one.scored_tokens).toBe(scored);
    expect(one.scored_tokens).toBe(stream.length - 1);
    expect(one.nll).toBeCloseTo(nll, 1);
    expect(three.word_ppl).toBeCloseTo(Math.exp(three.nll / 100), 6);
  });

  it('RETRO neighbours: real, random (seeded) and leakage (the chunk itself comes back)', async () => {
    const { chunk: C, neighbours: K, neighbour_len: L } = retro.hp;
    const eot = retro.manifest.tokenizer.eot_id;
    const built = await buildShard(
      ARTICLES.map((text, i) => ({ title: `doc ${i}`, text: text.replace(/[0-9]+/g, (d) => String(Number(d) + 1)) })),
      { name: 'test', tokenizer, embedder, chunkSize: C, neighbourLen: L },
    );
    const store = datastoreEvalStore(Datastore.fromShard(built.shard, embedder));
    const inputs = Int32Array.from(stream.slice(0, 256));
    const window = { start: 0, length: 257, firstScored: 0 };
    const options = { chunk: C, k: K, K, neighbourLen: L, eotId: eot };

    const real = await windowNeighbours(store, { ...options, mode: 'real' })(inputs, window);
    expect(real.length).toBe((256 / C) * K * L);
    const random1 = await windowNeighbours(store, { ...options, mode: 'random', seed: 3 })(inputs, window);
    const random2 = await windowNeighbours(store, { ...options, mode: 'random', seed: 3 })(inputs, window);
    expect(Array.from(random1)).toEqual(Array.from(random2));
    expect(Array.from(random1)).not.toEqual(Array.from(real));

    const leaked = withLeakedStream(store, Int32Array.from(stream), embedder, C, L, eot);
    const leak = await windowNeighbours(leaked, { ...options, mode: 'leakage' })(inputs, window);
    for (let u = 0; u < 256 / C; u++) {
      const top = Array.from(leak.subarray(u * K * L, u * K * L + L));
      const expected = stream.slice(u * C, u * C + L);
      while (expected.length < L) expected.push(eot);
      expect(top).toEqual(expected);
    }

    // Scores through the model: the leaked continuation is in the neighbours, so it cannot hurt much
    // on this toy store, and both runs are finite and deterministic.
    const withReal = await evaluatePerplexity(retro, stream, { context: 256, stride: 128, neighbours: windowNeighbours(store, { ...options, mode: 'real' }) });
    const again = await evaluatePerplexity(retro, stream, { context: 256, stride: 128, batch: 2, neighbours: windowNeighbours(store, { ...options, mode: 'real' }) });
    expect(Number.isFinite(withReal.token_ppl)).toBe(true);
    expect(again.nll).toBeCloseTo(withReal.nll, 2);
  });
});
