/**
 * The datastore shard (`.rlds`): types and constants of the versioned binary format written by
 * src/core/datastore/shard.ts and documented byte by byte in docs/datastore-format.md.
 * Bump SHARD_FORMAT_VERSION on any incompatible change; readers reject other versions.
 */
import type { IndexKind } from './retrieval';

/** "RLDS" then \r\n\x1a\n: a text-mode transfer or a truncated first line breaks it visibly. */
export const SHARD_MAGIC: readonly number[] = [0x52, 0x4c, 0x44, 0x53, 0x0d, 0x0a, 0x1a, 0x0a];
export const SHARD_FORMAT_VERSION = 1;
export const SHARD_FILE_EXTENSION = '.rlds';
/** Fixed part of the header in bytes; the section table follows it. */
export const SHARD_FIXED_HEADER_BYTES = 80;
export const SHARD_SECTION_ENTRY_BYTES = 32;

/** Header flag bits. Readers ignore bits they do not know. */
export const SHARD_FLAGS = {
  /**
   * Format-1 placeholder layout, never written by a RetroLab release: float keys in `knnlmKeys`,
   * values in `knnlmValues`, the key dimension in `meta.knnlmKeyDim`. Still read.
   */
  knnlm: 1,
  /**
   * The kNN-LM datastore (docs/knnlm.md): `meta.knnlm` plus the knnlm* sections. A separate bit, so
   * readers that predate it still open such a shard as a chunk datastore (unknown sections and
   * flag bits are skipped) instead of failing on the missing placeholder sections.
   */
  knnlmDatastore: 2,
} as const;

/** Section ids as written in the section table. */
export const SECTION_IDS = {
  tokens: 1,
  chunkLengths: 2,
  chunkDocs: 3,
  chunkTextSpans: 4,
  docTextOffsets: 5,
  texts: 6,
  docTitleOffsets: 7,
  titles: 8,
  embeddingCodes: 9,
  embeddingScales: 10,
  embeddingErrors: 11,
  index: 12,
  knnlmKeys: 13,
  knnlmValues: 14,
  knnlmCodes: 15,
  knnlmScales: 16,
  knnlmPcaMean: 17,
  knnlmPcaBasis: 18,
  knnlmTextOffsets: 19,
  knnlmIvfCentroids: 20,
  knnlmIvfOffsets: 21,
  knnlmIvfIds: 22,
} as const;
export type SectionName = keyof typeof SECTION_IDS;

/** Element types of a section, as written in the section table. */
export const SECTION_DTYPES = { u8: 1, i8: 2, u16: 3, u32: 4, i32: 5, f32: 6 } as const;
export type SectionDtype = keyof typeof SECTION_DTYPES;

export const INDEX_KIND_CODES: Record<IndexKind, number> = { flat: 1, voy: 2 };

/** A document as it enters the builder. */
/** How an input file's text becomes documents (docs/datastore-format.md): a WikiText dump, JSON lines, plain text, Markdown. */
export type DocumentFormat = 'wikitext' | 'jsonl' | 'txt' | 'md';
export const DOCUMENT_FORMATS: readonly DocumentFormat[] = ['wikitext', 'jsonl', 'txt', 'md'];

export interface DocumentInput {
  title: string;
  text: string;
}

/** Free-form metadata stored as JSON in the header (strings, ids, provenance). */
export interface ShardMeta {
  name: string;
  description: string;
  /** ISO 8601 */
  createdAt: string;
  tokenizer: { id: string; fingerprint: string; vocabSize: number; eotId: number; unkId: number };
  embedder: { id: string; fingerprint: string; vocabSize: number; dim: number };
  /** Where the documents came from (file names, sizes); shown in the UI. */
  sources: { name: string; bytes: number; format: string }[];
  /** kNN-LM key dimension of the format-1 placeholder layout (flag bit 0). */
  knnlmKeyDim?: number;
  /** The kNN-LM datastore's parameters (flag bit 1). */
  knnlm?: KnnlmMeta;
  /** Anything else a writer wants to keep (build timings...); readers ignore unknown keys. */
  extra?: Record<string, unknown>;
}

/** The int8 embeddings of the chunks: one scale and one error bound per vector. */
export interface QuantizedVectors {
  count: number;
  dim: number;
  /** count*dim, row-major: x[i][j] ≈ codes[i*dim+j] * scales[i] */
  codes: Int8Array;
  scales: Float32Array;
  /** errors[i] >= ||x_i - codes_i*scales[i]||_2 (rounded up), the bound the flat index relies on */
  errors: Float32Array;
}

/** How kNN-LM keys are stored. */
export type KnnlmKeyEncoding = 'f32' | 'int8';

/** `meta.knnlm`: what the kNN-LM sections hold and which model made the keys. */
export interface KnnlmMeta {
  /** entries (one per token of the datastore stream after its first) */
  count: number;
  /** dimension of the model's `knn_key` (d_model) */
  keyDim: number;
  /** dimension of the stored keys: keyDim, or the PCA dimension */
  dim: number;
  encoding: KnnlmKeyEncoding;
  /** PCA: fitted on this many keys; absent when the keys are not projected */
  pcaSample?: number;
  /** share of the key variance the kept PCA components explain (0..1) */
  pcaVariance?: number;
  /** Keys are only meaningful for the weights that produced them. */
  model: { id: string; decoderSha256: string; context: number; stride: number };
  /** tokens of the datastore stream (count + 1) */
  streamTokens: number;
  /** Present when the shard holds an IVF index over the keys (the knnlmIvf* sections; src/core/knnlm/ivf.ts). */
  ivf?: KnnlmIvfMeta;
}

/** `meta.knnlm.ivf`: how the IVF lists were made. Readers that do not know `version` search exactly. */
export interface KnnlmIvfMeta {
  version: number;
  /** clusters (lists) */
  lists: number;
  /** keys k-means was trained on */
  sample: number;
  /** Lloyd iterations */
  iterations: number;
  seed: number;
}

/** IVF lists over the stored keys: list c holds ids[offsets[c] .. offsets[c + 1]), ascending. */
export interface KnnlmIvf {
  /** [lists, dim] row-major, in the stored key space */
  centroids: Float32Array;
  /** [lists + 1], from 0 to count */
  offsets: Uint32Array;
  /** [count]: every entry id exactly once, grouped by list */
  ids: Uint32Array;
}

/** A kNN-LM datastore: keys, next-token values and where each entry's token is in `texts`. */
export interface KnnlmSection {
  keyDim: number;
  dim: number;
  encoding: KnnlmKeyEncoding;
  /** stored keys [count, dim] when encoding is f32 */
  keys: Float32Array | null;
  /** int8 keys [count, dim] when encoding is int8: key ≈ codes * scale (one scale per key) */
  codes: Int8Array | null;
  scales: Float32Array | null;
  /** PCA: stored key = basis · (knn_key − mean), basis [dim, keyDim] row-major; null = no projection */
  pca: { mean: Float32Array; basis: Float32Array } | null;
  /** next-token id of each entry [count] */
  values: Uint32Array;
  /**
   * [count + 1] byte offsets into `texts`: entry i's value token starts at textOffsets[i] and ends
   * at textOffsets[i + 1]; null in the format-1 placeholder layout.
   */
  textOffsets: Uint32Array | null;
  /** IVF lists over the keys (optional sections), or null/absent: exact search only */
  ivf?: KnnlmIvf | null;
}

/** A decoded shard. Arrays may be views into the bytes it was decoded from. */
export interface Shard {
  formatVersion: number;
  meta: ShardMeta;
  chunkSize: number;
  /** ids per neighbour row: chunk + continuation (2*chunkSize for RetroLab's models) */
  neighbourLen: number;
  vocabSize: number;
  eotId: number;
  dim: number;
  indexKind: IndexKind;
  /** chunkCount*neighbourLen ids: row r = chunk r then its continuation, padded with eotId.
   *  Uint16Array when vocabSize <= 65536, else Int32Array. */
  tokens: Uint16Array | Int32Array;
  /** real tokens in each chunk (1..chunkSize) */
  chunkLengths: Uint16Array;
  /** document of each chunk; non-decreasing, so a document's chunks are contiguous */
  chunkDocs: Uint32Array;
  /** 3 per chunk, byte offsets into `texts`: chunk start, chunk end = continuation start, continuation end */
  chunkTextSpans: Uint32Array;
  /** documentCount+1 byte offsets into `texts` */
  docTextOffsets: Uint32Array;
  /** UTF-8 texts of all documents, concatenated */
  texts: Uint8Array;
  titles: string[];
  embeddings: QuantizedVectors;
  /** Index bytes of `indexKind`: empty for flat (it scans `embeddings`), voy's JSON for voy. */
  indexBytes: Uint8Array;
  /**
   * Optional kNN-LM datastore. A shard may hold only this (a kNN-LM datastore built from a GPT):
   * then it has no chunks, chunkSize = neighbourLen = dim = 0 and `meta.embedder.id` is 'none'.
   */
  knnlm: KnnlmSection | null;
}

/** One progress event of the builder, tagged by phase. */
export interface BuildProgress {
  phase: 'parse' | 'tokenize' | 'chunk' | 'embed' | 'index' | 'encode' | 'done';
  /** units done in this phase (documents for parse/tokenize, chunks after, bytes for encode) */
  done: number;
  total: number;
  unit: 'documents' | 'chunks' | 'bytes';
  /** chunks per second over the embed phase so far (0 before it starts) */
  chunksPerSecond: number;
  elapsedMs: number;
}

/** One progress event of the kNN-LM datastore builder (src/core/knnlm/build.ts), tagged by phase. */
export interface KnnBuildProgress {
  /** keys: the GPT forward over the windows; pca: fitting the projection; encode: writing the shard */
  phase: 'tokenize' | 'keys' | 'pca' | 'encode' | 'done';
  done: number;
  total: number;
  unit: 'documents' | 'tokens' | 'keys' | 'bytes';
  /** tokens keyed per second over the keys phase so far (0 before it starts) */
  tokensPerSecond: number;
  elapsedMs: number;
}

/** `name` of the errors thrown when a shard cannot be read (src/core/datastore/errors.ts). */
export type ShardErrorName =
  | 'ShardMagicError'
  | 'ShardVersionError'
  | 'ShardTruncatedError'
  | 'ShardCorruptError'
  | 'ShardMismatchError';

/** `name` of the errors thrown for bad builder input (src/core/datastore/errors.ts). */
export type InputErrorName =
  | 'EmptyInputError'
  | 'BinaryInputError'
  | 'InvalidUtf8Error'
  | 'InputTooLargeError'
  | 'JsonlLineError'
  | 'UnsupportedFormatError';

/** public/datastores/index.json, written by `npm run setup:datastores`. */
export interface DefaultDatastoreIndex {
  format_version: 1;
  datastores: DefaultDatastoreEntry[];
}

export interface DefaultDatastoreEntry {
  id: string;
  name: string;
  description: string;
  /** file name relative to public/datastores/ */
  file: string;
  bytes: number;
  chunks: number;
  documents: number;
  index: IndexKind;
  embedder_fingerprint: string;
  /** ISO 8601 */
  created_at: string;
  /**
   * Present for a kNN-LM datastore (no chunks): the GPT whose keys it holds. The app copies such a
   * file into the browser only when kNN-LM is first turned on, not at first launch.
   */
  knnlm?: { model: string; decoder_sha256: string; entries: number; dim: number };
  /** A kNN-LM datastore made from the same text as this chunk datastore (token-aligned RETRO searches it when that one is active). */
  base_id?: string;
}
