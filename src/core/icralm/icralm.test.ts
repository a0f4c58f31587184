/**
 * In-Context RALM: the block protocol (plan.ts), the eval and the generation wrapper, on a fake
 * causal GPT whose logits at a position are a hash of everything before it in its input (so any
 * change in what the model reads shows up in the scores), then on the shipped GPT.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GptModel } from '../models/gpt';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { buildShard } from '../datastore/builder';
import { Datastore } from '../datastore/datastore';
import { byteTokenizer, testEmbedder, TOY_DOCUMENTS } from '../datastore/test-helpers';
import { evaluateIcRalm } from './eval';
import { datastoreRetriever } from './retriever';
import { IcRalmModel } from './model';
import { blockInput, blockQuery, trimPadding } from './plan';
import type { PassageRetriever } from './types';
import { FakeGpt, hashRow, logSoftmaxAt, loggingRetriever, passageFor, stream } from './test-fakes';

const SEP = [1];

describe('In-Context RALM blocks (plan.ts)', () => {
  it('queries the last l tokens before the block, or what there is', () => {
    const ids = stream(50);
    expect(blockQuery(ids, 1, 32)).toEqual({ start: 0, query: [ids[0]] });
    expect(blockQuery(ids, 40, 32)).toEqual({ start: 8, query: ids.slice(8, 40) });
  });

  it('fills the context: passage + separator + history + the block’s other s − 1 tokens', () => {
    const ids = stream(300);
    const passage = { tokenIds: Array.from({ length: 64 }, (_, i) => 2 + (i % 9)) };
    const block = blockInput(ids, 250, passage, [5], 4, 256);
    expect(block.history).toBe(256 - 65 - 3);
    expect(block.input.length + 3).toBe(256);
    expect(block.input.slice(0, 65)).toEqual([...passage.tokenIds, 5]);
    expect(block.input.slice(65)).toEqual(ids.slice(250 - block.history, 250));
    // Early in a stream all of the text fits; no passage means no separator either.
    expect(blockInput(ids, 10, passage, [5], 4, 256).input).toEqual([...passage.tokenIds, 5, ...ids.slice(0, 10)]);
    expect(blockInput(ids, 10, null, [5], 4, 256).input).toEqual(ids.slice(0, 10));
    // A stride near the context keeps the passage's end and one token of text.
    const tight = blockInput(ids, 250, passage, [5], 200, 256);
    expect(tight.history).toBe(1);
    expect(tight.input).toEqual([...passage.tokenIds.slice(-55), 5, ids[249]]);
  });

  it('trims the padding of a document’s short last row', () => {
    expect(trimPadding([4, 5, 1, 6, 1, 1], 1)).toEqual([4, 5, 1, 6]);
  });
});

describe('In-Context RALM eval', () => {
  const context = 24;
  const ids = stream(61);

  it('retrieves at 1, 1 + s, 1 + 2s ... with the last l tokens as query', async () => {
    for (const [stride, queryLength] of [[4, 6], [3, 32], [1, 2], [7, 5]] as const) {
      const log: number[][] = [];
      const gpt = new FakeGpt(context);
      const result = await evaluateIcRalm(gpt, ids, { settings: { stride, queryLength }, separator: SEP, retrieve: loggingRetriever(log), batch: 3 });
      const starts = Array.from({ length: Math.ceil(60 / stride) }, (_, i) => 1 + i * stride);
      expect(log).toEqual(starts.map((b) => ids.slice(Math.max(0, b - queryLength), b)));
      expect(result.blocks).toBe(starts.length);
      expect(result.scored_tokens).toBe(60);
      expect(result.retrieved).toBe(starts.length);
    }
  });

  it('equals a direct computation of every target’s probability', async () => {
    const stride = 3;
    const queryLength = 5;
    const gpt = new FakeGpt(context);
    const result = await evaluateIcRalm(gpt, ids, { settings: { stride, queryLength }, separator: SEP, retrieve: loggingRetriever([]), batch: 4 });
    let nll = 0;
    for (let j = 1; j < ids.length; j++) {
      const b = 1 + Math.floor((j - 1) / stride) * stride;
      const passage = passageFor(ids.slice(Math.max(0, b - queryLength), b)).tokenIds;
      const history = Math.min(b, context - passage.length - SEP.length - (stride - 1));
      const read = [...passage, ...SEP, ...ids.slice(b - history, j)];
      expect(read.length).toBeLessThanOrEqual(context);
      const lp = logSoftmaxAt(hashRow(read), ids[j]!);
      expect(result.logProbs[j - 1]).toBeCloseTo(lp, 10);
      nll -= lp;
    }
    expect(result.nll).toBeCloseTo(nll, 8);
    expect(result.token_ppl).toBeCloseTo(Math.exp(nll / 60), 8);
  });

  it('does not leak: a target’s score depends only on the tokens before it', async () => {
    const gpt = new FakeGpt(context);
    const options = { settings: { stride: 4, queryLength: 6 }, separator: SEP, retrieve: loggingRetriever([]) };
    const base = await evaluateIcRalm(gpt, ids, options);
    for (const k of [1, 9, 10, 12, 33, 59]) {
      const changed = [...ids];
      changed[k] = ids[k] === 2 ? 3 : 2;
      const other = await evaluateIcRalm(gpt, changed, options);
      // targets j ≤ k read only ids[< j] (and a passage retrieved from ids[< block start ≤ j]).
      for (let j = 1; j <= k; j++) {
        if (j === k) continue; // its own target changed
        expect(other.logProbs[j - 1]).toBe(base.logProbs[j - 1]);
      }
      expect(Array.from(other.logProbs.subarray(k)).some((x, i) => x !== base.logProbs[k + i])).toBe(true);
    }
  });

  it('stops at maxTokens', async () => {
    const result = await evaluateIcRalm(new FakeGpt(context), ids, { settings: { stride: 4, queryLength: 6 }, separator: SEP, retrieve: loggingRetriever([]), maxTokens: 10 });
    expect(result.scored_tokens).toBe(10);
    expect(result.blocks).toBe(3);
  });
});

describe('In-Context RALM generation wrapper', () => {
  it('scores the same tokens as the eval, retrieving every s tokens with the last l as query', async () => {
    const context = 24;
    const ids = stream(45, 5);
    for (const [stride, queryLength] of [[4, 6], [1, 3], [5, 32]] as const) {
      const evalLog: number[][] = [];
      const evaluated = await evaluateIcRalm(new FakeGpt(context), ids, { settings: { stride, queryLength }, separator: SEP, retrieve: loggingRetriever(evalLog) });
      const log: number[][] = [];
      const gpt = new FakeGpt(context);
      const model = new IcRalmModel(gpt, loggingRetriever(log), { settings: { stride, queryLength }, separator: SEP });
      let out = await model.start([ids[0]!]);
      for (let j = 1; j < ids.length; j++) {
        expect(logSoftmaxAt(out.logits, ids[j]!)).toBeCloseTo(evaluated.logProbs[j - 1]!, 10);
        if (j < ids.length - 1) out = await model.next(ids[j]!);
      }
      expect(log).toEqual(evalLog);
      expect(model.retrievals.map((r) => r.position)).toEqual(evalLog.map((_, i) => 1 + i * stride));
      expect(model.retrievals.every((r) => r.passage?.chunkIndex === passageFor(ids.slice(r.queryStart, r.position)).chunkIndex)).toBe(true);
      expect(model.sequence).toEqual(ids.slice(0, -1));
      expect(gpt.prefills.length).toBe(evalLog.length);
    }
  });

  it('starts its first block at the end of the prompt and refuses allLogits', async () => {
    const log: number[][] = [];
    const ids = stream(40);
    const model = new IcRalmModel(new FakeGpt(24), loggingRetriever(log), { settings: { stride: 4, queryLength: 8 }, separator: SEP });
    await expect(model.start(ids.slice(0, 10), { allLogits: true })).rejects.toThrow(RangeError);
    await model.start(ids.slice(0, 10));
    for (const id of ids.slice(10, 19)) await model.next(id);
    expect(log).toEqual([ids.slice(2, 10), ids.slice(6, 14), ids.slice(10, 18)]);
  });
});

describe('In-Context RALM datastore retriever', () => {
  it('returns the top chunk’s row without padding, and honours excluded documents', async () => {
    const tokenizer = byteTokenizer();
    const embedder = testEmbedder();
    const { shard } = await buildShard(TOY_DOCUMENTS, { name: 'toy', tokenizer, embedder, chunkSize: 8 });
    const datastore = Datastore.fromShard(shard, embedder);
    const query = tokenizer.encode('North Sea, through');
    const retrieve = datastoreRetriever(datastore, { eotId: 1, withText: true });
    const [passage] = await retrieve([query]);
    const top = datastore.retrieve(query, 1)[0]!;
    expect(passage!.chunkIndex).toBe(top.chunkIndex);
    expect(passage!.tokenIds).toEqual(trimPadding(top.tokenIds, 1));
    expect(passage!.title).toBe('Rivers');
    expect(passage!.text).toBe(top.text);
    const [other] = await datastoreRetriever(datastore, { eotId: 1, excludeDocIds: [top.docId] })([query]);
    expect(other!.docId).not.toBe(top.docId);
  });
});

const gptDir = join(MODELS_DIR, GPT_ID);
describe.skipIf(!existsSync(join(gptDir, 'manifest.json')))('In-Context RALM on the shipped GPT', () => {
  it('generation and eval agree on real logits', async () => {
    const runtime = await Runtime.create({ prefer: 'wasm' });
    const gpt = await GptModel.load(runtime, nodeModelFiles(gptDir));
    try {
      const vocab = gpt.info.vocabSize;
      const ids = Array.from({ length: 90 }, (_, i) => 300 + ((i * 37) % 2000));
      const pool = Array.from({ length: 8 }, (_, r) => Array.from({ length: 64 }, (_, i) => 400 + ((r * 131 + i * 17) % 3000)));
      const retrieve: PassageRetriever = async (queries) => queries.map((q) => ({ tokenIds: pool[q.reduce((a, x) => a + x, 0) % pool.length]! }));
      const settings = { stride: 4, queryLength: 32 };
      const evaluated = await evaluateIcRalm(gpt, ids, { settings, separator: [300], retrieve, batch: 2 });
      const model = new IcRalmModel(gpt, retrieve, { settings, separator: [300], ownsModel: false });
      let out = await model.start([ids[0]!]);
      let maxDiff = 0;
      for (let j = 1; j < ids.length; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(logSoftmaxAt(out.logits.subarray(0, vocab), ids[j]!) - evaluated.logProbs[j - 1]!));
        if (j < ids.length - 1) out = await model.next(ids[j]!);
      }
      expect(maxDiff).toBeLessThan(2e-3);
      expect(model.retrievals.length).toBe(evaluated.blocks);
    } finally {
      await gpt.dispose();
    }
  }, 120_000);
});
