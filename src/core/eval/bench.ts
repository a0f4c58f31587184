/**
 * Decode-speed measurement shared by `npm run bench` (Node, WASM) and, later, the browser (call
 * it in the inference worker with the loaded models and post the same JSON lines).
 */
import type { LanguageModel } from '../models/types';
import { generate } from '../generate/loop';
import { GREEDY } from '../generate/sampler';

export interface DecodeBenchResult {
  bench: 'decode';
  model: string;
  architecture: string;
  backend: string;
  backend_reason: string;
  threads?: number;
  /** what the RETRO run retrieved from ('none' for GPT) */
  neighbours: string;
  prompt_tokens: number;
  new_tokens: number;
  prefill_ms: number;
  decode_ms: number;
  tokens_per_second: number;
  ms_per_token: number;
  retrievals: number;
  runs: number;
}

export interface DecodeBenchOptions {
  newTokens?: number;
  /** measured runs after one warm-up; the fastest is reported (least disturbed by other load) */
  runs?: number;
  neighbours?: string;
}

/** Greedy decode of `newTokens` tokens after `promptIds`, no stop token. */
export async function decodeBench(model: LanguageModel, promptIds: readonly number[], options: DecodeBenchOptions = {}): Promise<DecodeBenchResult> {
  const newTokens = options.newTokens ?? 128;
  const settings = { ...GREEDY, maxNewTokens: newTokens, stopTokenId: null };
  await generate(model, promptIds, { ...settings, maxNewTokens: 8 });
  let best: Awaited<ReturnType<typeof generate>> | null = null;
  for (let r = 0; r < Math.max(1, options.runs ?? 2); r++) {
    const run = await generate(model, promptIds, settings);
    if (!best || run.decodeMs < best.decodeMs) best = run;
  }
  const b = best!;
  const info = model.info;
  return {
    bench: 'decode',
    model: info.id,
    architecture: info.architecture,
    backend: info.backend.backend,
    backend_reason: info.backend.reason,
    ...(info.backend.threads !== undefined ? { threads: info.backend.threads } : {}),
    neighbours: options.neighbours ?? 'none',
    prompt_tokens: promptIds.length,
    new_tokens: b.tokenIds.length,
    prefill_ms: round(b.prefillMs),
    decode_ms: round(b.decodeMs),
    tokens_per_second: round(b.tokensPerSecond),
    ms_per_token: round(b.decodeMs / Math.max(1, b.tokenIds.length - 1)),
    retrievals: b.retrievals.length,
    runs: Math.max(1, options.runs ?? 2),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
