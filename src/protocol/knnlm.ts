/**
 * What a kNN-LM run is asked for and what it explains back: plain data that crosses the inference
 * engine's boundary (src/core/knnlm computes it).
 */

/** The three controls of the interpolation (docs/knnlm.md). */
export interface KnnLmSettings {
  /** weight of p_kNN in the mixture, 0..1 */
  lambda: number;
  /** neighbours retrieved per token */
  k: number;
  /** p_kNN = softmax(−d / temperature) over the neighbours; d is the squared L2 distance */
  temperature: number;
  /**
   * RetoMaton's pointers (src/core/knnlm/retomaton.ts): when at least this many of the last step's
   * neighbours went on with the written token, their next entries are the neighbours and the search is
   * skipped. 0 or absent: search at every token (the plain kNN-LM).
   */
  pointers?: number;
  /**
   * Adaptive kNN-LM (src/core/knnlm/adaptive.ts): skip the search when the GPT's top next-token
   * probability is at least this θ; that token uses p_LM alone (λ = 0). 0 or absent: never skip.
   */
  skipAbove?: number;
  /** Adaptive kNN-LM: λ by the nearest neighbour's distance (replaces `lambda` when present). */
  lambdaTable?: LambdaTable;
  /**
   * Which index answers the searches: 'ivf' (the shard's IVF lists, approximate, several times
   * faster) or 'exact' (the int8 scan of every key, the reference). Absent: the datastore's default,
   * IVF when the shard has lists (src/core/knnlm/ivf.ts, docs/benchmarks.md).
   */
  search?: 'exact' | 'ivf';
  /**
   * Search only the datastore's first `fraction` of entries, 0 < fraction <= 1 (absent: 1). The
   * entries are in text order (entry i = token i + 1 of the datastore text), so this is the kNN-LM
   * with a datastore of the text's first tokens: the data-size curve (docs/curves.md). Small
   * prefixes are scanned exactly even when the IVF lists are asked for (KnnDatastore.search).
   */
  fraction?: number;
  /**
   * The random-neighbour control (docs/controls.md): k entries drawn at random from the datastore
   * instead of the k nearest, seeded by the context (the same text draws the same entries); their
   * distances to the query key are computed exactly, so p_kNN = softmax(−d / T) is still defined.
   */
  randomNeighbours?: boolean;
}

/**
 * λ per bucket of the nearest neighbour's distance: bucket i holds distances in
 * [edges[i−1], edges[i]) (the first from 0, the last to ∞), so there is one λ more than edges.
 */
export interface LambdaTable {
  /** increasing bucket edges, in the datastore's squared-L2 distance */
  edges: number[];
  lambdas: number[];
}

export interface TokenProbability {
  tokenId: number;
  probability: number;
}

/** A datastore entry shown in the explanation: where in the datastore text it comes from. */
export interface KnnEntryView {
  /** entry index: the key of datastore stream position `entry`, the value is the token after it */
  entry: number;
  distance: number;
  /** the value: the token that followed this context in the datastore */
  tokenId: number;
  /** this entry's share of p_kNN (softmax of −d/T over the k neighbours) */
  weight: number;
  docId: number;
  title: string;
  /** datastore text just before the value token (the context the key encodes, its tail) */
  textBefore: string;
  /** the value token's own text */
  tokenText: string;
  textAfter: string;
}

/** Why the kNN-LM predicted what it did at one position. */
export interface KnnTokenExplanation {
  /** index in `model.sequence` of the last token read: this is the distribution of the token after it */
  position: number;
  settings: KnnLmSettings;
  /** most likely next tokens under each distribution, most likely first */
  lm: TokenProbability[];
  knn: TokenProbability[];
  mix: TokenProbability[];
  /** the token that actually came next in the sequence, when known, and its probability under each */
  next?: { tokenId: number; lm: number; knn: number; mix: number };
  /** nearest entries first */
  neighbours: KnnEntryView[];
  /**
   * How this position was retrieved and mixed: `searched` false when no search ran (RetoMaton's
   * pointers gave the neighbours, or, with `skipped`, the adaptive rule found the GPT confident and
   * used p_LM alone); `lambda` the λ the run mixed with (0 when skipped, the table's when adaptive);
   * `lmTop` the GPT's top next-token probability; `nearest` the first neighbour's distance.
   */
  retrieval: { searched: boolean; skipped: boolean; lambda: number; lmTop: number; nearest?: number };
}

export interface ExplainOptions {
  /** tokens listed per distribution (default 10) */
  topTokens?: number;
  /** neighbours listed (default 16) */
  topNeighbours?: number;
  /** bytes of datastore text before / after the value token (defaults 240 / 60) */
  textBefore?: number;
  textAfter?: number;
  /** Re-mix with other λ / T / k (k up to the k that was retrieved) without running the model again. */
  settings?: Partial<KnnLmSettings>;
}
