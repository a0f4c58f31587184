/**
 * RAG-Sequence: the per-token decomposition on hand-made numbers, then the eval on the shipped GPT
 * against In-Context RALM (one passage, and each passage alone), and thorough decoding.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logSoftmaxAt } from '../generate/sampler';
import { evaluateIcRalm } from '../icralm/eval';
import { blockInput } from '../icralm/plan';
import type { RetrievedPassage } from '../icralm/types';
import { GptModel } from '../models/gpt';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { passageWeights } from '../replug/types';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { evaluateRagSequence, type RagSequenceBlockScore } from './eval';
import { thoroughDecode } from './decode';
import { decomposeSequence, logSumExp, validateRagSequenceSettings } from './types';

describe('RAG-Sequence decomposition', () => {
  const prior = [0.5, 0.3, 0.2];
  const perPassage = [
    [Math.log(0.1), Math.log(0.2), Math.log(0.05), Math.log(0.3)],
    [Math.log(0.4), Math.log(0.6), Math.log(0.5), Math.log(0.2)],
    [Math.log(0.01), Math.log(0.02), Math.log(0.9), Math.log(0.1)],
  ];

  it('its token log-probabilities add up to the sequence marginal', () => {
    const d = decomposeSequence(prior, perPassage);
    const direct = Math.log(prior.reduce((s, w, z) => s + w * perPassage[z]!.reduce((p, lp) => p * Math.exp(lp), 1), 0));
    expect(d.sequenceLogProb).toBeCloseTo(direct, 12);
    expect(d.tokenLogProbs.reduce((a, b) => a + b, 0)).toBeCloseTo(direct, 12);
  });

  it('starts from the prior, keeps the posterior summing to 1, and moves it onto the passage that explains the text', () => {
    const d = decomposeSequence(prior, perPassage);
    expect(d.posterior).toHaveLength(5);
    expect(d.posterior[0]).toEqual(prior.map((p) => expect.closeTo(p, 12)));
    for (const row of d.posterior) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    // Passage 1 gives the first tokens the most probability: after them it holds most of the mass.
    expect(d.posterior[2]![1]!).toBeGreaterThan(0.8);
    // Each token's probability is the posterior-weighted mixture of the passages' probabilities.
    d.tokenLogProbs.forEach((lp, i) => expect(Math.exp(lp)).toBeCloseTo(d.posterior[i]!.reduce((s, w, z) => s + w * Math.exp(perPassage[z]![i]!), 0), 12));
  });

  it('with one passage it is that passage’s run', () => {
    const d = decomposeSequence([1], [perPassage[0]!]);
    d.tokenLogProbs.forEach((lp, i) => expect(lp).toBeCloseTo(perPassage[0]![i]!, 12));
    expect(logSumExp([-Infinity, -Infinity])).toBe(-Infinity);
  });

  it('refuses settings outside their ranges', () => {
    expect(() => validateRagSequenceSettings({ k: 0, temperature: 0.1, span: 32, queryLength: 32 })).toThrow(RangeError);
    expect(() => validateRagSequenceSettings({ k: 4, temperature: 0, span: 32, queryLength: 32 })).toThrow(RangeError);
    expect(() => validateRagSequenceSettings({ k: 4, temperature: 0.1, span: 65, queryLength: 32 })).toThrow(RangeError);
  });
});

const gptDir = join(MODELS_DIR, GPT_ID);
describe.skipIf(!existsSync(join(gptDir, 'manifest.json')))('RAG-Sequence on the shipped GPT', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  const passage = (seed: number, distance: number): RetrievedPassage => ({ tokenIds: Array.from({ length: 40 }, (_, i) => (seed * 131 + i * 17) % 8000), distance });
  const ids = Array.from({ length: 70 }, (_, i) => (i * 37 + 11) % 8000);

  beforeAll(async () => {
    runtime = await Runtime.create({ prefer: 'wasm' });
    gpt = await GptModel.load(runtime, nodeModelFiles(gptDir));
  });
  afterAll(async () => {
    await gpt?.dispose();
  });

  it('with k = 1 it is In-Context RALM with stride = span', async () => {
    const p = passage(5, 0.1);
    const icralm = await evaluateIcRalm(gpt, ids, { retrieve: async (qs) => qs.map(() => p), settings: { stride: 16 } });
    const rag = await evaluateRagSequence(gpt, ids, { retrieve: async () => [p], settings: { k: 1, span: 16 } });
    expect(rag.scored_tokens).toBe(69);
    expect(rag.forwards).toBe(5);
    for (let i = 0; i < 69; i++) expect(rag.logProbs[i]!).toBeCloseTo(icralm.logProbs[i]!, 3);
  });

  it('each sequence’s tokens add up to logsumexp of prior + each passage’s own log-likelihood, with posteriors summing to 1', async () => {
    const passages = [passage(1, 0.1), passage(2, 0.12), passage(4, 0.15)];
    const alone = await Promise.all(passages.map((p) => evaluateIcRalm(gpt, ids, { retrieve: async (qs) => qs.map(() => p), settings: { stride: 16 } })));
    const blocks: RagSequenceBlockScore[] = [];
    const rag = await evaluateRagSequence(gpt, ids, { retrieve: async () => passages, settings: { k: 3, span: 16, temperature: 0.1 }, onBlock: (b) => blocks.push(b) });
    const prior = passageWeights(passages, 0.1);
    expect(blocks.map((b) => [b.start, b.end])).toEqual([[1, 17], [17, 33], [33, 49], [49, 65], [65, 70]]);
    for (const b of blocks) {
      expect(b.prior).toEqual(prior);
      expect(b.posterior).toHaveLength(b.end - b.start + 1);
      for (const row of b.posterior) expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 9);
      let sum = 0;
      for (let j = b.start; j < b.end; j++) sum += rag.logProbs[j - 1]!;
      const each = alone.map((r) => {
        let s = 0;
        for (let j = b.start; j < b.end; j++) s += r.logProbs[j - 1]!;
        return s;
      });
      expect(sum).toBeCloseTo(logSumExp(each.map((s, z) => Math.log(prior[z]!) + s)), 2);
      // The last posterior is each passage's share of the sequence's likelihood.
      const z = logSumExp(each.map((s, i) => Math.log(prior[i]!) + s));
      b.posterior.at(-1)!.forEach((w, i) => expect(w).toBeCloseTo(Math.exp(Math.log(prior[i]!) + each[i]! - z), 2));
    }
    expect(rag.mean_top_posterior).toBeGreaterThanOrEqual(0);
  });

  it('thorough decoding writes each passage’s greedy continuation and chooses the largest marginal', async () => {
    const prompt = [464, 4074, 373, 5611, 287, 262, 3726, 1110, 286, 262].map((id) => id % 8000);
    const passages = [passage(1, 0.1), passage(7, 0.2), passage(9, 0.3)];
    const prior = passageWeights(passages, 0.1);
    const { candidates, chosen } = await thoroughDecode(gpt, prompt, { passages, prior, maxTokens: 6, stopTokenId: null });
    expect(candidates.flatMap((c) => c.fromPassages).sort()).toEqual([0, 1, 2]);
    for (const c of candidates) {
      expect(c.tokenIds).toHaveLength(6);
      expect(c.logMarginal).toBeCloseTo(logSumExp(c.perPassage.map((lp, z) => Math.log(prior[z]!) + lp)), 9);
      expect(c.logMarginal).toBeLessThanOrEqual(candidates[chosen]!.logMarginal);
      // Greedy under its own passage: each token is the argmax of that passage's run.
      const z = c.fromPassages[0]!;
      const input = [...blockInput(prompt, prompt.length, passages[z]!, [], 6, gpt.info.context).input, ...c.tokenIds.slice(0, -1)];
      const logits = await gpt.forwardBatch([input]);
      const V = gpt.info.vocabSize;
      let own = 0;
      c.tokenIds.forEach((token, i) => {
        const row = logits.subarray((input.length - 6 + i) * V, (input.length - 5 + i) * V);
        expect(row[token]!).toBeGreaterThanOrEqual(Math.max(...row) - 1e-3);
        own += logSoftmaxAt(row, token);
      });
      expect(c.perPassage[z]!).toBeCloseTo(own, 3);
    }
  });

  it('thorough decoding stops between passages when its signal is aborted', async () => {
    const controller = new AbortController();
    const passages = [passage(1, 0.1), passage(7, 0.2)];
    const run = thoroughDecode(gpt, [5, 6, 7, 8], {
      passages,
      prior: passageWeights(passages, 0.1),
      maxTokens: 3,
      signal: controller.signal,
      onProgress: (phase, done) => phase === 'decode' && done === 1 && controller.abort(),
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
  });
});
