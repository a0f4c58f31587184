/**
 * FLARE: the decisions (plan.ts), the generation wrapper and the eval, on the fake hashing GPT of
 * the In-Context RALM tests (exact agreement), then on the shipped GPT (the eval at θ = 0 and θ = 1
 * is In-Context RALM's eval with no passage and with a passage at every block).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GptModel } from '../models/gpt';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { evaluateIcRalm } from '../icralm/eval';
import { blockInput } from '../icralm/plan';
import type { PassageRetriever } from '../icralm/types';
import { FakeGpt, V, hashRow, logSoftmaxAt, loggingRetriever, passageFor, stream } from '../icralm/test-fakes';
import { evaluateFlare } from './eval';
import { FlareModel } from './model';
import { greedyChoice, maskedQuery, triggerTokens } from './plan';

const SEP = [1];

describe('FLARE decisions (plan.ts)', () => {
  const ahead = [
    { id: 5, probability: 0.9 },
    { id: 6, probability: 0.05 },
    { id: 7, probability: 0.3 },
    { id: 8, probability: 0.01 },
  ];

  it('triggers on the look-ahead tokens strictly below θ; θ = 0 never does', () => {
    expect(triggerTokens(ahead, 0.1)).toEqual([1, 3]);
    expect(triggerTokens(ahead, 0.3)).toEqual([1, 3]);
    expect(triggerTokens(ahead, 0)).toEqual([]);
    expect(triggerTokens(ahead, 1)).toEqual([0, 1, 2, 3]);
  });

  it('queries with the recent text and the look-ahead without its tokens below β, cut to l', () => {
    const text = [20, 21, 22, 23, 24, 25];
    expect(maskedQuery(text, 6, ahead, { maskBelow: 0.1, queryLength: 5 })).toEqual([23, 24, 25, 5, 7]);
    expect(maskedQuery(text, 6, ahead, { maskBelow: 0, queryLength: 5 })).toEqual([25, 5, 6, 7, 8]);
    // The text ends where the block starts, not at the end of the array.
    expect(maskedQuery(text, 3, ahead, { maskBelow: 0.5, queryLength: 3 })).toEqual([21, 22, 5]);
    // A look-ahead longer than l keeps its own last tokens.
    expect(maskedQuery(text, 6, ahead, { maskBelow: 0, queryLength: 2 })).toEqual([7, 8]);
  });

  it('picks the most likely token with its softmax probability', () => {
    const row = Float32Array.from([0, Math.log(3), 0, 0]);
    expect(greedyChoice(row, 0, 4)).toEqual({ id: 1, probability: expect.closeTo(0.5, 6) });
    expect(greedyChoice(Float32Array.from([9, 9, 0, 2]), 2, 2).id).toBe(1);
  });
});

describe('FLARE eval', () => {
  const context = 24;
  const ids = stream(61);

  it('equals a direct computation: look ahead greedily, retrieve only below θ, score the block with its input', async () => {
    for (const [lookahead, batch] of [[4, 3], [3, 1], [5, 4]] as const) {
      // The look-aheads: greedy from the text before each block, no passage (they do not depend on θ).
      const blocks: { b: number; ahead: { id: number; probability: number }[] }[] = [];
      for (let b = 1; b < ids.length; b += lookahead) {
        const seq = [...blockInput(ids, b, null, [], lookahead, context).input];
        const ahead = [];
        for (let i = 0; i < lookahead; i++) {
          const choice = greedyChoice(hashRow(seq), 0, V);
          ahead.push(choice);
          seq.push(choice.id);
        }
        blocks.push({ b, ahead });
      }
      // θ at the median of the blocks' least confident token: some blocks retrieve, some do not.
      const lows = blocks.map((x) => Math.min(...x.ahead.map((t) => t.probability))).sort((a, b) => a - b);
      const threshold = lows[Math.floor(lows.length / 2)]!;
      const settings = { lookahead, threshold, maskBelow: lows[1]!, queryLength: 6 };
      let nll = 0;
      let retrieved = 0;
      const expectedQueries: number[][] = [];
      for (const { b, ahead } of blocks) {
        let input = blockInput(ids, b, null, [], lookahead, context).input;
        if (ahead.some((t) => t.probability < threshold)) {
          retrieved++;
          const query = maskedQuery(ids, b, ahead, settings);
          expectedQueries.push(query);
          input = blockInput(ids, b, passageFor(query), SEP, lookahead, context).input;
        }
        for (let j = b; j < Math.min(b + lookahead, ids.length); j++) nll -= logSoftmaxAt(hashRow([...input, ...ids.slice(b, j)]), ids[j]!);
      }
      const queries: number[][] = [];
      const r = await evaluateFlare(new FakeGpt(context), ids, { settings, separator: SEP, retrieve: loggingRetriever(queries), batch });
      expect(r.nll).toBeCloseTo(nll, 4);
      expect(r.retrieved).toBe(retrieved);
      expect(queries).toEqual(expectedQueries);
      expect(retrieved).toBeGreaterThan(0);
      expect(retrieved).toBeLessThan(r.blocks);
      expect(r.scored_tokens).toBe(ids.length - 1);
    }
  });

  it('does not leak: a target’s score depends only on the tokens before it', async () => {
    const settings = { lookahead: 4, threshold: 0.5, maskBelow: 0.1, queryLength: 6 };
    const a = await evaluateFlare(new FakeGpt(context), ids, { settings, separator: SEP, retrieve: loggingRetriever([]) });
    const changed = [...ids];
    changed[40] = changed[40] === 2 ? 3 : 2;
    const b = await evaluateFlare(new FakeGpt(context), changed, { settings, separator: SEP, retrieve: loggingRetriever([]) });
    // Targets 1..40 are ids[1..40]: the changed token is target 40 itself, scored from what precedes it.
    for (let j = 0; j < 39; j++) expect(b.logProbs[j]).toBe(a.logProbs[j]);
  });

  it('split into parts (blocks by their first target), adds up to the whole run target by target', async () => {
    const settings = { lookahead: 4, threshold: 0.5, maskBelow: 0.1, queryLength: 6 };
    const whole = await evaluateFlare(new FakeGpt(context), ids, { settings, separator: SEP, retrieve: loggingRetriever([]) });
    // 23 is not on the block grid (1, 5, 9, ...): the block starting at 21 belongs to the first part whole.
    const parts = await Promise.all([{ from: 1, to: 23 }, { from: 23, to: Infinity }].map((blocks) =>
      evaluateFlare(new FakeGpt(context), ids, { settings, separator: SEP, retrieve: loggingRetriever([]), blocks })));
    expect(parts[0]!.blocks + parts[1]!.blocks).toBe(whole.blocks);
    expect(parts[0]!.scored_tokens).toBe(24);
    expect(parts[0]!.scored_tokens + parts[1]!.scored_tokens).toBe(whole.scored_tokens);
    expect(parts[0]!.retrieved + parts[1]!.retrieved).toBe(whole.retrieved);
    expect(parts[0]!.nll + parts[1]!.nll).toBeCloseTo(whole.nll, 9);
    for (let j = 0; j < whole.logProbs.length; j++) {
      const [own, other] = j < 24 ? [parts[0]!, parts[1]!] : [parts[1]!, parts[0]!];
      expect(own.logProbs[j]).toBe(whole.logProbs[j]);
      expect(other.logProbs[j]).toBeNaN();
    }
  });
});

describe('FLARE generation (FlareModel)', () => {
  const context = 24;

  it('writes confident blocks from the look-ahead rows and retrieves only below θ, logging each decision', async () => {
    let split = 0;
    for (const threshold of [0.15, 0.2, 0.25, 0.3, 0.4, 0.5]) {
      const queries: number[][] = [];
      const model = new FlareModel(new FakeGpt(context), loggingRetriever(queries), { settings: { lookahead: 3, threshold, maskBelow: 0.1, queryLength: 6 }, separator: SEP, ownsModel: false });
      const prompt = stream(10);
      let out = await model.start(prompt);
      const written: number[] = [];
      // Greedy decoding, fed back: every row must equal the fake GPT's row on the block's input.
      for (let step = 0; step < 12; step++) {
        const d = model.decisions.at(-1)!;
        const inBlock = model.sequence.length - d.position;
        const expectedInput = d.retrieved ? blockInput(model.sequence, d.position, passageFor(d.query), SEP, 3, context).input : blockInput(model.sequence, d.position, null, [], 3, context).input;
        expect(Array.from(out.logits)).toEqual(Array.from(hashRow([...expectedInput, ...model.sequence.slice(d.position, d.position + inBlock)])));
        const next = greedyChoice(out.logits, 0, V).id;
        written.push(next);
        out = await model.next(next);
      }
      expect(model.decisions.map((d) => d.position)).toEqual([10, 13, 16, 19, 22]);
      for (const d of model.decisions) {
        expect(d.retrieved).toBe(d.lookahead.some((t) => t.probability < threshold));
        expect(d.triggers.length > 0).toBe(d.retrieved);
        // Greedy decoding writes a confident block exactly as looked ahead.
        if (!d.retrieved && d.position + 3 <= 10 + written.length) expect(written.slice(d.position - 10, d.position - 7)).toEqual(d.lookahead.map((t) => t.id));
      }
      expect(queries.length).toBe(model.decisions.filter((d) => d.retrieved).length);
      if (new Set(model.decisions.map((d) => d.retrieved)).size === 2) split++;
    }
    // Some θ split the decisions, so both kinds were checked above.
    expect(split).toBeGreaterThan(0);
  });

  it('re-reads the text when sampling leaves a confident look-ahead', async () => {
    const gpt = new FakeGpt(context);
    const model = new FlareModel(gpt, loggingRetriever([]), { settings: { lookahead: 4, threshold: 0, maskBelow: 0, queryLength: 6 }, ownsModel: false });
    const prompt = stream(8);
    await model.start(prompt);
    const ahead = model.decisions[0]!.lookahead;
    const other = ahead[0]!.id === 2 ? 3 : 2;
    const out = await model.next(other);
    expect(Array.from(out.logits)).toEqual(Array.from(hashRow([...prompt, other])));
    expect(model.decisions[0]!.retrieved).toBe(false);
  });

  it('refuses allLogits and validates its settings', async () => {
    const model = new FlareModel(new FakeGpt(context), loggingRetriever([]), { ownsModel: false });
    await expect(model.start([3, 4], { allLogits: true })).rejects.toThrow(/evaluateFlare/);
    expect(() => model.setSettings({ threshold: 2 })).toThrow(/θ/);
    expect(() => model.setSettings({ lookahead: 0 })).toThrow(/look-ahead/);
  });
});

const gptDir = join(MODELS_DIR, GPT_ID);

describe.skipIf(!existsSync(join(gptDir, 'manifest.json')))('FLARE on the shipped GPT', () => {
  it('at θ = 0 is In-Context RALM with no passage, at θ = 1 with a passage at every block (stride = look-ahead)', async () => {
    const runtime = await Runtime.create({ prefer: 'wasm' });
    const gpt = await GptModel.load(runtime, nodeModelFiles(gptDir));
    try {
      const ids = Array.from({ length: 70 }, (_, i) => 300 + ((i * 37) % 2000));
      const pool = Array.from({ length: 5 }, (_, r) => Array.from({ length: 64 }, (_, i) => 400 + ((r * 131 + i * 17) % 3000)));
      const retrieve: PassageRetriever = async (queries) => queries.map((q) => ({ tokenIds: pool[q.reduce((a, x) => a + x, 0) % pool.length]! }));
      const none: PassageRetriever = async (queries) => queries.map(() => null);
      const lookahead = 8;
      const never = await evaluateFlare(gpt, ids, { settings: { lookahead, threshold: 0 }, separator: [300], retrieve });
      const plain = await evaluateIcRalm(gpt, ids, { settings: { stride: lookahead, queryLength: 32 }, separator: [300], retrieve: none });
      expect(never.retrieved).toBe(0);
      expect(never.nll).toBeCloseTo(plain.nll, 6);
      // At θ = 1 every block retrieves; the passage each gets depends on FLARE's own query.
      const queries: number[][] = [];
      const always = await evaluateFlare(gpt, ids, { settings: { lookahead, threshold: 1, maskBelow: 0 }, separator: [300], retrieve: async (q) => (queries.push(...q.map((x) => [...x])), retrieve(q)) });
      expect(always.retrieved).toBe(always.blocks);
      let i = 0;
      const replay: PassageRetriever = async (q) => retrieve(q.map(() => queries[i++]!));
      const icralm = await evaluateIcRalm(gpt, ids, { settings: { stride: lookahead, queryLength: 32 }, separator: [300], retrieve: replay });
      expect(always.nll).toBeCloseTo(icralm.nll, 6);
      expect(always.nll).not.toBeCloseTo(never.nll, 1);
    } finally {
      await gpt.dispose();
    }
  }, 120_000);
});
