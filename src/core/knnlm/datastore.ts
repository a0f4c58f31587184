/**
 * A kNN-LM datastore ready to query: the shard's kNN-LM section behind an exact squared-L2 index,
 * the PCA projection of queries, and each entry's place in the datastore text.
 */
import type { ModelManifest } from '../../protocol/manifest';
import type { KnnlmMeta, KnnlmSection, Shard } from '../../protocol/shard';
import { ShardMismatchError } from '../datastore/errors';
import { decodeShard, type DecodeOptions } from '../datastore/shard';
import { projectKeys } from './pca';
import { KnnIndex, type KnnIndexOptions } from './search';
import type { KnnSearchResult } from './types';

export interface KnnOpenOptions extends KnnIndexOptions, DecodeOptions {}

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

export class KnnDatastore {
  readonly meta: KnnlmMeta;
  readonly section: KnnlmSection;
  readonly index: KnnIndex;
  private readonly decoder = new TextDecoder();
  private readonly projected: Float32Array<ArrayBufferLike>;

  private constructor(
    readonly shard: Shard,
    options: KnnIndexOptions,
  ) {
    const section = shard.knnlm;
    const meta = shard.meta.knnlm;
    if (!section || !meta) throw new ShardMismatchError(`datastore "${shard.meta.name}" has no kNN-LM section: build one with npm run datastore -- build-knn`);
    this.meta = meta;
    this.section = section;
    this.index = section.encoding === 'f32'
      ? KnnIndex.fromFloats(section.keys!, section.dim, options)
      : KnnIndex.fromCodes(section.codes!, section.scales!, section.dim, options);
    this.projected = new Float32Array(section.dim);
  }

  /** Decodes and checks shard bytes (checksums included unless turned off), then builds the index. */
  static open(bytes: Uint8Array, options: KnnOpenOptions = {}): KnnDatastore {
    return new KnnDatastore(decodeShard(bytes, { verifyChecksums: options.verifyChecksums }), options);
  }

  static fromShard(shard: Shard, options: KnnIndexOptions = {}): KnnDatastore {
    return new KnnDatastore(shard, options);
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
   * another checkpoint (same shapes, other numbers) is refused.
   */
  checkModel(manifest: ModelManifest): void {
    const m = this.meta.model;
    if (manifest.hyperparameters.d_model !== this.section.keyDim || manifest.hyperparameters.vocab_size !== this.shard.vocabSize) {
      throw new ShardMismatchError(`kNN-LM datastore "${this.name}" has ${this.section.keyDim}-d keys over ${this.shard.vocabSize} tokens; ${manifest.id} has d_model ${manifest.hyperparameters.d_model} and ${manifest.hyperparameters.vocab_size} tokens`);
    }
    if (m.decoderSha256 !== manifest.onnx.decoder.sha256) {
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

  /** The k nearest entries to a model key (knn_key of one position), nearest first. */
  search(key: Float32Array, k: number): KnnSearchResult {
    return this.index.search(this.project(key), k);
  }

  /** Exact squared L2 from a model key to each of `entries`' keys (RetoMaton's pointed-to entries: no search). */
  distancesTo(key: Float32Array, entries: ArrayLike<number>): Float32Array {
    const projected = this.project(key);
    return Float32Array.from(entries as ArrayLike<number>, (entry) => this.index.exactDistance(projected, entry));
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
