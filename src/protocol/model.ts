/**
 * Types the model runtime (src/core/runtime, models, generate, eval) shares with the workers and
 * the UI. Types only: everything here crosses a worker boundary by structured clone.
 */
import type { Architecture } from './manifest';

/** Where a model's graphs run: `cpu` is onnxruntime-node's native CPU provider (Node tools only). */
export type Backend = 'webgpu' | 'wasm' | 'cpu';

/** Which backend a model runs on and why it was chosen (shown in the UI). */
export interface BackendInfo {
  backend: Backend;
  /** One sentence, e.g. "WebGPU adapter found and the self-check passed (max |logit diff| 2.1e-5)". */
  reason: string;
  /** WASM (or native CPU) threads (1 unless the page is cross-origin isolated). */
  threads?: number;
  /** WebGPU self-check: max |logit difference| between WebGPU and WASM on the same input. */
  selfCheckMaxAbsDiff?: number;
}

/** `auto`: WebGPU when an adapter exists and the self-check passes, else WASM. `cpu`: Node tools only. */
export type BackendPreference = 'auto' | Backend;

/** Why a model failed to load; `ModelLoadError.code` in src/core/runtime/errors.ts. */
export type ModelLoadErrorCode =
  | 'missing-file'
  | 'bad-manifest'
  | 'format-version'
  | 'size-mismatch'
  | 'hash-mismatch'
  | 'bad-onnx'
  | 'contract-mismatch';

/**
 * An error as it crosses a worker boundary: its class name (e.g. 'AbortError', 'ModelLoadError',
 * 'ShardMismatchError'), its message, and a code where the error has one (ModelLoadErrorCode).
 */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
}

/** A neighbour as the model received it (the display form is api.ts's NeighbourDisplay). */
export interface NeighbourView {
  /** chunk + continuation, 2C ids (neighbour_len), as fed to the encoder before padding. */
  tokenIds: number[];
  distance?: number;
  title?: string;
  text?: string;
  docId?: number;
}

/**
 * One retrieval done by RETRO while reading or generating. With the default retrieval step
 * (= chunk) there is one record per completed chunk.
 */
export interface ChunkRetrieval {
  /** 'chunk': neighbours for chunked cross-attention; 'context': RETRO++ top-1 put before the prompt. */
  purpose: 'chunk' | 'context';
  /** Chunk slot whose cross-attention uses these neighbours, counted from the sequence start (-1 for 'context'). */
  chunkIndex: number;
  /** Position (from the sequence start, left padding included) of the token that triggered it. */
  position: number;
  /** Query token ids (the last `chunk` tokens, left padding removed). */
  queryTokenIds: number[];
  neighbours: NeighbourView[];
}

/** RETRO controls (docs in src/core/models/retro.ts): what a generation request carries and what RetroModel runs with. */
export interface RetroSettings {
  /** false: no cross-attention at all (every position masked, as before the first chunk). */
  retrieval: boolean;
  /** Neighbours used, 1..manifest neighbours. Fewer than the graph's K are repeated cyclically. */
  k: number;
  /** Re-retrieve every `retrievalStep` tokens with the last `chunk` tokens as query (default: chunk). */
  retrievalStep: number;
  /** Left-pad the prompt with eot to a multiple of `chunk`, so retrieval starts at the prompt's end. */
  leftPad: boolean;
  /** RETRO++: put the top-1 neighbour of the prompt into the decoder context before the prompt. */
  retroPlusPlus: boolean;
  /** Passed to the neighbour source: documents that must not be retrieved. */
  excludeDocIds: number[];
  /**
   * The random-neighbour control (Borgeaud et al.; docs/retro-training.md): each retrieval returns k
   * places drawn at random from the datastore, not the nearest. The draw depends only on the query,
   * so the same prompt gets the same random neighbours again.
   */
  randomNeighbours?: boolean;
}

/** The name src/core/models/retro.ts imports; the same type. */
export type RetroOptions = RetroSettings;

export interface SamplingSettings {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  seed: number;
  /**
   * Logits processors, named and defined as in Hugging Face `generate`, applied before sampling
   * (greedy too). Token ids that are never produced, e.g. `<unk>` (`suppress_tokens`).
   */
  suppressTokens?: readonly number[];
  /** CTRL's repetition penalty over the prompt and the text so far (`repetition_penalty`); 1 = off. */
  repetitionPenalty?: number;
  /** No n-gram of this size occurs twice in the prompt plus the text so far (`no_repeat_ngram_size`); 0 = off. */
  noRepeatNgramSize?: number;
}

export interface GenerationSettings extends SamplingSettings {
  maxNewTokens: number;
  /** Stop when this token is produced (eot by default); null = never. */
  stopTokenId?: number | null;
}

/** One generated token as streamed to the UI. */
export interface GeneratedToken {
  tokenId: number;
  /** 0-based index among the generated tokens. */
  index: number;
  /** Probability of the chosen token under the sampling distribution. */
  probability: number;
  /** Probability the model itself gave the chosen token (softmax of its logits, before the decoding rules). */
  modelProbability: number;
  /** The model's most likely next tokens at this step, most likely first (before the decoding rules). */
  alternatives: { tokenId: number; probability: number }[];
  /** Generated tokens per second so far (prefill excluded). */
  tokensPerSecond: number;
  elapsedMs: number;
  /** Retrievals triggered while producing this token (RETRO). */
  retrievals: ChunkRetrieval[];
}

export interface GenerationSummary {
  tokenIds: number[];
  prefillMs: number;
  decodeMs: number;
  tokensPerSecond: number;
  stoppedBy: 'length' | 'stop-token' | 'abort';
  retrievals: ChunkRetrieval[];
}

/** What a loaded model reports about itself (the UI's summary is api.ts's ModelDescription). */
export interface ModelInfo {
  id: string;
  name: string;
  architecture: Architecture;
  vocabSize: number;
  context: number;
  chunk?: number;
  neighbours?: number;
  backend: BackendInfo;
}

/** Result of `npm run eval` (one JSON object). */
export interface PerplexityResult {
  model: string;
  split: string;
  neighbours?: 'real' | 'random' | 'leakage' | 'none';
  windows: number;
  scored_tokens: number;
  words?: number;
  nll: number;
  token_ppl: number;
  word_ppl?: number;
  seconds: number;
  backend: Backend;
}
