import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GptModel } from '../models/gpt';
import { GPT_ID, MODELS_DIR } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { generate } from './loop';
import { Rng } from './rng';
import { GREEDY, processLogits, sample, validateSampling } from './sampler';

describe('logits processors (Hugging Face generate semantics)', () => {
  it('suppressTokens removes a token, so greedy takes the next best', () => {
    const logits = Float32Array.from([5, 1, 3]);
    const processed = processLogits(logits, [], { ...GREEDY, suppressTokens: [0] });
    expect(processed[0]).toBe(-Infinity);
    expect(sample(processed, GREEDY, new Rng(0)).tokenId).toBe(2);
    expect(logits[0]).toBe(5); // the model's own logits are not touched
  });

  it('repetitionPenalty divides positive and multiplies negative logits of seen tokens only', () => {
    const out = processLogits(Float32Array.from([2, 1, -1, 4]), [0, 2, 0], { ...GREEDY, repetitionPenalty: 2 });
    expect(Array.from(out)).toEqual([1, 1, -2, 4]);
  });

  it('noRepeatNgramSize bans the token that would complete an n-gram already in the context', () => {
    // context 5 6 7 5: the bigram prefix is [5]; "5 6" occurred, so 6 is banned, 7 is not.
    const out = processLogits(Float32Array.from([0, 0, 0, 0, 0, 0, 9, 8]), [5, 6, 7, 5], { ...GREEDY, noRepeatNgramSize: 2 });
    expect(out[6]).toBe(-Infinity);
    expect(out[7]).toBe(8);
    expect(sample(out, GREEDY, new Rng(0)).tokenId).toBe(7);
    // trigram: prefix [7, 5] never occurred before, nothing banned
    const tri = processLogits(Float32Array.from([0, 0, 0, 0, 0, 0, 9, 8]), [5, 6, 7, 5], { ...GREEDY, noRepeatNgramSize: 3 });
    expect(Array.from(tri)).toEqual([0, 0, 0, 0, 0, 0, 9, 8]);
  });

  it('returns the same array when nothing applies, and rejects bad values', () => {
    const logits = Float32Array.from([1, 2]);
    expect(processLogits(logits, [0, 1], { ...GREEDY, repetitionPenalty: 1, noRepeatNgramSize: 0, suppressTokens: [] })).toBe(logits);
    expect(() => validateSampling({ ...GREEDY, repetitionPenalty: 0 })).toThrow(RangeError);
    expect(() => validateSampling({ ...GREEDY, noRepeatNgramSize: 1.5 })).toThrow(RangeError);
  });
});

describe('processors in the generation loop (shipped GPT)', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  const unk = 0;
  beforeAll(async () => {
    runtime = await Runtime.create();
    gpt = await GptModel.load(runtime, nodeModelFiles(join(MODELS_DIR, GPT_ID)));
  });
  afterAll(async () => {
    await gpt?.dispose();
  });

  it('with <unk> suppressed no <unk> is written, where plain greedy writes one', async () => {
    // A prompt of the kind that sends this small GPT into "<unk> of the <unk>" loops.
    const prompt = gpt.manifest.tokenizer.eot_id === 1 ? [1, 450, 717, 286, 262] : [450, 717];
    const plain = await generate(gpt, prompt, { ...GREEDY, maxNewTokens: 40, stopTokenId: null });
    expect(plain.tokenIds).toContain(unk);
    const clean = await generate(gpt, prompt, { ...GREEDY, maxNewTokens: 40, stopTokenId: null, suppressTokens: [unk] });
    expect(clean.tokenIds).not.toContain(unk);
  });

  it('no-repeat 3-gram: no trigram of prompt plus output occurs twice', async () => {
    const prompt = [1, 450, 717, 286, 262];
    const run = await generate(gpt, prompt, { ...GREEDY, maxNewTokens: 60, stopTokenId: null, noRepeatNgramSize: 3 });
    const all = [...prompt, ...run.tokenIds];
    const grams = all.slice(0, -2).map((_, i) => all.slice(i, i + 3).join(','));
    expect(new Set(grams).size).toBe(grams.length);
    const plain = await generate(gpt, prompt, { ...GREEDY, maxNewTokens: 60, stopTokenId: null });
    const plainAll = [...prompt, ...plain.tokenIds];
    const plainGrams = plainAll.slice(0, -2).map((_, i) => plainAll.slice(i, i + 3).join(','));
    expect(new Set(plainGrams).size).toBeLessThan(plainGrams.length); // greedy alone loops
  });
});
