import type { ChunkRetrieval, GeneratedToken, GenerationSettings, GenerationSummary } from '../../protocol/model';
import type { LanguageModel, StepOutput } from '../models/types';
import { yieldToEventLoop } from '../event-loop';
import { Rng } from './rng';
import { processLogits, sample, topAlternatives, validateSampling } from './sampler';

/** How many of the model's most likely next tokens each generated token carries for the UI. */
export const ALTERNATIVES_SHOWN = 5;

/** How often the loop lets the event loop run (a Stop pressed mid-column is read within this, plus one token). */
const YIELD_EVERY_MS = 25;

export interface GenerateOptions {
  signal?: AbortSignal;
  /** Called for every token as it is produced (the UI's streaming hook). */
  onToken?: (token: GeneratedToken) => void;
  /** Clock in ms (tests); default performance.now. */
  now?: () => number;
}

/**
 * Decoding loop shared by every model: prefill the prompt, then sample and feed one token at a
 * time. Each call seeds its own PRNG from `settings.seed`, so the compare view gets identical
 * sampling for every model by passing them the same settings object.
 *
 * Yields each token; the generator's return value is the summary. Stops at maxNewTokens, at the
 * stop token (not yielded), or when `signal` aborts (checked between model calls).
 */
export async function* generateStream(
  model: LanguageModel,
  promptIds: readonly number[],
  settings: GenerationSettings,
  options: GenerateOptions = {},
): AsyncGenerator<GeneratedToken, GenerationSummary, void> {
  validateSampling(settings);
  const now = options.now ?? (() => performance.now());
  const stopTokenId = settings.stopTokenId === undefined ? model.manifest.tokenizer.eot_id : settings.stopTokenId;
  const rng = new Rng(settings.seed);
  const tokenIds: number[] = [];
  // What the repetition penalty and no-repeat n-gram see: the prompt, then the generated tokens.
  const context: number[] = [...promptIds];
  const allRetrievals: ChunkRetrieval[] = [];
  const t0 = now();
  const summary = (stoppedBy: GenerationSummary['stoppedBy'], decodeStart: number): GenerationSummary => {
    const decodeMs = now() - decodeStart;
    return {
      tokenIds,
      prefillMs: decodeStart - t0,
      decodeMs,
      tokensPerSecond: decodeMs > 0 ? (tokenIds.length * 1000) / decodeMs : 0,
      stoppedBy,
      retrievals: allRetrievals,
    };
  };
  if (options.signal?.aborted) return summary('abort', t0);
  let out: StepOutput = await model.start(promptIds.length > 0 ? promptIds : [model.manifest.tokenizer.eot_id]);
  const decodeStart = now();
  let lastYield = decodeStart;
  const V = model.info.vocabSize;
  if (settings.maxNewTokens <= 0) {
    allRetrievals.push(...out.retrievals);
    return summary('length', decodeStart);
  }
  for (let index = 0; index < settings.maxNewTokens; index++) {
    allRetrievals.push(...out.retrievals);
    if (options.signal?.aborted) return summary('abort', decodeStart);
    const modelLogits = out.logits.subarray((out.rows - 1) * V, out.rows * V);
    const logits = processLogits(modelLogits, context, settings);
    const { tokenId, probability } = sample(logits, settings, rng);
    if (stopTokenId !== null && tokenId === stopTokenId) return summary('stop-token', decodeStart);
    tokenIds.push(tokenId);
    context.push(tokenId);
    const elapsedMs = now() - decodeStart;
    const { alternatives, chosenProbability } = topAlternatives(modelLogits, ALTERNATIVES_SHOWN, tokenId);
    const token: GeneratedToken = {
      tokenId,
      index,
      probability,
      modelProbability: chosenProbability,
      alternatives,
      tokensPerSecond: elapsedMs > 0 ? ((index + 1) * 1000) / elapsedMs : 0,
      elapsedMs,
      retrievals: out.retrievals,
    };
    options.onToken?.(token);
    yield token;
    // A model step can resolve without ever leaving the microtask queue (WASM), so a worker would not
    // read its messages, "stop" among them, until the loop ended: hand the event loop a turn now and then.
    if (now() - lastYield >= YIELD_EVERY_MS) {
      await yieldToEventLoop();
      lastYield = now();
    }
    if (index + 1 < settings.maxNewTokens && !options.signal?.aborted) out = await model.next(tokenId);
  }
  return summary(options.signal?.aborted ? 'abort' : 'length', decodeStart);
}

/** Runs generateStream to the end and returns the summary. */
export async function generate(
  model: LanguageModel,
  promptIds: readonly number[],
  settings: GenerationSettings,
  options: GenerateOptions = {},
): Promise<GenerationSummary> {
  const stream = generateStream(model, promptIds, settings, options);
  for (;;) {
    const step = await stream.next();
    if (step.done) return step.value;
  }
}
