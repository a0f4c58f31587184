import type { GenerationSettings } from '../../protocol/model';

/**
 * The decoding every column starts with, in the app and in `npm run eval:generate` (chosen by its
 * `--task quality` numbers, docs/retro-training.md "Readable generations"): greedy decoding of these
 * small models falls into `<unk>` lists and loops (distinct-2 0.05 against the human text's 0.79);
 * nucleus sampling with these processors writes no `<unk>`, no repeated 4-gram, and distinct-2 0.75.
 * Perplexity, which scores the text as it is, is unaffected.
 */
export const DEFAULT_PROCESSORS = {
  /** `<unk>` is never written (Hugging Face `suppress_tokens`) */
  suppressUnk: true,
  repetitionPenalty: 1.2,
  noRepeatNgramSize: 3,
} as const;

/** Sampling, when the strategy is "sample" (the app's default). */
export const DEFAULT_SAMPLING = { temperature: 0.8, topK: 0, topP: 0.9 } as const;

/** The seed the compare view starts with, so the same prompt writes the same text again. */
export const DEFAULT_SEED = 42;

/**
 * A column's default decoding as the loop's settings (the engine makes the same from the compare
 * view's defaults): what the benchmarks time when they time what a class sees.
 */
export function defaultGenerationSettings(unkId: number): Omit<GenerationSettings, 'maxNewTokens'> {
  return {
    ...DEFAULT_SAMPLING,
    seed: DEFAULT_SEED,
    suppressTokens: DEFAULT_PROCESSORS.suppressUnk ? [unkId] : [],
    repetitionPenalty: DEFAULT_PROCESSORS.repetitionPenalty,
    noRepeatNgramSize: DEFAULT_PROCESSORS.noRepeatNgramSize,
  };
}
