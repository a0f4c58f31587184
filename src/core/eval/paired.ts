/**
 * Paired comparison of two models scored on the same tokens (`npm run eval -- --token-logprobs`):
 * the change in token-level perplexity and a bootstrap interval over articles. Articles, not tokens,
 * are resampled because tokens within an article are far from independent (a model that knows an
 * article's topic is better on most of its tokens), so a per-token interval would be much too narrow.
 */
import { Rng } from '../generate/rng';

export interface PairedComparison {
  /** Token-level perplexity of A and of B over the tokens both scored. */
  ppl_a: number;
  ppl_b: number;
  /** 100 × (ppl_b / ppl_a − 1): negative when B is better. */
  change_percent: number;
  /** Percentile bootstrap interval of change_percent, articles resampled with replacement. */
  ci_percent: [number, number];
  confidence: number;
  resamples: number;
  articles: number;
  /** Articles on which B's perplexity is lower than A's. */
  articles_b_better: number;
  tokens: number;
}

export interface PairedOptions {
  resamples?: number;
  confidence?: number;
  seed?: number;
}

/**
 * `logprobsA[j]` / `logprobsB[j]`: log-probability each model gave stream token j + 1 (NaN where
 * it was not scored). `articleLengths`: the stream's articles in order, in tokens; a target token
 * belongs to the article that holds it.
 */
export function pairedComparison(
  logprobsA: Float32Array,
  logprobsB: Float32Array,
  articleLengths: readonly number[],
  options: PairedOptions = {},
): PairedComparison {
  if (logprobsA.length !== logprobsB.length) {
    throw new RangeError(`the two runs scored streams of different lengths (${logprobsA.length + 1} and ${logprobsB.length + 1} tokens)`);
  }
  const streamLength = articleLengths.reduce((n, l) => n + l, 0);
  if (streamLength !== logprobsA.length + 1) {
    throw new RangeError(`articles hold ${streamLength} tokens but the runs scored a stream of ${logprobsA.length + 1}`);
  }
  const resamples = options.resamples ?? 10_000;
  const confidence = options.confidence ?? 0.95;
  const nllA: number[] = [];
  const nllB: number[] = [];
  const counts: number[] = [];
  // The stream's first token is never a target; every other token belongs to the article holding it.
  let target = 1;
  let end = 0;
  for (const length of articleLengths) {
    let a = 0;
    let b = 0;
    let n = 0;
    end += length;
    for (; target < end; target++) {
      const la = logprobsA[target - 1]!;
      const lb = logprobsB[target - 1]!;
      if (Number.isNaN(la) !== Number.isNaN(lb)) {
        throw new RangeError(`token ${target} was scored by one run and not the other: compare runs over the same windows`);
      }
      if (Number.isNaN(la)) continue;
      a -= la;
      b -= lb;
      n++;
    }
    if (n > 0) {
      nllA.push(a);
      nllB.push(b);
      counts.push(n);
    }
  }
  if (counts.length === 0) throw new RangeError('no token was scored by both runs');
  const change = (idx: ArrayLike<number>): number => {
    let da = 0;
    let db = 0;
    let n = 0;
    for (let i = 0; i < idx.length; i++) {
      const j = idx[i]!;
      da += nllA[j]!;
      db += nllB[j]!;
      n += counts[j]!;
    }
    return 100 * (Math.exp((db - da) / n) - 1);
  };
  const all = counts.map((_, i) => i);
  const totalA = nllA.reduce((s, x) => s + x, 0);
  const totalB = nllB.reduce((s, x) => s + x, 0);
  const tokens = counts.reduce((s, x) => s + x, 0);
  const rng = new Rng(options.seed ?? 0);
  const draws = new Float64Array(resamples);
  const idx = new Int32Array(counts.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < idx.length; i++) idx[i] = rng.int(idx.length);
    draws[r] = change(idx);
  }
  draws.sort();
  const tail = (1 - confidence) / 2;
  const at = (q: number) => draws[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))]!;
  return {
    ppl_a: Math.exp(totalA / tokens),
    ppl_b: Math.exp(totalB / tokens),
    change_percent: change(all),
    ci_percent: [at(tail), at(1 - tail)],
    confidence,
    resamples,
    articles: counts.length,
    articles_b_better: nllB.filter((b, i) => b < nllA[i]!).length,
    tokens,
  };
}
