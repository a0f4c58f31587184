/**
 * kNN-LM end to end on the shipped GPT (WASM): a datastore built from a few thousand tokens of
 * WikiText-2 valid, the eval, generation and the explanation. With the evaluated text itself in
 * the datastore (leakage) every context finds itself at distance ~0, so the kNN-LM's perplexity
 * must collapse far below the GPT's; without it, it must not.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataDir } from '../datastore/node';
import { parseDocuments } from '../datastore/parse';
import { evaluatePerplexity } from '../eval/perplexity';
import { generate } from '../generate/loop';
import { GptModel } from '../models/gpt';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { loadTokenizer, type RetroTokenizer } from '../tokenizer';
import { addIvfToShard, buildKnnShard, tokenStream } from './build';
import { KnnIndex } from './search';
import { KnnDatastore } from './datastore';
import { evaluateKnnLm } from './eval';
import { logSoftmax } from './interpolate';
import { KnnLmModel } from './model';

const TOKENS = 2600;
const LONG = 180_000;

describe('kNN-LM on the shipped GPT', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  let tokenizer: RetroTokenizer;
  let evalIds: Uint16Array | Int32Array;
  /** the evaluated text itself */
  let leaked: KnnDatastore;
  /** other text (the test split) */
  let other: KnnDatastore;

  beforeAll(async () => {
    runtime = await Runtime.create({ prefer: 'wasm' });
    const dir = join(MODELS_DIR, GPT_ID);
    gpt = await GptModel.load(runtime, nodeModelFiles(dir));
    tokenizer = loadTokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), { id: gpt.manifest.tokenizer.id });
    const read = (split: string) => parseDocuments(new Uint8Array(readFileSync(join(dataDir(), 'wikitext-2', `wiki.${split}.tokens`))), `wiki.${split}.tokens`, 'wikitext');
    const valid = read('valid');
    evalIds = (await tokenStream(valid, tokenizer, TOKENS)).ids;
    leaked = KnnDatastore.fromShard((await buildKnnShard(valid, { name: 'valid head', tokenizer, model: gpt, maxTokens: TOKENS })).shard);
    other = KnnDatastore.fromShard((await buildKnnShard(read('test'), { name: 'test head', tokenizer, model: gpt, maxTokens: TOKENS, pca: 64 })).shard);
  }, LONG);

  afterAll(async () => {
    await gpt?.dispose();
  });

  it('keys reproduce: each eval context finds its own datastore entry first', async () => {
    const w = await gpt.start(Array.from(evalIds.subarray(0, 200)), { allLogits: true });
    const d = gpt.manifest.hyperparameters.d_model;
    for (const t of [0, 57, 199]) {
      const hit = leaked.search(w.knnKeys!.subarray(t * d, (t + 1) * d), 4);
      expect(hit.ids[0]).toBe(t);
      expect(leaked.value(t)).toBe(evalIds[t + 1]);
      // Only int8 rounding separates the query from its stored key; other contexts are far.
      expect(hit.distances[0]!).toBeLessThan(0.05 * hit.distances[1]!);
    }
  }, LONG);

  // The built-in datastore keeps its keys once, list by list, in the IVF index's WebAssembly memory,
  // and the exact search scans every list there. On real keys (PCA-64 int8, as the built-in) it must
  // give what the entry-order scan gives: the same ids in the same order (ties: smaller id first),
  // the same distances, for whole-datastore and prefix searches, opened from bytes or read by pieces.
  it('the exact search over the list-ordered keys equals the entry-order exact scan on real keys', async () => {
    const section = other.section;
    expect(section.encoding).toBe('int8');
    const entryOrder = KnnIndex.fromCodes(section.codes!, section.scales!, section.dim);
    const { bytes } = addIvfToShard(other.shard, { lists: 16, sample: 1000 });
    const opened = KnnDatastore.open(bytes.slice(), { index: 'ivf' });
    const read = await KnnDatastore.load({ byteLength: bytes.length, read: async (offset, length) => bytes.slice(offset, offset + length) });
    // Pieces of 3 keys, read into the caller's buffer as a file source does: CRC chaining, the
    // writer's offsets across pieces and the reused buffer are all crossed thousands of times.
    const fileLike = { byteLength: bytes.length, read: async (offset: number, length: number, into?: Uint8Array) => {
      const out = into ? into.subarray(0, length) : new Uint8Array(length);
      out.set(bytes.subarray(offset, offset + length));
      return out;
    } };
    const inPieces = await KnnDatastore.load(fileLike, { pieceBytes: 3 * other.section.dim });
    for (const ds of [opened, read, inPieces]) {
      expect(ds.section.codes).toBeNull();
      expect(ds.index).not.toBeInstanceOf(KnnIndex);
      expect(ds.index.backend).toBe('wasm-simd');
    }
    const w = await gpt.start(Array.from(evalIds.subarray(0, 256)), { allLogits: true });
    const d = gpt.manifest.hyperparameters.d_model;
    let compared = 0;
    for (let t = 0; t < 256; t += 5) {
      const query = other.project(w.knnKeys!.subarray(t * d, (t + 1) * d)).slice();
      // Prefixes up to an eighth of the entries are searched in a copy of their own keys; larger ones scan every list.
      const eighth = Math.floor(other.size / 8);
      for (const [k, limit] of [[1, other.size], [16, other.size], [1024, other.size], [64, 700], [1024, 1500], [8, 3], [1024, eighth], [7, eighth - 40], [64, eighth + 1]] as const) {
        const want = entryOrder.search(query, k, limit);
        for (const ds of [opened, read, inPieces]) {
          const got = ds.index.search(query, k, limit);
          expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
          expect(Array.from(got.distances)).toEqual(Array.from(want.distances));
          compared++;
        }
      }
      // Distances by entry (RetoMaton's pointers, random neighbours) read the same keys.
      const entries = [0, 1, t, other.size - 1];
      expect(Array.from(read.distancesTo(w.knnKeys!.subarray(t * d, (t + 1) * d), entries))).toEqual(entries.map((e) => Math.fround(entryOrder.exactDistance(query, e))));
    }
    expect(compared).toBe(52 * 9 * 3);
  }, LONG);

  it('with the eval text in the datastore, perplexity collapses; with other text, it does not', async () => {
    const settings = [{ lambda: 0.25, k: 1024, temperature: 1 }, { lambda: 0, k: 16, temperature: 1 }];
    const leak = await evaluateKnnLm(gpt, leaked, evalIds, { context: 256, stride: 128, settings });
    expect(leak.scored_tokens).toBe(TOKENS - 1);
    expect(leak.target_in_neighbours).toBe(1);
    // λ = 0.25 caps the gain at p >= 0.25 p_kNN: ppl below ~4-6 when p_kNN(target) ≈ 1.
    expect(leak.knnlm[0]!.token_ppl).toBeLessThan(leak.lm.token_ppl / 10);
    expect(leak.knnlm[0]!.token_ppl).toBeLessThan(8);
    expect(leak.knnlm[1]!.token_ppl).toBeCloseTo(leak.lm.token_ppl, 6); // λ = 0 is the GPT

    const clean = await evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings });
    expect(clean.lm.token_ppl).toBeCloseTo(leak.lm.token_ppl, 6);
    expect(clean.target_in_neighbours).toBeLessThan(1);
    expect(Number.isFinite(clean.knnlm[0]!.token_ppl)).toBe(true);
    expect(clean.knnlm[0]!.token_ppl).toBeGreaterThan(leak.lm.token_ppl / 3);
  }, LONG);

  it('runs unchanged through evaluatePerplexity and gives the same numbers', async () => {
    const settings = { lambda: 0.3, k: 64, temperature: 2 };
    const model = new KnnLmModel(gpt, leaked, { settings, ownsModel: false });
    // TODO(eval owner): evaluatePerplexity takes GptModel | RetroModel; KnnLmModel has the same forwardBatch.
    const viaEval = await evaluatePerplexity(model as unknown as GptModel, evalIds, { context: 256, stride: 128, batch: 2, maxWindows: 3 });
    const direct = await evaluateKnnLm(gpt, leaked, evalIds, { context: 256, stride: 128, maxWindows: 3, settings: [settings] });
    expect(viaEval.scored_tokens).toBe(direct.scored_tokens);
    expect(viaEval.token_ppl).toBeCloseTo(direct.knnlm[0]!.token_ppl, 3);
    expect(direct.knnlm[0]!.token_ppl).toBeLessThan(direct.lm.token_ppl / 5);
  }, LONG);

  it('stops between windows when a later task aborts it (a worker handles Stop as a message)', async () => {
    const controller = new AbortController();
    let done = 0;
    // A macrotask: it only runs if the evaluation returns to the event loop between windows.
    setTimeout(() => controller.abort(), 0);
    const run = evaluateKnnLm(gpt, leaked, evalIds, {
      context: 256,
      stride: 128,
      maxWindows: 3,
      settings: [{ lambda: 0.3, k: 64, temperature: 2 }],
      signal: controller.signal,
      onProgress: (d) => (done = d),
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(done).toBeLessThan(3);
  }, LONG);

  it('generates through the shared loop: with leakage and a high λ it continues the datastore text', async () => {
    const model = new KnnLmModel(gpt, leaked, { settings: { lambda: 0.8, k: 32, temperature: 1 }, ownsModel: false });
    // From the stream's start, the prompt is exactly the context the datastore's first window saw.
    const prompt = Array.from(evalIds.subarray(0, 40));
    const summary = await generate(model, prompt, { temperature: 0, topK: 0, topP: 1, seed: 1, maxNewTokens: 12, stopTokenId: null });
    expect(summary.tokenIds).toEqual(Array.from(evalIds.subarray(40, 52)));
    // The GPT alone does not (an early checkpoint on unseen-ish text): otherwise this proves nothing.
    const plain = await generate(gpt, prompt, { temperature: 0, topK: 0, topP: 1, seed: 1, maxNewTokens: 12, stopTokenId: null });
    expect(plain.tokenIds).not.toEqual(summary.tokenIds);
  }, LONG);

  it('RetoMaton: following pointers skips searches; on the evaluated text itself most are skipped and perplexity stays collapsed', async () => {
    const settings = [{ lambda: 0.25, k: 1024, temperature: 1 }];
    const plain = await evaluateKnnLm(gpt, leaked, evalIds, { context: 256, stride: 128, settings, maxWindows: 3 });
    const pointed = await evaluateKnnLm(gpt, leaked, evalIds, { context: 256, stride: 128, settings, maxWindows: 3, pointers: 1 });
    expect(plain.searches_skipped).toBe(0);
    expect(pointed.scored_tokens).toBe(plain.scored_tokens);
    // Each window's first target searches; afterwards the text's own entry keeps pointing on.
    expect(pointed.searches_skipped).toBeGreaterThan(0.9 * pointed.scored_tokens);
    expect(pointed.search.queries + pointed.searches_skipped).toBe(pointed.scored_tokens);
    expect(pointed.knnlm[0]!.token_ppl).toBeLessThan(8);
    // On other text fewer pointers survive: a high threshold searches at every token, as the plain kNN-LM.
    const strict = await evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings, maxWindows: 2, pointers: 100_000 });
    const cleanPlain = await evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings, maxWindows: 2 });
    expect(strict.searches_skipped).toBe(0);
    expect(strict.knnlm[0]!.token_ppl).toBeCloseTo(cleanPlain.knnlm[0]!.token_ppl, 6);
  }, LONG);

  it('RetoMaton in generation: the same text with fewer searches when the datastore holds it', async () => {
    const prompt = Array.from(evalIds.subarray(0, 40));
    const greedy = { temperature: 0, topK: 0, topP: 1, seed: 1, maxNewTokens: 12, stopTokenId: null };
    const model = new KnnLmModel(gpt, leaked, { settings: { lambda: 0.8, k: 32, temperature: 1, pointers: 1 }, ownsModel: false });
    const summary = await generate(model, prompt, greedy);
    expect(summary.tokenIds).toEqual(Array.from(evalIds.subarray(40, 52)));
    // The prompt's prefill searched; every written token after the first followed a pointer.
    expect(model.searches).toEqual({ run: 1, skipped: 11, saved: 0 });
    expect(model.lastSearched).toBe(false);
  }, LONG);

  it('adaptive: θ off and a constant λ table is the plain kNN-LM exactly; a θ every token reaches is the GPT, with no search', async () => {
    const plain = { lambda: 0.4, k: 256, temperature: 5 };
    const settings = [
      plain,
      { ...plain, skipAbove: 0, lambdaTable: { edges: [10, 50, 200], lambdas: [0.4, 0.4, 0.4, 0.4] } },
      { ...plain, skipAbove: 0.3 },
      { ...plain, lambdaTable: { edges: [1e9], lambdas: [0, 0.4] } },
    ];
    const r = await evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings, maxWindows: 3 });
    expect(r.knnlm[1]!.nll).toBe(r.knnlm[0]!.nll);
    expect(r.knnlm[1]!.skipped).toBe(0);
    // Every distance is below the table's only edge: λ = 0 throughout, the GPT's numbers.
    expect(r.knnlm[3]!.token_ppl).toBeCloseTo(r.lm.token_ppl, 6);
    // θ = 0.3 skips some targets but not all; the search ran anyway for the other settings.
    expect(r.knnlm[2]!.skipped).toBeGreaterThan(0);
    expect(r.knnlm[2]!.skipped).toBeLessThan(r.scored_tokens);
    expect(r.searches_saved).toBe(0);
    expect(r.search.queries).toBe(r.scored_tokens);
    // Alone, θ = 0.3 saves exactly those searches and gives the same score.
    const alone = await evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings: [settings[2]!], maxWindows: 3 });
    expect(alone.searches_saved).toBe(r.knnlm[2]!.skipped);
    expect(alone.search.queries).toBe(r.scored_tokens - r.knnlm[2]!.skipped);
    expect(alone.knnlm[0]!.nll).toBeCloseTo(r.knnlm[2]!.nll, 9);
    // The skipped targets took p_LM alone: with a θ every token reaches, the GPT and no search.
    const all = await evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings: [{ ...plain, skipAbove: 1e-9 }], maxWindows: 2 });
    expect(all.search.queries).toBe(0);
    expect(all.knnlm[0]!.token_ppl).toBeCloseTo(all.lm.token_ppl, 6);
  }, LONG);

  it('a data-size sweep: each fraction is the kNN-LM over a datastore of just the first entries, from one forward', async () => {
    const plain = { lambda: 0.4, k: 256, temperature: 5 };
    const settings = [plain, { ...plain, fraction: 0.5 }, { ...plain, lambda: 0.2, fraction: 0.5 }, { ...plain, fraction: 0.1 }, { ...plain, fraction: 1 }];
    const r = await evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings, maxWindows: 2 });
    // One search per target per distinct prefix (the whole, half, a tenth).
    expect(r.search.queries).toBe(3 * r.scored_tokens);
    expect(r.knnlm[4]!.nll).toBe(r.knnlm[0]!.nll);
    // The reference: a datastore holding only the first entries (the shard cut, PCA and all).
    const section = other.section;
    const dim = section.dim;
    for (const [i, fraction] of [[1, 0.5], [2, 0.5], [3, 0.1]] as const) {
      const n = other.prefixLimit(fraction);
      const cut = KnnDatastore.fromShard({
        ...other.shard,
        knnlm: { ...section, codes: section.codes!.slice(0, n * dim), scales: section.scales!.slice(0, n), values: section.values.slice(0, n), textOffsets: section.textOffsets?.slice(0, n + 1) ?? null },
      });
      expect(cut.size).toBe(n);
      const alone = await evaluateKnnLm(gpt, cut, evalIds, { context: 256, stride: 128, settings: [{ ...settings[i]!, fraction: 1 }], maxWindows: 2 });
      expect(r.knnlm[i]!.nll).toBeCloseTo(alone.knnlm[0]!.nll, 6);
    }
    // The generating model takes the same setting: its neighbours all come from the prefix.
    const model = new KnnLmModel(gpt, other, { settings: { ...plain, fraction: 0.1 }, ownsModel: false });
    await model.start(Array.from(evalIds.subarray(0, 40)), { allLogits: true });
    const entries = model.explainablePositions.flatMap((p) => model.explain(p, { topNeighbours: 256 }).neighbours.map((n) => n.entry));
    expect(entries.length).toBeGreaterThan(1000);
    expect(Math.max(...entries)).toBeLessThan(other.prefixLimit(0.1));
    // Less data, other neighbours: the fractions do not all score alike.
    expect(new Set([r.knnlm[0]!.nll, r.knnlm[1]!.nll, r.knnlm[3]!.nll]).size).toBe(3);
    await expect(evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings: [{ ...plain, fraction: 0 }], maxWindows: 1 })).rejects.toThrow(/fraction/);
    await expect(evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings: [plain, { ...plain, fraction: 0.5 }], pointers: 2, maxWindows: 1 })).rejects.toThrow(/fraction/);
    await expect(evaluateKnnLm(gpt, other, evalIds, { context: 256, stride: 128, settings: [{ ...plain, fraction: 0.5 }], random: true, maxWindows: 1 })).rejects.toThrow(/fraction/);
  }, LONG);

  it('adaptive in the model: skipped rows are p_LM alone and counted; the explanation gives the λ used', async () => {
    const ids = Array.from(evalIds.subarray(0, 120));
    const V = gpt.info.vocabSize;
    const gptLogits = (await gpt.start(ids, { allLogits: true })).logits;
    const lambdaTable = { edges: [20, 60], lambdas: [0.9, 0.5, 0.1] };
    const model = new KnnLmModel(gpt, other, { settings: { lambda: 0.25, k: 64, temperature: 5, skipAbove: 0.3, lambdaTable }, ownsModel: false });
    const out = await model.start(ids, { allLogits: true });
    expect(model.searches.saved).toBeGreaterThan(0);
    expect(model.searches.run + model.searches.saved).toBe(ids.length);
    let sawSkip = false;
    let sawSearch = false;
    for (const p of model.explainablePositions) {
      const e = model.explain(p);
      const row = logSoftmax(gptLogits, p * V, V);
      let top = -Infinity;
      for (let j = 0; j < V; j++) top = Math.max(top, row[j]!);
      expect(e.retrieval.lmTop).toBeCloseTo(Math.exp(top), 5);
      if (Math.abs(Math.exp(top) - 0.3) > 1e-4) expect(e.retrieval.skipped).toBe(Math.exp(top) >= 0.3);
      if (e.retrieval.skipped) {
        sawSkip = true;
        expect(e.retrieval).toMatchObject({ skipped: true, searched: false, lambda: 0 });
        expect(e.neighbours).toEqual([]);
        // p_LM alone: the row is the GPT's
        const next = ids[p + 1];
        if (next !== undefined) expect(out.logits[p * V + next]!).toBeCloseTo(row[next]!, 5);
      } else {
        sawSearch = true;
        const d = e.retrieval.nearest!;
        const expected = d < 20 ? 0.9 : d < 60 ? 0.5 : 0.1;
        expect(e.retrieval).toMatchObject({ skipped: false, searched: true, lambda: expected });
        expect(e.settings.lambda).toBe(expected);
        if (e.next) expect(e.next.mix).toBeCloseTo(expected * e.next.knn + (1 - expected) * e.next.lm, 5);
      }
    }
    expect(sawSkip && sawSearch).toBe(true);
  }, LONG);

  it('explains a position: three distributions, the next token, and the entries with their text', async () => {
    const model = new KnnLmModel(gpt, leaked, { settings: { lambda: 0.25, k: 256, temperature: 1 }, ownsModel: false });
    const ids = Array.from(evalIds.subarray(0, 120));
    const out = await model.start(ids, { allLogits: true });
    const V = gpt.info.vocabSize;
    const p = 80;
    const e = model.explain(p, { topNeighbours: 5 });
    expect(e.next!.tokenId).toBe(ids[p + 1]);
    expect(e.neighbours[0]!.entry).toBe(p);
    expect(e.neighbours[0]!.tokenId).toBe(ids[p + 1]);
    expect(e.neighbours[0]!.tokenText).toBe(tokenizer.decode([ids[p + 1]!]));
    expect(tokenizer.decode(ids.slice(0, p + 1)).endsWith(e.neighbours[0]!.textBefore.slice(-40))).toBe(true);
    expect(e.next!.mix).toBeCloseTo(0.25 * e.next!.knn + 0.75 * e.next!.lm, 5);
    expect(Math.exp(out.logits[p * V + ids[p + 1]!]!)).toBeCloseTo(e.next!.mix, 5);
    expect(e.mix[0]!.probability).toBeGreaterThanOrEqual(e.next!.mix - 1e-6);
    expect(e.knn.reduce((s, t) => s + t.probability, 0)).toBeLessThanOrEqual(1 + 1e-9);
    // Re-mixing with λ = 0 gives back the GPT.
    expect(model.explain(p, { settings: { lambda: 0 } }).next!.mix).toBeCloseTo(e.next!.lm, 6);
    const gptRow = logSoftmax((await gpt.start(ids, { allLogits: true })).logits, p * V, V);
    expect(e.next!.lm).toBeCloseTo(Math.exp(gptRow[ids[p + 1]!]!), 5);
    expect(() => model.explain(500)).toThrow(RangeError);
  }, LONG);
});
