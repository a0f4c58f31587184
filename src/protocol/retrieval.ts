/**
 * Retrieval types shared by src/core/retrieval, src/core/datastore, the models' RETRO and eval
 * code, and the retrieval engine. Types only (plus a few constants): everything here is plain data
 * that survives structured clone.
 */

/** `flat`: exact int8 scan + exact float re-ranking (RetroLab's own). `voy`: voy-search's k-d tree (WASM). */
export type IndexKind = 'flat' | 'voy';

export const INDEX_KINDS: readonly IndexKind[] = ['flat', 'voy'];

/**
 * How chunks are found for a query. `dense`: the retrieval embedder and the vector index (cosine
 * distance, the default everywhere). `bm25`: Okapi BM25 over the chunks' words (Robertson &
 * Zaragoza 2009, "The Probabilistic Relevance Framework: BM25 and Beyond"), an inverted index
 * built on first use (src/core/retrieval/bm25.ts); its score is bigger for better matches.
 */
export type RetrieverKind = 'dense' | 'bm25';

export const RETRIEVER_KINDS: readonly RetrieverKind[] = ['dense', 'bm25'];

/**
 * Every distance RetroLab reports is the cosine distance `1 - q·x` between the query embedding and
 * the chunk embedding, both unit vectors: 0 = same direction, 1 = orthogonal, 2 = opposite.
 * (Squared L2 between unit vectors is exactly twice this.)
 */
export type DistanceMetric = 'cosine-distance';

/** Ids and distances of the k nearest vectors, nearest first; ties broken by the smaller id. */
export interface SearchResult {
  ids: Int32Array;
  /** cosine distance `1 - q·x`, same order as ids */
  distances: Float32Array;
}

export interface SearchOptions {
  /** Vectors for which this returns true are skipped (e.g. chunks of excluded documents). */
  exclude?: (id: number) => boolean;
}

/** A retrieved chunk as RETRO, the eval and the neighbour inspector use it. */
export interface Neighbour {
  /** Row of the chunk in its datastore (0-based). */
  chunkIndex: number;
  /** Document the chunk belongs to (index into the datastore's documents). */
  docId: number;
  title: string;
  /** cosine distance `1 - q·x` to the query; NaN for random neighbours drawn without a query */
  distance: number;
  /** chunk + continuation, exactly neighbour_len ids, padded with eot_id: the encoder's input row */
  tokenIds: number[];
  /** real tokens of the chunk itself (the last chunk of a document may be shorter than C) */
  chunkLength: number;
  /** real tokens of the continuation (0 for a document's last chunk) */
  continuationLength: number;
  /** the chunk's text (raw, e.g. still WikiText-escaped; detokenize for display) */
  text: string;
  /** the continuation's text (the next chunk of the same document) */
  continuationText: string;
}

export interface RetrieveOptions {
  /** Chunks of these documents are never returned. */
  excludeDocIds?: readonly number[];
}

/** What a loaded datastore reports about itself. */
export interface DatastoreSummary {
  name: string;
  description: string;
  chunks: number;
  documents: number;
  /** real tokens over all documents */
  tokens: number;
  chunkSize: number;
  neighbourLen: number;
  dim: number;
  indexKind: IndexKind;
  /** shard size in bytes (0 when built in memory and never encoded) */
  bytes: number;
  /** bytes per section, by section name */
  sectionBytes: Record<string, number>;
  tokenizerId: string;
  embedderId: string;
  embedderFingerprint: string;
  /** ISO 8601 */
  createdAt: string;
}
