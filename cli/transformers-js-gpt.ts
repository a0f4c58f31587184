/**
 * The shipped GPT run by transformers.js (`@huggingface/transformers`, onnxruntime-node CPU) as a
 * LanguageModel, so `npm run bench -- --transformers` can interleave it with RetroLab's runtime
 * token by token. Each step is one call of the model's own forward (what its generate() calls per
 * token: its session, its tensors, the cache by the Hugging Face names), the logits read back as
 * RetroLab's are; generate()'s logits processors and stopping criteria are not in the time.
 * Loaded as src/core/models/transformers-js.test.ts loads it (local files only).
 */
import { dirname, basename } from 'node:path';
import { AutoModelForCausalLM, env, Tensor, type PreTrainedModel } from '@huggingface/transformers';
import type { LanguageModel, StepOutput } from '../src/core/models';
import type { ModelInfo } from '../src/protocol/model';
import type { ModelManifest } from '../src/protocol/manifest';

/**
 * How transformers.js opens public/models/<id>: `<id>/decoder.int8.onnx` (no onnx/ subfolder, the
 * fp32 file-name suffix, which is none). The weights are int8 behind DequantizeLinear; like
 * RetroLab's native `cpu` backend (src/core/runtime/runtime.ts), onnxruntime-node is told to
 * dequantize them once at load rather than fuse them into int8 matmuls, whose logits differ by ~0.1.
 */
export const TRANSFORMERS_JS_OPTIONS = {
  subfolder: '',
  model_file_name: 'decoder.int8',
  dtype: 'fp32',
  device: 'cpu',
  session_options: { extra: { session: { disable_quant_qdq: '1' } } },
} as const;

export class TransformersJsGpt implements LanguageModel {
  readonly info: ModelInfo;
  /** null before the first call: transformers.js then feeds an empty cache of the graph's shapes. */
  private past: Record<string, Tensor> | null = null;
  private tokens: number[] = [];

  private constructor(
    private readonly model: PreTrainedModel,
    readonly manifest: ModelManifest,
  ) {
    const hp = manifest.hyperparameters;
    this.info = {
      id: `${manifest.id} (transformers.js)`,
      name: manifest.name,
      architecture: 'gpt',
      vocabSize: hp.vocab_size,
      context: hp.context,
      backend: { backend: 'cpu', reason: 'transformers.js on onnxruntime-node' },
    };
  }

  /** `modelDir`: public/models/<id>, holding the manifest RetroLab read and the Hugging Face files. */
  static async load(modelDir: string, manifest: ModelManifest, threads = 1): Promise<TransformersJsGpt> {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${dirname(modelDir)}/`;
    const model = await AutoModelForCausalLM.from_pretrained(basename(modelDir), {
      ...TRANSFORMERS_JS_OPTIONS,
      session_options: { ...TRANSFORMERS_JS_OPTIONS.session_options, intraOpNumThreads: threads, interOpNumThreads: 1 },
    });
    return new TransformersJsGpt(model, manifest);
  }

  get sequence(): readonly number[] {
    return this.tokens;
  }

  get prefixLength(): number {
    return 0;
  }

  async start(promptIds: readonly number[]): Promise<StepOutput> {
    this.past = null;
    this.tokens = [];
    return this.feed(promptIds);
  }

  next(tokenId: number): Promise<StepOutput> {
    if (this.tokens.length + 1 > this.info.context) throw new RangeError('transformers.js GPT: past the context (the bench stays inside it)');
    return this.feed([tokenId]);
  }

  private async feed(ids: readonly number[]): Promise<StepOutput> {
    const input_ids = new Tensor('int64', BigInt64Array.from(ids, (t) => BigInt(t)), [1, ids.length]);
    const out = (await this.model(this.past ? { input_ids, past_key_values: this.past } : { input_ids })) as Record<string, Tensor>;
    const past: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(out)) if (name.startsWith('present.')) past[name.replace('present', 'past_key_values')] = t;
    this.past = past;
    this.tokens.push(...ids);
    const V = this.info.vocabSize;
    const logits = (out.logits!.data as Float32Array).slice((ids.length - 1) * V, ids.length * V);
    return { logits, rows: 1, retrievals: [], restarted: false };
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}
