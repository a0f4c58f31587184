import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationSettings } from '../../protocol/model';
import { GptModel } from '../models/gpt';
import { RetroModel } from '../models/retro';
import { GPT_ID, MODELS_DIR, RETRO_ID, hashedSource } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { generate, generateStream } from './loop';
import { Rng } from './rng';
import { GREEDY, sample } from './sampler';

describe('Rng', () => {
  it('is reproducible per seed and roughly uniform', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(c.next()).not.toBe(xs[0]);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.03);
  });
});

describe('sample', () => {
  const logits = Float32Array.from([1, 3, 2, 3, -1]);

  it('greedy picks the argmax, lowest id on ties', () => {
    expect(sample(logits, GREEDY, new Rng(1)).tokenId).toBe(1);
  });

  it('top-k 1 and a tiny top-p are greedy', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 20; i++) {
      expect(sample(logits, { temperature: 1, topK: 1, topP: 1, seed: 0 }, rng).tokenId).toBe(1);
      expect(sample(logits, { temperature: 1, topK: 0, topP: 0.01, seed: 0 }, rng).tokenId).toBe(1);
    }
  });

  it('draws from softmax(logits / T) restricted by top-k and top-p', () => {
    const rng = new Rng(7);
    const counts = new Array<number>(5).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sample(logits, { temperature: 2, topK: 0, topP: 1, seed: 0 }, rng).tokenId]!++;
    const weights = Array.from(logits, (l) => Math.exp(l / 2));
    const total = weights.reduce((a, b) => a + b, 0);
    weights.forEach((w, i) => expect(Math.abs(counts[i]! / n - w / total)).toBeLessThan(0.015));
    // top-k 3 keeps ids 1, 3 (ties) and 2; never 0 or 4.
    const kept = new Set<number>();
    for (let i = 0; i < 2000; i++) kept.add(sample(logits, { temperature: 1, topK: 3, topP: 1, seed: 0 }, rng).tokenId);
    expect([...kept].sort()).toEqual([1, 2, 3]);
    // top-p 0.6: p(1) = p(3) ~ 0.41 each, so the nucleus is {1, 3}.
    const nucleus = new Set<number>();
    for (let i = 0; i < 2000; i++) nucleus.add(sample(logits, { temperature: 1, topK: 0, topP: 0.6, seed: 0 }, rng).tokenId);
    expect([...nucleus].sort()).toEqual([1, 3]);
  });
});

describe('generation loop on the shipped models', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  let retro: RetroModel;
  const prompt = [1, 450, 1207, 287, 262, 1180];
  const sampled: GenerationSettings = { temperature: 0.9, topK: 40, topP: 0.95, seed: 1234, maxNewTokens: 24, stopTokenId: null };

  beforeAll(async () => {
    runtime = await Runtime.create();
    gpt = await GptModel.load(runtime, nodeModelFiles(join(MODELS_DIR, GPT_ID)));
    retro = await RetroModel.load(runtime, nodeModelFiles(join(MODELS_DIR, RETRO_ID)));
    const L = retro.hp.neighbour_len;
    retro.setNeighbourSource(hashedSource(Array.from({ length: 16 }, (_, r) => Array.from({ length: L }, (_, i) => (r * 211 + i * 31 + 7) % 8192))));
  });

  afterAll(async () => {
    await gpt?.dispose();
    await retro?.dispose();
  });

  it('same seed and settings give the same tokens; another seed gives others', async () => {
    const a = await generate(gpt, prompt, sampled);
    const b = await generate(gpt, prompt, sampled);
    const c = await generate(gpt, prompt, { ...sampled, seed: 99 });
    expect(a.tokenIds).toHaveLength(24);
    expect(b.tokenIds).toEqual(a.tokenIds);
    expect(c.tokenIds).not.toEqual(a.tokenIds);
    expect(a.stoppedBy).toBe('length');
  });

  it('greedy follows the argmax of the model at every step', async () => {
    const run = await generate(gpt, prompt, { ...GREEDY, maxNewTokens: 10, stopTokenId: null });
    let out = await gpt.start(prompt);
    for (const id of run.tokenIds) {
      expect(sample(out.logits, GREEDY, new Rng(0)).tokenId).toBe(id);
      out = await gpt.next(id);
    }
  });

  it('streams tokens with a rate, and stops on abort', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const stream = generateStream(gpt, prompt, { ...sampled, maxNewTokens: 50 }, { signal: controller.signal });
    for await (const token of stream) {
      seen.push(token.tokenId);
      expect(token.index).toBe(seen.length - 1);
      expect(token.tokensPerSecond).toBeGreaterThan(0);
      if (seen.length === 5) controller.abort();
    }
    expect(seen).toHaveLength(5);
    const summary = await generate(gpt, prompt, sampled, { signal: controller.signal });
    expect(summary.stoppedBy).toBe('abort');
    expect(summary.tokenIds).toEqual([]);
  });

  it('RETRO streams the retrievals each token caused, once per chunk', async () => {
    const tokens: { index: number; positions: number[] }[] = [];
    const C = retro.hp.chunk;
    // The last generated token is never fed, so positions up to 2C-2 are computed: one chunk completes.
    const maxNewTokens = 2 * C - prompt.length;
    const summary = await generate(retro, prompt, { ...sampled, maxNewTokens }, {
      onToken: (t) => tokens.push({ index: t.index, positions: t.retrievals.map((r) => r.position) }),
    });
    expect(summary.retrievals.map((r) => r.position)).toEqual([C - 1]);
    // The token at position C-1 is the (C-1-prompt.length)th generated one; it is fed to produce the next.
    const fedIndex = C - 1 - prompt.length;
    expect(tokens.find((t) => t.positions.length > 0)?.index).toBe(fedIndex + 1);
    const again = await generate(retro, prompt, { ...sampled, maxNewTokens });
    expect(again.tokenIds).toEqual(summary.tokenIds);
  });
});
