/**
 * The datastore's chunking rule, shared with models/retrolab/data.py `build_datastore`:
 * every document is cut into chunks of C tokens from its first token; neighbour row r is chunk r
 * followed by the next (neighbourLen - C) tokens of the same document (its continuation), padded
 * with eot. The last chunk of a document may be short; its real length is kept.
 */

export interface ChunkingOptions {
  chunkSize: number;
  /** ids per row: chunk + continuation (2*chunkSize for RetroLab's models) */
  neighbourLen: number;
  eotId: number;
}

/** Chunks of one or more documents, rows concatenated. */
export interface ChunkedDocuments {
  count: number;
  /** count*neighbourLen ids */
  tokens: Uint16Array | Int32Array;
  /** real tokens of each chunk */
  lengths: Uint16Array;
  /** real tokens of each continuation (0 for a document's last chunk) */
  continuationLengths: Uint16Array;
  /** document index of each chunk */
  docs: Uint32Array;
  /** position of the chunk's first token within its document */
  starts: Uint32Array;
}

export function countChunks(documentLength: number, chunkSize: number): number {
  return Math.ceil(documentLength / chunkSize);
}

function checkOptions({ chunkSize, neighbourLen }: ChunkingOptions): void {
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > 0xffff) throw new RangeError(`chunk size must be 1..65535, got ${chunkSize}`);
  if (!Number.isInteger(neighbourLen) || neighbourLen < chunkSize) {
    throw new RangeError(`neighbour length must be an integer >= chunk size (${chunkSize}), got ${neighbourLen}`);
  }
}

/** Token array type for a vocabulary: 2 bytes per id when they fit. */
export function tokenArrayFor(vocabSize: number, length: number): Uint16Array | Int32Array {
  return vocabSize <= 0x10000 ? new Uint16Array(length) : new Int32Array(length);
}

/**
 * Chunks documents given as token ids. `vocabSize` picks the id storage (Uint16 when <= 65536).
 */
export function chunkDocuments(documents: readonly ArrayLike<number>[], options: ChunkingOptions, vocabSize: number): ChunkedDocuments {
  checkOptions(options);
  const { chunkSize: C, neighbourLen: L, eotId } = options;
  let count = 0;
  for (const doc of documents) count += countChunks(doc.length, C);
  const tokens = tokenArrayFor(vocabSize, count * L);
  const lengths = new Uint16Array(count);
  const continuationLengths = new Uint16Array(count);
  const docs = new Uint32Array(count);
  const starts = new Uint32Array(count);
  let r = 0;
  documents.forEach((doc, d) => {
    for (let start = 0; start < doc.length; start += C, r++) {
      const end = Math.min(start + L, doc.length);
      const base = r * L;
      for (let i = start; i < end; i++) {
        const id = doc[i]!;
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new RangeError(`token id ${id} in document ${d} is outside the vocabulary (${vocabSize})`);
        tokens[base + i - start] = id;
      }
      tokens.fill(eotId, base + end - start, base + L);
      lengths[r] = Math.min(C, doc.length - start);
      continuationLengths[r] = Math.max(0, end - start - C);
      docs[r] = d;
      starts[r] = start;
    }
  });
  return { count, tokens, lengths, continuationLengths, docs, starts };
}
