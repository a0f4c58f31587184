import type { ModelManifest } from '../../protocol/manifest';
import type { ChunkRetrieval, ModelInfo } from '../../protocol/model';

/** What one call into a model gives back. */
export interface StepOutput {
  /**
   * Logits, row-major [rows, vocab]. After `next` there is one row; after `start` one row (the
   * prompt's last position) unless `allLogits` was asked for, then one row per prompt token.
   */
  logits: Float32Array;
  rows: number;
  /** GPT: kNN-LM keys of the same rows, [rows, d_model]. */
  knnKeys?: Float32Array;
  /** RETRO: retrievals made during this call, in order. */
  retrievals: ChunkRetrieval[];
  /** True when the context was full and the cache was rebuilt from the most recent tokens. */
  restarted: boolean;
}

export interface StartOptions {
  allLogits?: boolean;
}

/**
 * A decoder that reads a prompt and then one token at a time with a KV cache. GPT and RETRO
 * implement it, so the generation loop, the UI and the eval drive both the same way. One model
 * object holds one sequence: `start` discards the previous one. Calls are serialised internally.
 */
export interface LanguageModel {
  readonly info: ModelInfo;
  readonly manifest: ModelManifest;
  /** Prefill: feeds the prompt (at least one token). */
  start(promptIds: readonly number[], options?: StartOptions): Promise<StepOutput>;
  /** Feeds one token and returns the logits for the position after it. */
  next(tokenId: number): Promise<StepOutput>;
  /** Token ids of the current sequence as the model sees them (padding and RETRO++ context included). */
  readonly sequence: readonly number[];
  /** Number of leading tokens of `sequence` that are not the user's (left padding, RETRO++ context). */
  readonly prefixLength: number;
  dispose(): Promise<void>;
}

/** The final row of a StepOutput (the distribution of the next token). */
export function lastLogits(out: StepOutput, vocabSize: number): Float32Array {
  return out.logits.subarray((out.rows - 1) * vocabSize, out.rows * vocabSize);
}
