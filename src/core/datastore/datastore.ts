/**
 * A datastore ready to query: a decoded shard, the embedder it was built with, and its vector
 * index. What RETRO, the perplexity eval and the retrieval worker call.
 */
import type { DatastoreSummary, IndexKind, Neighbour, RetrieveOptions, SearchResult } from '../../protocol/retrieval';
import { SHARD_FORMAT_VERSION, type Shard } from '../../protocol/shard';
import type { MeanEmbedder } from '../retrieval/embedder';
import { FlatIndex } from '../retrieval/flat';
import type { VectorIndex, VectorSource } from '../retrieval/vector-index';
import { initVoy, VoyIndex, type VoyWasmSource } from '../retrieval/voy';
import { ShardMismatchError } from './errors';
import { decodeShard, readShardHeader, sectionSizes } from './shard';

/**
 * Exact chunk vectors recomputed from the chunk tokens: the float32 the builder computed, bit for
 * bit, so a shard need not store them (only their int8 codes).
 */
export class EmbeddedChunkSource implements VectorSource {
  readonly count: number;
  readonly dim: number;
  constructor(
    private readonly embedder: MeanEmbedder,
    private readonly tokens: ArrayLike<number>,
    private readonly neighbourLen: number,
    private readonly lengths: ArrayLike<number>,
  ) {
    this.count = lengths.length;
    this.dim = embedder.dim;
  }
  vector(id: number, out: Float32Array): void {
    this.embedder.embedInto(this.tokens, id * this.neighbourLen, this.lengths[id]!, out);
  }
}

export interface OpenOptions {
  /** voy's WASM, needed for shards with a voy index unless initVoy was already called. */
  voyWasm?: VoyWasmSource;
  /** Check section checksums (default true). */
  verifyChecksums?: boolean;
}

/** Index over a shard, built from its sections (flat) or its index bytes (voy). */
function indexFor(shard: Shard, kind: IndexKind, source: VectorSource, fromBytes: boolean): VectorIndex {
  if (kind === 'flat') return FlatIndex.fromQuantized(shard.embeddings, source);
  return fromBytes && shard.indexKind === 'voy' && shard.indexBytes.length > 0
    ? VoyIndex.deserialize(shard.indexBytes, source)
    : VoyIndex.build(source);
}

/** Steps a byte offset past UTF-8 continuation bytes, so a character split between two chunks' tokens is shown once, with the chunk where it starts. */
function charStart(bytes: Uint8Array, offset: number, limit: number): number {
  while (offset < limit && (bytes[offset]! & 0xc0) === 0x80) offset++;
  return offset;
}

export class Datastore {
  readonly source: EmbeddedChunkSource;
  private readonly docFirstChunk: Uint32Array;
  private readonly decoder = new TextDecoder();
  private readonly sections: Record<string, number>;

  private constructor(
    readonly shard: Shard,
    readonly embedder: MeanEmbedder,
    readonly index: VectorIndex,
    source: EmbeddedChunkSource,
    /** encoded size, 0 if never encoded */
    readonly bytes: number,
    sections: Record<string, number> | null,
  ) {
    this.source = source;
    const docs = shard.titles.length;
    this.docFirstChunk = new Uint32Array(docs + 1);
    let c = 0;
    for (let d = 0; d <= docs; d++) {
      while (c < shard.chunkDocs.length && shard.chunkDocs[c]! < d) c++;
      this.docFirstChunk[d] = c;
    }
    this.sections = sections ?? {
      tokens: shard.tokens.byteLength,
      texts: shard.texts.byteLength,
      embeddingCodes: shard.embeddings.codes.byteLength,
      index: index.kind === shard.indexKind ? shard.indexBytes.byteLength : 0,
    };
  }

  /** Checks that `embedder` is the one the shard was built with. */
  private static checkEmbedder(shard: Shard, embedder: MeanEmbedder): void {
    const e = shard.meta.embedder;
    if (e.fingerprint !== embedder.fingerprint || e.dim !== embedder.dim || e.vocabSize !== embedder.vocabSize) {
      throw new ShardMismatchError(
        `datastore "${shard.meta.name}" was built with embedder ${e.id} (${e.fingerprint}, ${e.vocabSize} x ${e.dim}); ` +
          `the loaded model's embedder is ${embedder.id} (${embedder.fingerprint}, ${embedder.vocabSize} x ${embedder.dim}). Rebuild the datastore for this model.`,
      );
    }
  }

  /** Decodes and checks shard bytes, then opens its index. */
  static async open(bytes: Uint8Array, embedder: MeanEmbedder, options: OpenOptions = {}): Promise<Datastore> {
    const header = readShardHeader(bytes);
    const shard = decodeShard(bytes, { verifyChecksums: options.verifyChecksums });
    if (shard.indexKind === 'voy' && options.voyWasm) await initVoy(options.voyWasm);
    return Datastore.create(shard, embedder, shard.indexKind, true, bytes.length, sectionSizes(header));
  }

  /** Over a shard in memory (e.g. just built); voy must be loaded for voy shards. */
  static fromShard(shard: Shard, embedder: MeanEmbedder, bytes = 0): Datastore {
    return Datastore.create(shard, embedder, shard.indexKind, true, bytes, null);
  }

  private static create(shard: Shard, embedder: MeanEmbedder, kind: IndexKind, fromBytes: boolean, bytes: number, sections: Record<string, number> | null): Datastore {
    if (shard.formatVersion !== SHARD_FORMAT_VERSION) throw new ShardMismatchError(`shard format ${shard.formatVersion} is not ${SHARD_FORMAT_VERSION}`);
    Datastore.checkEmbedder(shard, embedder);
    const source = new EmbeddedChunkSource(embedder, shard.tokens, shard.neighbourLen, shard.chunkLengths);
    return new Datastore(shard, embedder, indexFor(shard, kind, source, fromBytes), source, bytes, sections);
  }

  /**
   * The same datastore over another index kind (the app's index switch). For voy this builds its
   * tree (seconds near the limit; VoyLimitError above it). `toShard()` of the result carries the
   * new index, ready to encode and store.
   */
  withIndexKind(kind: IndexKind): Datastore {
    if (kind === this.index.kind) return this;
    const index = indexFor(this.shard, kind, this.source, false);
    return new Datastore(this.shard, this.embedder, index, this.source, 0, null);
  }

  /** The shard with this datastore's index kind and bytes (encode with encodeShard). */
  toShard(): Shard {
    if (this.index.kind === this.shard.indexKind) return this.shard;
    return { ...this.shard, indexKind: this.index.kind, indexBytes: this.index.kind === 'flat' ? new Uint8Array(0) : this.index.serialize() };
  }

  get chunkCount(): number {
    return this.shard.chunkLengths.length;
  }

  get documentCount(): number {
    return this.shard.titles.length;
  }

  get summary(): DatastoreSummary {
    const s = this.shard;
    let tokens = 0;
    for (let i = 0; i < s.chunkLengths.length; i++) tokens += s.chunkLengths[i]!;
    return {
      name: s.meta.name,
      description: s.meta.description,
      chunks: this.chunkCount,
      documents: this.documentCount,
      tokens,
      chunkSize: s.chunkSize,
      neighbourLen: s.neighbourLen,
      dim: s.dim,
      indexKind: this.index.kind,
      bytes: this.bytes,
      sectionBytes: { ...this.sections },
      tokenizerId: s.meta.tokenizer.id,
      embedderId: s.meta.embedder.id,
      embedderFingerprint: s.meta.embedder.fingerprint,
      createdAt: s.meta.createdAt,
    };
  }

  /** Chunks [first, end) of document `docId`. */
  documentChunks(docId: number): { first: number; end: number } {
    if (!(docId >= 0 && docId < this.documentCount)) throw new RangeError(`no document ${docId} (${this.documentCount} documents)`);
    return { first: this.docFirstChunk[docId]!, end: this.docFirstChunk[docId + 1]! };
  }

  /** Embedding of a query chunk: all its ids count (like models/retrolab/evaluate.py's queries). */
  embedQuery(chunkTokenIds: ArrayLike<number>): Float32Array {
    return this.embedder.embed(chunkTokenIds);
  }

  private excluder(options: RetrieveOptions): ((id: number) => boolean) | undefined {
    const ids = options.excludeDocIds;
    if (!ids || ids.length === 0) return undefined;
    const mask = new Uint8Array(this.documentCount);
    for (const d of ids) if (d >= 0 && d < mask.length) mask[d] = 1;
    const docs = this.shard.chunkDocs;
    return (id) => mask[docs[id]!] === 1;
  }

  /** Chunk indices and cosine distances of the k nearest chunks. */
  search(chunkTokenIds: ArrayLike<number>, k: number, options: RetrieveOptions = {}): SearchResult {
    return this.index.search(this.embedQuery(chunkTokenIds), k, { exclude: this.excluder(options) });
  }

  /** The k nearest chunks to a query chunk, with their continuations and texts. */
  retrieve(chunkTokenIds: ArrayLike<number>, k: number, options: RetrieveOptions = {}): Neighbour[] {
    const { ids, distances } = this.search(chunkTokenIds, k, options);
    return Array.from(ids, (id, i) => this.neighbour(id, distances[i]!));
  }

  retrieveBatch(queries: readonly ArrayLike<number>[], k: number, options: RetrieveOptions = {}): Neighbour[][] {
    return queries.map((q) => this.retrieve(q, k, options));
  }

  /** The encoder's input row of a chunk: chunk + continuation, neighbourLen ids (a view, do not modify). */
  neighbourTokens(chunkIndex: number): Uint16Array | Int32Array {
    const L = this.shard.neighbourLen;
    return this.shard.tokens.subarray(chunkIndex * L, (chunkIndex + 1) * L);
  }

  private text(from: number, to: number): string {
    const t = this.shard.texts;
    const a = charStart(t, from, t.length);
    const b = charStart(t, to, t.length);
    return b > a ? this.decoder.decode(t.subarray(a, b)) : '';
  }

  /** A chunk's own text (raw, e.g. still WikiText-escaped), without its continuation: what BM25 indexes. */
  chunkText(chunkIndex: number): string {
    const spans = this.shard.chunkTextSpans;
    return this.text(spans[3 * chunkIndex]!, spans[3 * chunkIndex + 1]!);
  }

  /** Neighbour record of a chunk; `distance` NaN when there was no query. */
  neighbour(chunkIndex: number, distance = NaN): Neighbour {
    if (!(chunkIndex >= 0 && chunkIndex < this.chunkCount)) throw new RangeError(`no chunk ${chunkIndex} (${this.chunkCount} chunks)`);
    const s = this.shard;
    const docId = s.chunkDocs[chunkIndex]!;
    const spans = s.chunkTextSpans;
    const chunkLength = s.chunkLengths[chunkIndex]!;
    const next = chunkIndex + 1;
    let continuationLength = 0;
    for (let c = next; c < this.chunkCount && s.chunkDocs[c] === docId && continuationLength < s.neighbourLen - s.chunkSize; c++) {
      continuationLength += s.chunkLengths[c]!;
    }
    return {
      chunkIndex,
      docId,
      title: s.titles[docId]!,
      distance,
      tokenIds: Array.from(this.neighbourTokens(chunkIndex)),
      chunkLength,
      continuationLength: Math.min(continuationLength, s.neighbourLen - s.chunkSize),
      text: this.text(spans[3 * chunkIndex]!, spans[3 * chunkIndex + 1]!),
      continuationText: this.text(spans[3 * chunkIndex + 1]!, spans[3 * chunkIndex + 2]!),
    };
  }

  /**
   * k chunks drawn uniformly with replacement (models/retrolab/evaluate.py's `random` setting).
   * `rng` returns floats in [0, 1). With a query, distances are filled in.
   */
  randomNeighbours(k: number, rng: () => number, query?: ArrayLike<number>): Neighbour[] {
    const q = query ? this.embedQuery(query) : null;
    const v = new Float32Array(this.embedder.dim);
    return Array.from({ length: k }, () => {
      const id = Math.min(this.chunkCount - 1, Math.floor(rng() * this.chunkCount));
      let distance = NaN;
      if (q) {
        this.source.vector(id, v);
        let dot = 0;
        for (let j = 0; j < v.length; j++) dot += q[j]! * v[j]!;
        distance = 1 - dot;
      }
      return this.neighbour(id, distance);
    });
  }

  dispose(): void {
    this.index.dispose();
  }
}
