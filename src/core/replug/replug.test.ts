/**
 * REPLUG: the weights and the mixture on hand-made numbers, then the ensemble on the shipped GPT
 * against In-Context RALM (one passage) and against its own passages' runs.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateIcRalm } from '../icralm/eval';
import { IcRalmModel } from '../icralm/model';
import { evaluateReplug } from './eval';
import type { RetrievedPassage } from '../icralm/types';
import { GptModel } from '../models/gpt';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { ReplugModel } from './model';
import { mixLogProbRows, passageWeights, validateReplugSettings } from './types';

describe('REPLUG weights and mixture', () => {
  it('weights are softmax(similarity / τ) with similarity = 1 - cosine distance', () => {
    const w = passageWeights([{ tokenIds: [], distance: 0.2 }, { tokenIds: [], distance: 0.3 }], 0.1);
    expect(w[0]! / w[1]!).toBeCloseTo(Math.E, 6);
    expect(w[0]! + w[1]!).toBeCloseTo(1, 12);
    // A large τ weighs the passages almost equally.
    const flat = passageWeights([{ tokenIds: [], distance: 0.2 }, { tokenIds: [], distance: 0.9 }], 100);
    expect(Math.abs(flat[0]! - flat[1]!)).toBeLessThan(0.01);
    expect(passageWeights([], 0.1)).toEqual([]);
  });

  it('with BM25 passages, s is each score over the top score: the weights do not depend on the scores’ scale', () => {
    const bm25 = (scores: number[]) => passageWeights(scores.map((score) => ({ tokenIds: [], distance: Number.NaN, score })), 0.1);
    const w = bm25([20, 18]);
    // s = 1 and 0.9: a ratio of e^((1 - 0.9) / 0.1) = e.
    expect(w[0]! / w[1]!).toBeCloseTo(Math.E, 6);
    expect(bm25([2, 1.8])).toEqual(w.map((x) => expect.closeTo(x, 12)));
    expect(w.every(Number.isFinite)).toBe(true);
  });

  it('mixes the rows as probabilities, returning log-probabilities', () => {
    const a = Float32Array.from([Math.log(0.5), Math.log(0.5), -Infinity]);
    const b = Float32Array.from([1, 1, 1], () => Math.log(1 / 3));
    const mixed = mixLogProbRows([a, b], [0.25, 0.75]);
    expect(Array.from(mixed, Math.exp)).toEqual([0.25 * 0.5 + 0.75 / 3, 0.25 * 0.5 + 0.75 / 3, 0.75 / 3].map((x) => expect.closeTo(x, 6)));
  });

  it('refuses settings outside their ranges', () => {
    expect(() => validateReplugSettings({ k: 0, temperature: 0.1, stride: 4, queryLength: 32 }, 256)).toThrow(RangeError);
    expect(() => validateReplugSettings({ k: 9, temperature: 0.1, stride: 4, queryLength: 32 }, 256)).toThrow(RangeError);
    expect(() => validateReplugSettings({ k: 2, temperature: 0, stride: 4, queryLength: 32 }, 256)).toThrow(RangeError);
  });
});

const gptDir = join(MODELS_DIR, GPT_ID);
describe.skipIf(!existsSync(join(gptDir, 'manifest.json')))('REPLUG on the shipped GPT', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  const prompt = [464, 4074, 373, 5611, 287, 262, 3726, 1110, 286, 262].map((id) => id % 8000);
  const passage = (seed: number, distance: number): RetrievedPassage => ({ tokenIds: Array.from({ length: 40 }, (_, i) => (seed * 131 + i * 17) % 8000), distance });

  beforeAll(async () => {
    runtime = await Runtime.create({ prefer: 'wasm' });
    gpt = await GptModel.load(runtime, nodeModelFiles(gptDir));
  });
  afterAll(async () => {
    await gpt?.dispose();
  });

  it('with one passage it is In-Context RALM with that passage, and it leaves the GPT’s own sequence alone', async () => {
    const p = passage(3, 0.2);
    await gpt.start([5, 6, 7]);
    const replug = new ReplugModel(gpt, async () => [p], { settings: { k: 1, stride: 4 } });
    const icralm = new IcRalmModel(gpt.fork(), async (queries) => queries.map(() => p), { settings: { stride: 4 } });
    let a = await replug.start(prompt);
    let b = await icralm.start(prompt);
    for (const next of [11, 12, 13, 14, 15]) {
      const rowB = b.logits.subarray((b.rows - 1) * gpt.info.vocabSize);
      // REPLUG returns log-probabilities; In-Context RALM logits: compare after log-softmax.
      const logZ = Math.log(rowB.reduce((s, x) => s + Math.exp(x), 0));
      let diff = 0;
      for (let i = 0; i < rowB.length; i++) diff = Math.max(diff, Math.abs(a.logits[i]! - (rowB[i]! - logZ)));
      expect(diff).toBeLessThan(1e-3);
      a = await replug.next(next);
      b = await icralm.next(next);
    }
    expect(replug.retrievals.map((r) => r.position)).toEqual([10, 14]);
    expect(gpt.sequence).toEqual([5, 6, 7]);
    await replug.dispose();
    await icralm.dispose();
  });

  it('mixes its passages’ runs with their weights, and reports each passage’s share of a token', async () => {
    const passages = [passage(1, 0.1), passage(2, 0.25), passage(4, 0.3)];
    const replug = new ReplugModel(gpt, async (_q, k) => passages.slice(0, k), { settings: { k: 3, temperature: 0.1 } });
    const out = await replug.start(prompt);
    const weights = replug.retrievals[0]!.weights;
    expect(weights).toEqual(passageWeights(passages, 0.1));
    const probabilities = Array.from(out.logits, Math.exp);
    expect(probabilities.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 4);
    const token = probabilities.indexOf(Math.max(...probabilities));
    const shares = replug.shares(token);
    expect(shares.map((s) => s.weight)).toEqual(weights);
    expect(shares.reduce((s, x) => s + x.weight * x.probability, 0)).toBeCloseTo(probabilities[token]!, 5);
    // Different passages make the runs disagree: the mixture is not any one of them.
    expect(new Set(shares.map((s) => s.probability.toFixed(4))).size).toBeGreaterThan(1);
    await replug.dispose();
  });

  it('its perplexity with one passage is In-Context RALM’s; with the passage twice, the same; with several, between them', async () => {
    const ids = Array.from({ length: 90 }, (_, i) => (i * 37 + 11) % 8000);
    const p1 = passage(5, 0.1);
    const p2 = passage(6, 0.4);
    const icralm = await evaluateIcRalm(gpt, ids, { retrieve: async (qs) => qs.map(() => p1), settings: { stride: 4 } });
    const one = await evaluateReplug(gpt, ids, { retrieve: async () => [p1], settings: { k: 1, stride: 4 } });
    expect(one.scored_tokens).toBe(89);
    expect(Math.abs(one.nll - icralm.nll) / icralm.nll).toBeLessThan(1e-4);
    const twice = await evaluateReplug(gpt, ids, { retrieve: async () => [p1, p1], settings: { k: 2, stride: 4 } });
    expect(twice.forwards).toBe(2 * one.forwards);
    expect(Math.abs(twice.nll - one.nll) / one.nll).toBeLessThan(1e-4);
    // Each target's mixture lies between its two passages' probabilities.
    const other = await evaluateReplug(gpt, ids, { retrieve: async () => [p2], settings: { k: 1, stride: 4 } });
    const both = await evaluateReplug(gpt, ids, { retrieve: async () => [p1, p2], settings: { k: 2, stride: 4, temperature: 1 } });
    for (let i = 0; i < 89; i++) {
      const [lo, hi] = [Math.min(one.logProbs[i]!, other.logProbs[i]!), Math.max(one.logProbs[i]!, other.logProbs[i]!)];
      expect(both.logProbs[i]!).toBeGreaterThanOrEqual(lo - 1e-4);
      expect(both.logProbs[i]!).toBeLessThanOrEqual(hi + 1e-4);
    }
  });
});
