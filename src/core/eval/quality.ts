/**
 * Text-quality metrics of generated continuations, the measuring stick of the NVIDIA RETRO study
 * ("Shall we pretrain autoregressive LMs with retrieval?", Wang et al. 2023, section 5): repetition,
 * diversity (distinct-n, Self-BLEU), the Zipf coefficient of the token distribution, plus the share
 * of `<unk>` this word-piece vocabulary writes. They read token ids, so every column is measured on
 * the same units whatever its detokenisation.
 */

export interface QualityMetrics {
  continuations: number;
  tokens: number;
  /** Mean over continuations of the share of 4-grams that repeat an earlier 4-gram of the same continuation. */
  repetition4: number;
  /** Distinct n-grams / n-grams, pooled over all continuations (Li et al. 2016). */
  distinct1: number;
  distinct2: number;
  /** Mean BLEU-4 of each continuation against all the others as references (Zhu et al. 2018); lower is more diverse. */
  selfBleu4: number;
  /** -slope of log frequency against log rank over the pooled tokens (Holtzman et al. 2020); human text is near 1. */
  zipf: number;
  /** Share of tokens that are `<unk>`. */
  unkRate: number;
}

type Seq = readonly number[];

function ngramKeys(seq: Seq, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= seq.length; i++) out.push(seq.slice(i, i + n).join(','));
  return out;
}

/** Share of the continuation's n-grams that already occurred earlier in it (0 when it has none). */
export function repetitionRate(seq: Seq, n = 4): number {
  const grams = ngramKeys(seq, n);
  if (grams.length === 0) return 0;
  return 1 - new Set(grams).size / grams.length;
}

/** Distinct n-grams over all n-grams, pooled over the continuations. */
export function distinctN(seqs: readonly Seq[], n: number): number {
  let total = 0;
  const seen = new Set<string>();
  for (const seq of seqs) {
    for (const g of ngramKeys(seq, n)) {
      seen.add(g);
      total++;
    }
  }
  return total === 0 ? 0 : seen.size / total;
}

function counts(grams: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const g of grams) m.set(g, (m.get(g) ?? 0) + 1);
  return m;
}

/**
 * Sentence BLEU-4 (uniform weights, clipped counts, brevity penalty against the closest reference
 * length) with method-1 smoothing for empty n-gram matches (epsilon 0.1 over the n-gram count), as
 * NLTK's `sentence_bleu` with `SmoothingFunction().method1`, which Texygen's Self-BLEU uses.
 */
export function sentenceBleu(hypothesis: Seq, references: readonly Seq[], maxN = 4): number {
  if (hypothesis.length === 0 || references.length === 0) return 0;
  let logSum = 0;
  for (let n = 1; n <= maxN; n++) {
    const hyp = counts(ngramKeys(hypothesis, n));
    const maxRef = new Map<string, number>();
    for (const ref of references) {
      for (const [g, c] of counts(ngramKeys(ref, n))) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
    }
    let matched = 0;
    let total = 0;
    for (const [g, c] of hyp) {
      matched += Math.min(c, maxRef.get(g) ?? 0);
      total += c;
    }
    if (total === 0) return 0; // shorter than n tokens: no n-grams to score
    logSum += Math.log((matched === 0 ? 0.1 : matched) / total) / maxN;
  }
  const h = hypothesis.length;
  let closest = references[0]!.length;
  for (const ref of references) {
    const d = Math.abs(ref.length - h) - Math.abs(closest - h);
    if (d < 0 || (d === 0 && ref.length < closest)) closest = ref.length;
  }
  const brevity = h > closest ? 1 : Math.exp(1 - closest / h);
  return brevity * Math.exp(logSum);
}

/** Mean BLEU-4 of each continuation against the others. */
export function selfBleu(seqs: readonly Seq[], maxN = 4): number {
  if (seqs.length < 2) return 0;
  let sum = 0;
  for (let i = 0; i < seqs.length; i++) {
    sum += sentenceBleu(seqs[i]!, seqs.filter((_, j) => j !== i), maxN);
  }
  return sum / seqs.length;
}

/** -slope of the least-squares line through (log rank, log frequency) of the pooled tokens. */
export function zipfCoefficient(seqs: readonly Seq[]): number {
  const freq = new Map<number, number>();
  for (const seq of seqs) for (const t of seq) freq.set(t, (freq.get(t) ?? 0) + 1);
  const sorted = [...freq.values()].sort((a, b) => b - a);
  if (sorted.length < 2) return 0;
  const xs = sorted.map((_, i) => Math.log(i + 1));
  const ys = sorted.map((c) => Math.log(c));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return -sxy / sxx;
}

export function qualityMetrics(seqs: readonly Seq[], unkId: number): QualityMetrics {
  const tokens = seqs.reduce((a, s) => a + s.length, 0);
  const unk = seqs.reduce((a, s) => a + s.filter((t) => t === unkId).length, 0);
  return {
    continuations: seqs.length,
    tokens,
    repetition4: seqs.length === 0 ? 0 : seqs.reduce((a, s) => a + repetitionRate(s, 4), 0) / seqs.length,
    distinct1: distinctN(seqs, 1),
    distinct2: distinctN(seqs, 2),
    selfBleu4: selfBleu(seqs),
    zipf: zipfCoefficient(seqs),
    unkRate: tokens === 0 ? 0 : unk / tokens,
  };
}
