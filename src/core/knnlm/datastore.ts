/**
 * A kNN-LM datastore ready to query: the shard's kNN-LM section behind an exact squared-L2 index,
 * the PCA projection of queries, and each entry's place in the datastore text.
 */
import { keysMatchDecoder, type ModelManifest } from '../../protocol/manifest';
import type { KnnlmMeta, KnnlmSection, Shard } from '../../protocol/shard';
import { ShardCorruptError, ShardMismatchError } from '../datastore/errors';
import { crc32 } from '../datastore/checksum';
import { decodeShard, decodeShardFrom, type DecodeOptions, type ShardSource } from '../datastore/shard';
import { l2KernelSupported } from './l2-kernel';
import { projectKeys } from './pca';
import { IvfIndex, IvfKeyWriter, type ExactKnnIndex, type IvfSearchOptions } from './ivf';
import { KnnIndex, type KnnIndexOptions } from './search';
import type { KnnSearchResult } from './types';

/** Which index answers searches: the exact int8 scan (the reference) or the shard's IVF lists. */
export type KnnIndexKind = 'exact' | 'ivf';

/**
 * Lists an IVF search scans unless told otherwise: 1/32 of them (64 of the built-in datastore's
 * 2,048: recall@1024 0.995 against the exact scan, perplexity within 0.02%, docs/benchmarks.md),
 * and at least 8 (or all) for the few lists of a small datastore.
 */
export function defaultNprobe(lists: number): number {
  return Math.max(Math.min(lists, 8), Math.ceil(lists / 32));
}

/** Per-search choices: the index (default: the datastore's), the IVF settings, and `limit` (entries with id < limit only). */
export interface KnnSearchOptions extends IvfSearchOptions {
  index?: KnnIndexKind;
}

export interface KnnDatastoreOptions extends KnnIndexOptions, IvfSearchOptions {
  /**
   * Default index of `search` (default 'exact'). 'ivf' needs IVF sections in the shard (npm run
   * datastore -- build-ivf); without them the datastore searches exactly.
   */
  index?: KnnIndexKind;
}

export interface KnnOpenOptions extends KnnDatastoreOptions, DecodeOptions {
  /** `load`: bytes of keys read per piece (default 4 MB; tests use a few keys to cross pieces). */
  pieceBytes?: number;
}

export interface KnnEntryText {
  docId: number;
  title: string;
  textBefore: string;
  tokenText: string;
  textAfter: string;
}

/** Steps a byte offset forward past UTF-8 continuation bytes (to a character start). */
function charStart(bytes: Uint8Array, offset: number, limit: number): number {
  while (offset < limit && (bytes[offset]! & 0xc0) === 0x80) offset++;
  return offset;
}

/** Keys streamed into the search index per read (whole keys): the largest transient buffer of `load`. */
const LOAD_PIECE_BYTES = 4 * 1024 * 1024;

/** A typed array of its own: views into a larger buffer (the file's) are copied, so that buffer can go. */
function own<T extends { buffer: ArrayBufferLike; byteLength: number; slice(): T }>(a: T): T {
  return a.byteLength === a.buffer.byteLength ? a : a.slice();
}

/**
 * The shard with every array in a buffer of its own and the kNN-LM int8 codes and scales dropped when the
 * index holds them: what a datastore opened from file bytes keeps, so the file's buffer can be freed.
 */
function ownShard(shard: Shard, dropCodes: boolean): Shard {
  const k = shard.knnlm;
  return {
    ...shard,
    tokens: own(shard.tokens),
    chunkLengths: own(shard.chunkLengths),
    chunkDocs: own(shard.chunkDocs),
    chunkTextSpans: own(shard.chunkTextSpans),
    docTextOffsets: own(shard.docTextOffsets),
    texts: own(shard.texts),
    embeddings: { ...shard.embeddings, codes: own(shard.embeddings.codes), scales: own(shard.embeddings.scales), errors: own(shard.embeddings.errors) },
    indexBytes: own(shard.indexBytes),
    knnlm: k && {
      ...k,
      keys: k.keys && own(k.keys),
      codes: dropCodes ? null : k.codes && own(k.codes),
      scales: dropCodes ? null : k.scales && own(k.scales),
      pca: k.pca && { mean: own(k.pca.mean), basis: own(k.pca.basis) },
      values: own(k.values),
      textOffsets: k.textOffsets && own(k.textOffsets),
      ivf: k.ivf && { centroids: own(k.ivf.centroids), offsets: own(k.ivf.offsets), ids: own(k.ivf.ids) },
    },
  };
}

export class KnnDatastore {
  readonly shard: Shard;
  readonly meta: KnnlmMeta;
  /**
   * The kNN-LM section. With IVF lists and the SIMD kernel its int8 `codes` and `scales` are null:
   * the keys live once, list by list, in the IVF index's WebAssembly memory (with −2·scale per key),
   * and the exact search scans every list there.
   */
  readonly section: KnnlmSection;
  /** The index `search` uses unless told otherwise: 'ivf' only when asked for and the shard has IVF lists. */
  readonly defaultIndex: KnnIndexKind;
  /** Keys re-ranked exactly by the last search, whichever index ran it. */
  lastCandidates = 0;
  /** The index that answered the last search (a small prefix is scanned exactly even when IVF was asked for). */
  lastIndex: KnnIndexKind = 'exact';
  /** Lists an IVF search scans (the options', else defaultNprobe); 0 without IVF lists. */
  readonly nprobe: number;
  private exact: ExactKnnIndex | null = null;
  private ivfIndex: IvfIndex | null = null;
  private readonly decoder = new TextDecoder();
  private readonly projected: Float32Array<ArrayBufferLike>;

  private constructor(
    shard: Shard,
    private readonly options: KnnDatastoreOptions,
    /** the shard's arrays are views of file bytes this datastore should not keep */
    owned: 'views' | 'own',
    ivfIndex: IvfIndex | null = null,
  ) {
    const section = shard.knnlm;
    const meta = shard.meta.knnlm;
    if (!section || !meta) throw new ShardMismatchError(`datastore "${shard.meta.name}" has no kNN-LM section: build one with npm run datastore -- build-knn`);
    this.meta = meta;
    this.defaultIndex = options.index === 'ivf' && section.ivf ? 'ivf' : 'exact';
    this.nprobe = section.ivf ? (options.nprobe ?? defaultNprobe(section.ivf.offsets.length - 1)) : 0;
    // int8 keys with IVF lists: the IVF index holds them (and answers exact searches too), so it is
    // built now whichever index is the default; the entry-order codes are then not kept.
    if (!ivfIndex && section.encoding === 'int8' && section.ivf) ivfIndex = IvfIndex.fromCodes(section.codes!, section.scales!, section.dim, section.ivf, options);
    this.ivfIndex = ivfIndex;
    const dropCodes = ivfIndex !== null && ivfIndex.backend === 'wasm-simd' && section.encoding === 'int8';
    this.shard = owned === 'views' ? ownShard(shard, dropCodes) : dropCodes ? { ...shard, knnlm: { ...section, codes: null, scales: null } } : shard;
    this.section = this.shard.knnlm!;
    // The default index is built now (the exact one as before); the other on first use.
    if (this.defaultIndex === 'ivf') void this.ivf;
    else void this.index;
    this.projected = new Float32Array(section.dim);
  }

  /**
   * Decodes and checks shard bytes (checksums included unless turned off), then builds the index.
   * The datastore keeps none of `bytes` (its arrays are copied out): drop them to free the file.
   */
  static open(bytes: Uint8Array, options: KnnOpenOptions = {}): KnnDatastore {
    return new KnnDatastore(decodeShard(bytes, { verifyChecksums: options.verifyChecksums }), options, 'views');
  }

  /**
   * Reads a shard section by section (a file, a Blob) and builds the index. int8 keys with IVF lists
   * are streamed from the source into the index's memory a few MB at a time: the keys are never held
   * twice and the file never whole, so memory peaks at about what the datastore keeps.
   */
  static async load(source: ShardSource, options: KnnOpenOptions = {}): Promise<KnnDatastore> {
    const verify = options.verifyChecksums !== false;
    const { shard, codes } = await decodeShardFrom(source, { verifyChecksums: verify, deferCodes: options.simd !== false && l2KernelSupported(64) });
    const section = shard.knnlm;
    if (!codes || !section || section.encoding !== 'int8' || !section.ivf || !section.scales) {
      if (!codes) return new KnnDatastore(shard, options, 'own');
      // Deferred codes the index cannot take piece by piece (no IVF lists): read them whole.
      const bytes = await source.read(codes.offset, codes.bytes);
      if (verify && crc32(bytes) !== codes.crc32) throw new ShardCorruptError('section knnlmCodes failed its checksum: the file is damaged', 'knnlmCodes');
      return new KnnDatastore({ ...shard, knnlm: section && { ...section, codes: new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) } }, options, 'own');
    }
    const writer = new IvfKeyWriter(section.scales, section.dim, section.ivf, options);
    const piece = Math.max(1, Math.floor((options.pieceBytes ?? LOAD_PIECE_BYTES) / section.dim)) * section.dim;
    let crc: number | undefined;
    // One buffer for every piece where the source fills it (a file): no garbage of read pieces.
    const buffer = new Uint8Array(Math.min(piece, codes.bytes));
    for (let at = 0; at < codes.bytes; at += piece) {
      const bytes = await source.read(codes.offset + at, Math.min(piece, codes.bytes - at), buffer);
      if (verify) crc = crc32(bytes, crc);
      writer.write(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }
    if (verify && (crc ?? crc32(new Uint8Array(0))) !== codes.crc32) throw new ShardCorruptError('section knnlmCodes failed its checksum: the file is damaged', 'knnlmCodes');
    return new KnnDatastore(shard, options, 'own', writer.finish());
  }

  static fromShard(shard: Shard, options: KnnDatastoreOptions = {}): KnnDatastore {
    return new KnnDatastore(shard, options, 'own');
  }

  /**
   * The exact search (the reference), built on first use when the datastore defaults to IVF. Over
   * int8 keys with IVF lists it is the IVF index scanning every list (the same results as KnnIndex).
   */
  get index(): ExactKnnIndex {
    const { section, options } = this;
    if (this.exact) return this.exact;
    if (this.ivfIndex && section.encoding === 'int8') this.exact = this.ivfIndex.exact;
    else this.exact = section.encoding === 'f32' ? KnnIndex.fromFloats(section.keys!, section.dim, options) : KnnIndex.fromCodes(section.codes!, section.scales!, section.dim, options);
    return this.exact;
  }

  /** The IVF index over the shard's lists, or null when the shard has none. */
  get ivf(): IvfIndex | null {
    const { section, options } = this;
    if (!section.ivf) return null;
    this.ivfIndex ??= section.encoding === 'f32'
      ? IvfIndex.fromFloats(section.keys!, section.dim, section.ivf, options)
      : IvfIndex.fromCodes(section.codes!, section.scales!, section.dim, section.ivf, options);
    return this.ivfIndex;
  }

  get name(): string {
    return this.shard.meta.name;
  }

  /** Entries (one per datastore token after the first). */
  get size(): number {
    return this.section.values.length;
  }

  /**
   * Keys are only comparable with keys of the weights that made them: a datastore built with
   * another checkpoint (same shapes, other numbers) is refused. A decoder rewritten without changing
   * its keys names the graph it replaced in same_keys_as.
   */
  checkModel(manifest: ModelManifest): void {
    const m = this.meta.model;
    if (manifest.hyperparameters.d_model !== this.section.keyDim || manifest.hyperparameters.vocab_size !== this.shard.vocabSize) {
      throw new ShardMismatchError(`kNN-LM datastore "${this.name}" has ${this.section.keyDim}-d keys over ${this.shard.vocabSize} tokens; ${manifest.id} has d_model ${manifest.hyperparameters.d_model} and ${manifest.hyperparameters.vocab_size} tokens`);
    }
    if (!keysMatchDecoder(manifest.onnx.decoder, m.decoderSha256)) {
      throw new ShardMismatchError(
        `kNN-LM datastore "${this.name}" was built with ${m.id} decoder ${m.decoderSha256.slice(0, 12)}…, the loaded ${manifest.id} is ${manifest.onnx.decoder.sha256.slice(0, 12)}…: ` +
          'its keys mean nothing to these weights. Rebuild it (npm run datastore -- build-knn).',
      );
    }
  }

  /** A model key (keyDim) in the stored key space: PCA-projected when the datastore projects. */
  project(key: Float32Array, out: Float32Array = this.projected): Float32Array {
    const pca = this.section.pca;
    if (key.length !== this.section.keyDim) throw new RangeError(`key has ${key.length} dims, the datastore's model ${this.section.keyDim}`);
    if (!pca) return key;
    return projectKeys({ keyDim: this.section.keyDim, dim: this.section.dim, ...pca }, key, out);
  }

  /**
   * The k nearest entries to a model key (knn_key of one position), nearest first: exact, or by the
   * IVF lists when asked (per search or by the datastore's default) and the shard has them.
   */
  search(key: Float32Array, k: number, options: KnnSearchOptions = {}): KnnSearchResult {
    const projected = this.project(key);
    const limit = options.limit ?? this.size;
    let ivf = (options.index ?? this.defaultIndex) === 'ivf' ? this.ivf : null;
    // A prefix no larger than what an IVF search scans anyway (nprobe of the lists' keys) is
    // scanned exactly: it costs no more, and the probed lists would hold too few of its keys.
    if (ivf && limit < this.size && limit <= (this.size * (options.nprobe ?? this.nprobe)) / ivf.lists) ivf = null;
    this.lastIndex = ivf ? 'ivf' : 'exact';
    if (ivf) {
      const nprobe = options.nprobe ?? this.nprobe;
      const rerank = options.rerank ?? this.options.rerank;
      const result = ivf.search(projected, k, { nprobe, ...(rerank !== undefined ? { rerank } : {}), ...(limit < this.size ? { limit } : {}) });
      this.lastCandidates = ivf.lastCandidates;
      return result;
    }
    const result = this.index.search(projected, k, limit);
    this.lastCandidates = this.index.lastCandidates;
    return result;
  }

  /**
   * The search limit of the first `fraction` of the entries (0 < fraction <= 1): entries are in
   * text order, so this is the datastore of the text's first ⌈fraction · entries⌉ tokens.
   */
  prefixLimit(fraction: number): number {
    if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`a datastore fraction must be in (0, 1], got ${fraction}`);
    return Math.max(1, Math.min(this.size, Math.ceil(fraction * this.size)));
  }

  /** Exact squared L2 from a model key to each of `entries`' keys (RetoMaton's pointed-to entries: no search). */
  distancesTo(key: Float32Array, entries: ArrayLike<number>): Float32Array {
    const projected = this.project(key);
    const index = this.defaultIndex === 'ivf' ? this.ivf! : this.index;
    return Float32Array.from(entries as ArrayLike<number>, (entry) => index.exactDistance(projected, entry));
  }

  /** Next-token id of entry `entry`. */
  value(entry: number): number {
    return this.section.values[entry]!;
  }

  /** Document holding byte `offset` of the texts (the last document starting at or before it). */
  private documentAt(offset: number): number {
    const starts = this.shard.docTextOffsets;
    let lo = 0;
    let hi = starts.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Whether entries know their documents: keys stored with their text offsets (without, no document can be named or excluded). */
  get knowsDocuments(): boolean {
    return this.section.textOffsets !== undefined && this.section.textOffsets !== null;
  }

  /**
   * Document of entry `entry` (as `entryText`'s docId, without decoding text); -1 when entries do not
   * know documents. Entries are in text order, so a document's keys are one range of entries.
   */
  entryDocument(entry: number): number {
    const offsets = this.section.textOffsets;
    if (!offsets) return -1;
    const start = offsets[entry]!;
    const docId = this.documentAt(start);
    return start === offsets[entry + 1] && docId > 0 && this.shard.docTextOffsets[docId] === start ? docId - 1 : docId;
  }

  /** Where entry `entry` comes from: its document, the text before its value token, the token, the text after. */
  entryText(entry: number, before = 240, after = 60): KnnEntryText {
    if (!(entry >= 0 && entry < this.size)) throw new RangeError(`no kNN-LM entry ${entry} (${this.size} entries)`);
    const offsets = this.section.textOffsets;
    if (!offsets) return { docId: -1, title: '', textBefore: '', tokenText: '', textAfter: '' };
    const texts = this.shard.texts;
    const start = offsets[entry]!;
    const end = offsets[entry + 1]!;
    let docId = this.documentAt(start);
    // A zero-length token at a document's end belongs to that document, not the next.
    if (start === end && docId > 0 && this.shard.docTextOffsets[docId]! === start) docId--;
    const docStart = this.shard.docTextOffsets[docId]!;
    const docEnd = this.shard.docTextOffsets[docId + 1]!;
    const from = charStart(texts, Math.max(docStart, start - before), start);
    let to = Math.min(docEnd, end + after);
    while (to > end && (texts[to]! & 0xc0) === 0x80 && to < docEnd) to--;
    return {
      docId,
      title: this.shard.titles[docId] ?? '',
      textBefore: this.decoder.decode(texts.subarray(from, start)),
      tokenText: this.decoder.decode(texts.subarray(start, end)),
      textAfter: this.decoder.decode(texts.subarray(end, to)),
    };
  }
}
