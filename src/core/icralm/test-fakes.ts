/**
 * Test doubles for the passage methods (In-Context RALM, FLARE): a fake causal GPT whose logits at
 * a position are a hash of everything before it in its input (so any change in what the model reads
 * shows up in the scores), a query-determined passage, and a token stream.
 */
import type { ModelManifest } from '../../protocol/manifest';
import type { ModelInfo } from '../../protocol/model';
import type { LanguageModel, StartOptions, StepOutput } from '../models/types';
import type { PassageRetriever, RetrievedPassage } from './types';

export const V = 11;

export function hashRow(prefix: readonly number[]): Float32Array {
  let h = 2166136261;
  for (const id of prefix) h = Math.imul(h ^ (id + 1), 16777619) >>> 0;
  return Float32Array.from({ length: V }, (_, j) => ((Math.imul(h, 2 * j + 1) >>> 0) % 1000) / 137);
}

/** A causal LM with a KV cache and a batch forward; throws when asked to read past its context. */
export class FakeGpt implements LanguageModel {
  readonly info: ModelInfo;
  readonly manifest: ModelManifest;
  /** Every prefill's input, in order. */
  readonly prefills: number[][] = [];
  private tokens: number[] = [];
  constructor(readonly context: number) {
    this.info = { id: 'fake', name: 'Fake', architecture: 'gpt', vocabSize: V, context, backend: { backend: 'wasm', reason: 'test' } };
    this.manifest = { tokenizer: { eot_id: 1 }, hyperparameters: { context, vocab_size: V } } as unknown as ModelManifest;
  }
  get sequence(): readonly number[] {
    return this.tokens;
  }
  get prefixLength(): number {
    return 0;
  }
  private row(): StepOutput {
    if (this.tokens.length > this.context) throw new RangeError(`read ${this.tokens.length} tokens, context ${this.context}`);
    return { logits: hashRow(this.tokens), rows: 1, retrievals: [], restarted: false };
  }
  async start(ids: readonly number[], _options?: StartOptions): Promise<StepOutput> {
    this.tokens = [...ids];
    this.prefills.push([...ids]);
    return this.row();
  }
  async next(id: number): Promise<StepOutput> {
    this.tokens.push(id);
    return this.row();
  }
  async forwardBatch(sequences: readonly (readonly number[])[]): Promise<Float32Array> {
    const T = sequences[0]!.length;
    const out = new Float32Array(sequences.length * T * V);
    sequences.forEach((s, b) => {
      if (s.length !== T) throw new RangeError('unequal lengths');
      if (T > this.context) throw new RangeError(`read ${T} tokens, context ${this.context}`);
      for (let t = 0; t < T; t++) out.set(hashRow(s.slice(0, t + 1)), (b * T + t) * V);
    });
    return out;
  }
  async dispose(): Promise<void> {}
}

/** A passage that is a function of the query (as a datastore's top-1 is), of varying length. */
export function passageFor(query: readonly number[]): RetrievedPassage {
  const h = query.reduce((a, x) => (a * 31 + x) % 9973, 7);
  return { tokenIds: Array.from({ length: 3 + (h % 4) }, (_, i) => 2 + ((h + i * 5) % (V - 2))), chunkIndex: h };
}

export function loggingRetriever(log: number[][]): PassageRetriever {
  return async (queries) =>
    queries.map((q) => {
      log.push([...q]);
      return passageFor(q);
    });
}

export function stream(n: number, seed = 3): number[] {
  return Array.from({ length: n }, (_, i) => 2 + ((i * 7 + seed * 13 + ((i * i) % 5)) % (V - 2)));
}

export function logSoftmaxAt(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return logits[target]! - max - Math.log(sum);
}

