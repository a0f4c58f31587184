/**
 * manifest.json of a shipped model (public/models/<id>/manifest.json), written by
 * models/retrolab/ship.py. Documented in docs/manifest.md. Bump MANIFEST_FORMAT_VERSION on any
 * incompatible change.
 */
export const MANIFEST_FORMAT_VERSION = 1;

export type Architecture = 'gpt' | 'retro';

export interface TensorSpec {
  name: string;
  dtype: 'int64' | 'float32';
  /** Symbolic dims are strings (batch, tokens, past, total, chunks, batch_size, past_sequence_length); fixed dims are numbers. */
  shape: (number | string)[];
}

export interface GraphSpec {
  file: string;
  bytes: number;
  sha256: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /**
   * GPT decoder only: sha256s of earlier graphs of the same weights whose knn_key this graph
   * computes bit for bit (models/retrolab/relayout.py rewrote their cache I/O and fused their
   * attention). kNN-LM keys recorded under one of them are this graph's keys.
   */
  same_keys_as?: string[];
}

/**
 * Whether keys (kNN-LM datastore keys, RETRO's token-aligned queries) recorded as coming from the
 * decoder with sha256 `sha` are the keys of `decoder`: the same file, or one it names in same_keys_as.
 */
export function keysMatchDecoder(decoder: GraphSpec, sha: string): boolean {
  return sha === decoder.sha256 || (decoder.same_keys_as?.includes(sha) ?? false);
}

export interface PerplexityMetric {
  token_ppl: number;
  word_ppl: number;
}

export interface ModelManifest {
  format_version: number;
  id: string;
  name: string;
  architecture: Architecture;
  hyperparameters: {
    vocab_size: number;
    context: number;
    n_layer: number;
    n_head: number;
    d_model: number;
    head_dim: number;
    dropout: number;
    /** RETRO only */
    chunk?: number;
    neighbours?: number;
    neighbour_len?: number;
    cca_layers?: number[];
    encoder_layers?: number;
    /** RETRO only, default 1: with n > 1 the decoder graph takes previous_ids [B, n-1], the n-1 tokens
     * before input position 0, oldest first, -1 where there is none (docs/manifest.md). */
    match_ngram?: number;
    /** RETRO only, default false: the encoder graph takes chunk_ids [batch, chunks, chunk] (docs/manifest.md). */
    chunk_agreement?: boolean;
  };
  tokenizer: { file: string; id: string; unk_id: number; eot_id: number; vocab_size: number };
  /** RETRO only. Retrieval embedder: L2-normalised mean of a frozen int8 token-embedding table over a chunk. */
  embedder?: {
    id: string;
    file: string;
    vocab_size: number;
    dim: number;
    pooling: 'mean';
    normalize: true;
    /** bytes: int8 table [vocab_size, dim] row-major, then float32 LE scales [vocab_size] */
    layout: 'int8-rows+f32-scales';
  };
  /**
   * RETRO only, when it was trained on token-aligned neighbours (docs/manifest.md): the query for
   * chunk u is the GPT `query_model`'s knn_key at the chunk's last token, the datastore is that
   * GPT's kNN-LM keys (one per token), and a match at entry p gives the `chunk` tokens ending at p
   * followed by the `chunk` tokens after it (neighbour_len = 2 × chunk). Absent: chunk retrieval
   * with `embedder`.
   */
  retrieval?: {
    kind: 'token-aligned';
    query_model: string;
    /** sha256 of the query GPT's decoder.int8.onnx: the keys only mean something to those weights */
    query_decoder_sha256: string;
  };
  onnx: {
    decoder: GraphSpec;
    /** RETRO only: neighbour encoder + CCA key/value projections, run once per completed chunk. */
    encoder?: GraphSpec;
  };
  quantization: { method: string; fp32_reference_max_abs_logit_diff?: number };
  training: Record<string, unknown>;
  metrics: Partial<Record<'wt2_test' | 'wt2_valid' | 'wt2_test_random_neighbours' | 'wt2_test_leakage' | 'wt2_test_knnlm' | 'wt2_test_adaptive_knnlm' | 'wt2_test_retomaton' | 'wt2_test_icralm' | 'wt2_test_replug' | 'wt2_test_rag_sequence' | 'wt2_test_flare', PerplexityMetric & Record<string, unknown>>> &
    Partial<Record<`${'copy_test' | 'squad_cloze'}${'' | '_knnlm' | '_icralm'}`, ReadingMetric>>;
}

/** A reading test's hit rate (npm run eval:generate, docs/manifest.md). */
export interface ReadingMetric {
  rate: number;
  n: number;
  hits: number;
  /** Wilson 95% interval */
  ci95: [number, number];
  decoding: string;
  measured_by: string;
}

/** Whether a RETRO reads token-aligned neighbours from kNN-LM keys (manifest `retrieval`). */
export function isTokenAligned(manifest: ModelManifest): boolean {
  return manifest.retrieval?.kind === 'token-aligned';
}

/**
 * Chunk size and neighbour length of the chunk datastores (the `.rlds` chunk sections that In-Context
 * RALM, the datastore search and chunk-retrieval RETRO read). A chunk-retrieval RETRO sets them; a
 * token-aligned RETRO reads kNN-LM keys instead, so the chunk datastores keep 32-token chunks with
 * 32-token continuations, the geometry In-Context RALM was measured with.
 */
export function chunkDatastoreGeometry(manifest: ModelManifest): { chunk: number; neighbourLen: number } {
  const hp = manifest.hyperparameters;
  if (isTokenAligned(manifest) || !hp.chunk) return { chunk: 32, neighbourLen: 64 };
  return { chunk: hp.chunk, neighbourLen: hp.neighbour_len ?? 2 * hp.chunk };
}
