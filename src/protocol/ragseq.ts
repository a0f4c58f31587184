/** RAG-Sequence's settings (src/core/ragseq/types.ts explains the method as RetroLab runs it). */
export interface RagSequenceSettings {
  /** Passages retrieved once per sequence, each read by its own GPT run. */
  k: number;
  /** τ: the prior p(z | x) = softmax(similarity / τ), as REPLUG's weights. */
  temperature: number;
  /** Tokens per scored sequence y (the lens and the eval cut the text into sequences of this length). */
  span: number;
  /** l: the query is the last `queryLength` tokens before the sequence. */
  queryLength: number;
}

/** One sequence the lens scored: its passages, their prior, and the posterior before each of its tokens. */
export interface RagSequenceBlock {
  /** token positions [start, end) of the sequence in the lens's token list */
  start: number;
  end: number;
  passages: { title: string; text: string; distance: number }[];
  /** p(z | x), one per passage */
  prior: number[];
  /** posterior[i][z] = p(z | x, y_<i) before the block's i-th token; the last row is after its last token */
  posterior: number[][];
}

/** Thorough decoding: a greedy continuation per passage, each scored under every passage. */
export interface RagSequenceDecodeRequest {
  prompt: string;
  settings: Pick<RagSequenceSettings, 'k' | 'temperature' | 'queryLength'>;
  /** tokens per candidate (at most 64: the rest of the context holds the passage and the prompt) */
  maxTokens: number;
}

export interface RagSequenceCandidate {
  text: string;
  tokenIds: number[];
  /** indices of the passages whose greedy decoding wrote this candidate */
  fromPassages: number[];
  /** log p(y | x, z) under each passage */
  perPassage: number[];
  /** log p(y | x) = log Σ_z p(z | x) p(y | x, z) */
  logMarginal: number;
}

export interface RagSequenceDecodeResult {
  passages: { title: string; text: string; distance: number }[];
  prior: number[];
  candidates: RagSequenceCandidate[];
  /** index of the candidate with the largest marginal */
  chosen: number;
  seconds: number;
}

export type RagSequenceDecodeEvent = { type: 'progress'; phase: 'retrieve' | 'decode' | 'score'; done: number; total: number };
