/** kNN-LM constants and core-only types; what crosses the worker boundary is in src/protocol/knnlm.ts. */
import type { KnnLmSettings } from '../../protocol/knnlm';

export type { ExplainOptions, KnnEntryView, KnnLmSettings, KnnTokenExplanation, LambdaTable, TokenProbability } from '../../protocol/knnlm';

/**
 * Tuned on WikiText-2 valid with the default datastore (WikiText-2 train, PCA-64 int8 keys; the sweep
 * in docs/knnlm.md): λ = 0.5, k = 1024, T = 10. The paper's WikiText-103 values (λ = 0.25, T = 1) are
 * 26% worse here: with T = 1 the nearest key takes all the weight at these distances.
 */
export const DEFAULT_KNN_SETTINGS: Readonly<KnnLmSettings> = { lambda: 0.5, k: 1024, temperature: 10 };

/** Khandelwal et al. (2020), WikiText-103: for comparison in the docs and the UI. */
export const PAPER_KNN_SETTINGS: Readonly<KnnLmSettings> = { lambda: 0.25, k: 1024, temperature: 1 };

/** Largest k the model and the eval accept. */
export const MAX_KNN_K = 4096;

/** Nearest entries of one query, nearest first (ties: smaller entry first). */
export interface KnnSearchResult {
  /** datastore entry indices */
  ids: Int32Array;
  /** squared L2 distances in the stored key space (after PCA when the datastore projects) */
  distances: Float32Array;
}

