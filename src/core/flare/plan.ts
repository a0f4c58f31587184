/**
 * FLARE's two decisions (types.ts): which look-ahead tokens trigger a retrieval, and the masked
 * query. The generation wrapper and the eval both call these, so they agree token for token.
 */
import type { FlareLookaheadToken, FlareSettings } from './types';

/** Indices of the look-ahead tokens whose probability is below θ (strictly: θ = 0 never triggers). */
export function triggerTokens(lookahead: readonly FlareLookaheadToken[], threshold: number): number[] {
  const out: number[] = [];
  lookahead.forEach((t, i) => {
    if (t.probability < threshold) out.push(i);
  });
  return out;
}

/**
 * The recent text followed by the look-ahead without its tokens below β, cut to the last
 * `queryLength` tokens. `text` is the sequence so far; only its last `queryLength` tokens can matter.
 */
export function maskedQuery(text: ArrayLike<number>, end: number, lookahead: readonly FlareLookaheadToken[], settings: Pick<FlareSettings, 'maskBelow' | 'queryLength'>): number[] {
  const kept = lookahead.filter((t) => t.probability >= settings.maskBelow).map((t) => t.id);
  const fromText = Math.max(0, settings.queryLength - kept.length);
  const start = Math.max(0, end - fromText);
  const query: number[] = [];
  for (let i = start; i < end; i++) query.push(text[i]!);
  query.push(...kept);
  return query.slice(Math.max(0, query.length - settings.queryLength));
}

/** Index and probability of the most likely token of a logits row. */
export function greedyChoice(logits: Float32Array, offset: number, length: number): FlareLookaheadToken {
  let best = offset;
  let max = -Infinity;
  for (let i = offset; i < offset + length; i++) {
    if (logits[i]! > max) {
      max = logits[i]!;
      best = i;
    }
  }
  let sum = 0;
  for (let i = offset; i < offset + length; i++) sum += Math.exp(logits[i]! - max);
  return { id: best - offset, probability: 1 / sum };
}
