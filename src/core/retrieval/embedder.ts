/**
 * The retrieval embedder of docs/manifest.md (`embedder.bin`), the TypeScript twin of
 * models/retrolab/data.py `MeanEmbedder`: embedding of a chunk = L2-normalised mean over its
 * token ids of row(id) * scale(id) from a frozen int8 table. Training, the Node tools and the
 * browser must embed identically, or neighbours differ between them.
 */
import { fingerprint } from '../datastore/checksum';

export class EmbedderFormatError extends Error {
  override name = 'EmbedderFormatError';
}

export class MeanEmbedder {
  /** Dequantized table, float32 like numpy's `table_int8.astype(f32) * scales[:, None]`. */
  private readonly table: Float32Array;
  private readonly sum: Float64Array;

  private constructor(
    readonly vocabSize: number,
    readonly dim: number,
    table: Float32Array,
    /** 16 hex digits over embedder.bin: shards record it and refuse other embedders */
    readonly fingerprint: string,
    readonly id: string,
  ) {
    this.table = table;
    this.sum = new Float64Array(dim);
  }

  /**
   * `bytes`: vocab*dim int8 (row-major) then vocab float32 LE scales.
   * `id` defaults to one derived from the content.
   */
  static fromBytes(bytes: Uint8Array | ArrayBuffer, vocabSize: number, dim: number, id?: string): MeanEmbedder {
    const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const expected = vocabSize * dim + vocabSize * 4;
    if (!Number.isInteger(vocabSize) || !Number.isInteger(dim) || vocabSize < 1 || dim < 1) {
      throw new EmbedderFormatError(`bad embedder shape ${vocabSize} x ${dim}`);
    }
    if (b.length !== expected) {
      throw new EmbedderFormatError(
        `embedder.bin has ${b.length} bytes; ${vocabSize} x ${dim} int8 rows + ${vocabSize} float32 scales need ${expected}`,
      );
    }
    const codes = new Int8Array(b.buffer, b.byteOffset, vocabSize * dim);
    const scales = new DataView(b.buffer, b.byteOffset + vocabSize * dim, vocabSize * 4);
    const table = new Float32Array(vocabSize * dim);
    for (let v = 0; v < vocabSize; v++) {
      const s = scales.getFloat32(v * 4, true);
      if (!Number.isFinite(s)) throw new EmbedderFormatError(`scale of row ${v} is not finite`);
      // An int8 times a float32 is exact in float64; storing it rounds once, as numpy's f32 product does.
      for (let j = 0, o = v * dim; j < dim; j++) table[o + j] = codes[o + j]! * s;
    }
    const fp = fingerprint(b);
    return new MeanEmbedder(vocabSize, dim, table, fp, id ?? `mean${vocabSize}x${dim}-${fp.slice(0, 8)}`);
  }

  /**
   * Embeds `length` ids of `ids` starting at `start` into `out[outOffset..outOffset+dim)`.
   * An empty chunk embeds to the zero vector (numpy's `v / max(norm, 1e-12)` of zeros).
   */
  embedInto(ids: ArrayLike<number>, start: number, length: number, out: Float32Array, outOffset = 0): void {
    const { dim, table, sum } = this;
    sum.fill(0);
    for (let t = start; t < start + length; t++) {
      const id = ids[t]!;
      if (!(id >= 0 && id < this.vocabSize)) throw new RangeError(`token id ${id} is outside the embedder's vocabulary (${this.vocabSize})`);
      const o = id * dim;
      for (let j = 0; j < dim; j++) sum[j] = sum[j]! + table[o + j]!;
    }
    const count = Math.max(length, 1);
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const m = sum[j]! / count;
      sum[j] = m;
      norm += m * m;
    }
    const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
    for (let j = 0; j < dim; j++) out[outOffset + j] = sum[j]! * scale;
  }

  /** Unit vector of one chunk (all of `chunkIds` count). */
  embed(chunkIds: ArrayLike<number>): Float32Array {
    const out = new Float32Array(this.dim);
    this.embedInto(chunkIds, 0, chunkIds.length, out);
    return out;
  }

  /** Many chunks into one Float32Array, row i at [i*dim, (i+1)*dim). */
  embedBatch(chunks: readonly ArrayLike<number>[]): Float32Array {
    const out = new Float32Array(chunks.length * this.dim);
    chunks.forEach((c, i) => this.embedInto(c, 0, c.length, out, i * this.dim));
    return out;
  }

  /**
   * Rows `first..first+count-1` of a neighbour-token table (stride `rowLen`), embedding only the
   * first `lengths[r]` ids of each row (the chunk, not its continuation or padding).
   */
  embedRows(tokens: ArrayLike<number>, rowLen: number, lengths: ArrayLike<number>, first: number, count: number, out: Float32Array, outOffset = 0): void {
    for (let r = 0; r < count; r++) {
      this.embedInto(tokens, (first + r) * rowLen, lengths[first + r]!, out, outOffset + r * this.dim);
    }
  }
}
