import type { RetrieverKind } from './retrieval';

/** REPLUG's settings (src/core/replug/types.ts explains the method as RetroLab runs it). */
export interface ReplugSettings {
  /** Passages per retrieval, each read by its own copy of the GPT's context. */
  k: number;
  /** τ: passage weights are softmax(similarity / τ); small τ trusts the nearest passage more. */
  temperature: number;
  /** s: retrieve every `stride` predicted tokens (as In-Context RALM). */
  stride: number;
  /** l: the query is the last `queryLength` tokens. */
  queryLength: number;
  /**
   * How the passages are found (default 'dense'). With 'bm25' the weights are softmax(s / τ) with
   * s = each passage's BM25 score over the top passage's (1 for the top one), src/core/replug/types.ts.
   */
  retriever?: RetrieverKind;
}

/** What one generated token owes to each passage: its weight and the probability that passage's GPT run gave the token. */
export interface ReplugTokenShare {
  weight: number;
  probability: number;
}
