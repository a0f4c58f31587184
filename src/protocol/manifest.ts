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
  /** Symbolic dims are strings (batch, tokens, past, total, chunks); fixed dims are numbers. */
  shape: (number | string)[];
}

export interface GraphSpec {
  file: string;
  bytes: number;
  sha256: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
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
  onnx: {
    decoder: GraphSpec;
    /** RETRO only: neighbour encoder + CCA key/value projections, run once per completed chunk. */
    encoder?: GraphSpec;
  };
  quantization: { method: string; fp32_reference_max_abs_logit_diff?: number };
  training: Record<string, unknown>;
  metrics: Partial<Record<'wt2_test' | 'wt2_valid' | 'wt2_test_random_neighbours' | 'wt2_test_leakage' | 'wt2_test_knnlm' | 'wt2_test_icralm', PerplexityMetric & Record<string, unknown>>>;
}
