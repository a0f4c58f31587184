/**
 * Per-token aggregation for the perplexity lens (pure, unit-tested). The headline perplexities come
 * from the worker (the eval's float64 sums); these work on the per-token log-probabilities it
 * returns: losses, differences between two models, and sums over a range of tokens.
 */

/** Loss in nats (−log p) of each token; NaN where the token was not scored. */
export function tokenLosses(logProbs: Float32Array): Float32Array {
  const out = new Float32Array(logProbs.length);
  for (let i = 0; i < logProbs.length; i++) out[i] = -logProbs[i]!;
  return out;
}

/** loss(A) − loss(B) per token: positive where B gave the token a higher probability. */
export function lossDifference(logProbsA: Float32Array, logProbsB: Float32Array): Float32Array {
  if (logProbsA.length !== logProbsB.length) throw new RangeError('both models must score the same tokens');
  const out = new Float32Array(logProbsA.length);
  for (let i = 0; i < out.length; i++) out[i] = logProbsB[i]! - logProbsA[i]!;
  return out;
}

export interface RangeTotals {
  scoredTokens: number;
  nll: number;
  /** exp(nll / scored tokens); NaN when nothing was scored */
  tokenPpl: number;
  /** exp(nll / words) when `words` is given */
  wordPpl?: number;
}

/** Token- and word-level perplexity of tokens [from, to) from their log-probabilities (float64 sums). */
export function rangeTotals(logProbs: Float32Array, words?: number, from = 0, to = logProbs.length): RangeTotals {
  let nll = 0;
  let scored = 0;
  for (let i = from; i < to; i++) {
    const lp = logProbs[i]!;
    if (Number.isNaN(lp)) continue;
    nll -= lp;
    scored++;
  }
  const totals: RangeTotals = { scoredTokens: scored, nll, tokenPpl: scored > 0 ? Math.exp(nll / scored) : Number.NaN };
  if (words !== undefined && words > 0) totals.wordPpl = Math.exp(nll / words);
  return totals;
}

export interface ComparisonSummary {
  /** tokens where B's loss is lower by more than `tie` nats */
  betterB: number;
  betterA: number;
  same: number;
  /** mean of loss(A) − loss(B) over tokens both scored */
  meanDelta: number;
}

export function compareLosses(logProbsA: Float32Array, logProbsB: Float32Array, tie = 0.01): ComparisonSummary {
  const delta = lossDifference(logProbsA, logProbsB);
  let betterA = 0;
  let betterB = 0;
  let same = 0;
  let sum = 0;
  for (const d of delta) {
    if (Number.isNaN(d)) continue;
    if (d > tie) betterB++;
    else if (d < -tie) betterA++;
    else same++;
    sum += d;
  }
  const n = betterA + betterB + same;
  return { betterA, betterB, same, meanDelta: n > 0 ? sum / n : Number.NaN };
}

/** Pages of at most `size` tokens: the lens draws one page of spans at a time. */
export function pages(count: number, size: number): { from: number; to: number }[] {
  if (size < 1) throw new RangeError('page size must be at least 1');
  const out: { from: number; to: number }[] = [];
  for (let from = 0; from < count; from += size) out.push({ from, to: Math.min(count, from + size) });
  return out.length > 0 ? out : [{ from: 0, to: 0 }];
}
