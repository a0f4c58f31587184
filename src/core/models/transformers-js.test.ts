/**
 * The shipped GPT is also a transformers.js (`@huggingface/transformers`) `gpt2` model: its decoder
 * takes the per-layer cache by the Hugging Face names and public/models/gpt-wt2 holds the
 * config.json, generation_config.json and tokenizer_config.json transformers.js reads
 * (models/retrolab/ship.py write_hf_files). Loaded here through transformers.js's own path (local
 * files only, env.localModelPath, its tokenizer, its generate) on onnxruntime-node, and compared
 * with RetroLab's runtime (onnxruntime-web WASM) on the same files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor, type PreTrainedModel, type PreTrainedTokenizer } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRANSFORMERS_JS_OPTIONS } from '../../../cli/transformers-js-gpt';
import { generate } from '../generate/loop';
import { GREEDY } from '../generate/sampler';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { loadTokenizer, type RetroTokenizer } from '../tokenizer';
import { GptModel } from './gpt';
import { GPT_ID, MODELS_DIR } from './test-support';

const TEXT = 'The game began development in 2010 , carrying over a large portion of the work done on Valkyria Chronicles II .';

describe('the shipped GPT in transformers.js', () => {
  let model: PreTrainedModel;
  let hfTokenizer: PreTrainedTokenizer;
  let runtime: Runtime;
  let gpt: GptModel;
  let tokenizer: RetroTokenizer;

  beforeAll(async () => {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${MODELS_DIR}/`;
    model = await AutoModelForCausalLM.from_pretrained(GPT_ID, TRANSFORMERS_JS_OPTIONS);
    hfTokenizer = await AutoTokenizer.from_pretrained(GPT_ID);
    runtime = await Runtime.create({ prefer: 'wasm', wasmThreads: 1 });
    const files = nodeModelFiles(join(MODELS_DIR, GPT_ID));
    gpt = await GptModel.load(runtime, files);
    tokenizer = loadTokenizer(JSON.parse(readFileSync(join(MODELS_DIR, GPT_ID, gpt.manifest.tokenizer.file), 'utf8')) as unknown, { id: gpt.manifest.tokenizer.id });
  }, 120_000);

  afterAll(async () => {
    await model?.dispose();
    await gpt?.dispose();
  });

  it('tokenizes as RetroLab does', () => {
    const ids = hfTokenizer.encode(TEXT, { add_special_tokens: false });
    expect(ids.length).toBeGreaterThan(10);
    expect(ids).toEqual(tokenizer.encode(TEXT));
  });

  it('gives the same logits for a prompt', async () => {
    const ids = tokenizer.encode(TEXT);
    const input = new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
    const out = (await model({ input_ids: input, attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]) })) as { logits: Tensor };
    const theirs = out.logits.data as Float32Array;
    const ours = (await gpt.start(ids, { allLogits: true })).logits;
    expect(theirs.length).toBe(ours.length);
    let max = 0;
    for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(theirs[i]! - ours[i]!));
    // onnxruntime-node's CPU kernels against the WASM build's: float noise (1.0e-5 measured over 40
    // positions); without disable_quant_qdq its int8 matmuls differ by 0.067.
    expect(max).toBeLessThan(1e-4);
  });

  it('generates the same greedy tokens', async () => {
    const ids = tokenizer.encode(TEXT);
    const steps = 32;
    const input = new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
    const sequence = (await model.generate({ input_ids: input, max_new_tokens: steps, do_sample: false })) as Tensor;
    const theirs = Array.from(sequence.data as BigInt64Array, Number).slice(ids.length);
    const ours = await generate(gpt, ids, { ...GREEDY, maxNewTokens: steps });
    // RetroLab does not return the stop token; transformers.js ends its sequence with it.
    const eot = gpt.manifest.tokenizer.eot_id;
    expect(theirs.filter((t, i) => !(t === eot && i === theirs.length - 1))).toEqual(ours.tokenIds);
    expect(ours.tokenIds.length).toBeGreaterThan(0);
  });
});
