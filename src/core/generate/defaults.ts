/**
 * The decoding options every column starts with, in the app and in the Node measurements (chosen by
 * `npm run eval:generate -- --task quality`, docs/retro-training.md "Readable generations"). Greedy
 * decoding of these small models falls into `<unk>` lists and loops; these stop both, and perplexity
 * (which scores the text as it is) is unaffected.
 */
export const DEFAULT_PROCESSORS = {
  /** `<unk>` is never written */
  suppressUnk: true,
  repetitionPenalty: 1.2,
  noRepeatNgramSize: 3,
} as const;
