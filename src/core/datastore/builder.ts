/**
 * Documents -> datastore shard: tokenize, chunk, embed, index, encode. Runs in a worker or in
 * Node; it yields to the event loop between batches so a worker can post progress and see a
 * cancel, and checks its AbortSignal there.
 */
import type { IndexKind } from '../../protocol/retrieval';
import { SHARD_FORMAT_VERSION, type BuildProgress, type DocumentInput, type Shard, type ShardMeta } from '../../protocol/shard';
import { chunkDocuments } from '../retrieval/chunker';
import type { MeanEmbedder } from '../retrieval/embedder';
import { quantizeVectors } from '../retrieval/flat';
import { ArrayVectorSource } from '../retrieval/vector-index';
import { VOY_MAX_VECTORS, VoyIndex, VoyLimitError } from '../retrieval/voy';
import type { RetroTokenizer } from '../tokenizer/index';
import { formatBytes } from '../io';
import { buildCheckpoint, clock } from './checkpoint';
import { EmptyInputError, InputTooLargeError } from './errors';
import { decodeShard, encodeShard } from './shard';

export interface BuildOptions {
  name: string;
  description?: string;
  tokenizer: RetroTokenizer;
  embedder: MeanEmbedder;
  /** C: tokens per chunk (the model manifest's `hyperparameters.chunk`) */
  chunkSize: number;
  /** ids per neighbour row (manifest `neighbour_len`); default 2*chunkSize */
  neighbourLen?: number;
  indexKind?: IndexKind;
  /** Provenance shown in the UI (file names, sizes, formats). */
  sources?: ShardMeta['sources'];
  onProgress?: (progress: BuildProgress) => void;
  signal?: AbortSignal;
  /** Yield to the event loop at least this often (ms); default 50. */
  yieldEveryMs?: number;
  /**
   * Refuse the documents (InputTooLargeError) as soon as they pass this many tokens, before the
   * chunk, embedding and shard arrays that grow with them are made: the browser's memory bound.
   */
  maxTokens?: number;
  /** Clock for `createdAt` (tests). */
  now?: () => Date;
}

export interface BuildStats {
  documents: number;
  chunks: number;
  tokens: number;
  bytes: number;
  /** seconds per phase */
  seconds: Record<'tokenize' | 'chunk' | 'embed' | 'index' | 'encode' | 'total', number>;
  /** chunks embedded per second during the embed phase */
  embedChunksPerSecond: number;
  /** chunks per second over the whole build */
  chunksPerSecond: number;
}

export interface BuildResult {
  /** decoded from `bytes` (views into it), so what the caller holds is exactly what was written */
  shard: Shard;
  bytes: Uint8Array;
  stats: BuildStats;
}

/** Builds a shard from documents. Throws BuildAbortedError (name 'AbortError') when cancelled. */
export async function buildShard(documents: readonly DocumentInput[], options: BuildOptions): Promise<BuildResult> {
  const { tokenizer, embedder, chunkSize, signal, onProgress } = options;
  const neighbourLen = options.neighbourLen ?? 2 * chunkSize;
  const indexKind = options.indexKind ?? 'flat';
  if (tokenizer.vocabSize > embedder.vocabSize) {
    throw new RangeError(`the tokenizer has ${tokenizer.vocabSize} ids but the embedder only ${embedder.vocabSize} rows`);
  }
  const docs = documents.filter((d) => d.text.length > 0);
  if (docs.length === 0) throw new EmptyInputError('no documents with text to build a datastore from', options.name);

  const t0 = clock();
  const seconds: BuildStats['seconds'] = { tokenize: 0, chunk: 0, embed: 0, index: 0, encode: 0, total: 0 };
  let embedRate = 0;
  const report = (phase: BuildProgress['phase'], done: number, total: number, unit: BuildProgress['unit']) =>
    onProgress?.({ phase, done, total, unit, chunksPerSecond: embedRate, elapsedMs: clock() - t0 });
  const checkpoint = buildCheckpoint(signal, options.yieldEveryMs ?? 50);

  // Tokenize in slices (tokenizeInSlices), so a 100 MB text shows progress and sees Cancel between
  // slices; keep each document's UTF-8 text and token byte offsets for the chunk text spans.
  let phaseStart = clock();
  const totalBytes = docs.reduce((n, d) => n + utf8Length(d.text), 0);
  if (totalBytes > 0xffffffff) throw new RangeError('documents over 4 GiB of text do not fit one shard');
  report('tokenize', 0, totalBytes, 'bytes');
  const ids: Int32Array[] = [];
  const texts: Uint8Array[] = [];
  let textBytes = 0;
  let tokenCount = 0;
  for (const doc of docs) {
    const { ids: docIds, bytes } = await tokenizeInSlices(tokenizer, doc.text, async (sliceIds, sliceBytes) => {
      tokenCount += sliceIds;
      textBytes += sliceBytes;
      if (options.maxTokens !== undefined && tokenCount > options.maxTokens) {
        throw new InputTooLargeError(
          `${doc.title || options.name}: more than ${options.maxTokens.toLocaleString('en')} tokens (after ${formatBytes(textBytes)} of ${formatBytes(totalBytes)} of text); a datastore built here holds at most that many. Build a larger one with \`npm run datastore -- build\` and import it.`,
          doc.title,
        );
      }
      if (await checkpoint()) report('tokenize', textBytes, totalBytes, 'bytes');
    });
    ids.push(docIds);
    texts.push(bytes);
  }
  report('tokenize', totalBytes, totalBytes, 'bytes');
  seconds.tokenize = (clock() - phaseStart) / 1000;

  phaseStart = clock();
  const chunks = chunkDocuments(ids, { chunkSize, neighbourLen, eotId: tokenizer.eotId }, tokenizer.vocabSize);
  const n = chunks.count;
  if (n === 0) throw new EmptyInputError('the documents produced no tokens', options.name);
  if (indexKind === 'voy' && n > VOY_MAX_VECTORS) {
    throw new VoyLimitError(
      `the voy index is limited to ${VOY_MAX_VECTORS.toLocaleString('en')} chunks and these documents make ${n.toLocaleString('en')}; choose the flat index`,
    );
  }
  const docTextOffsets = new Uint32Array(docs.length + 1);
  const allText = new Uint8Array(textBytes);
  texts.forEach((t, d) => {
    allText.set(t, docTextOffsets[d]!);
    docTextOffsets[d + 1] = docTextOffsets[d]! + t.length;
  });
  const spans = new Uint32Array(3 * n);
  let r = 0;
  for (let d = 0; d < docs.length; d++) {
    const docIds = ids[d]!;
    const offsets = new Uint32Array(docIds.length + 1);
    for (let i = 0; i < docIds.length; i++) offsets[i + 1] = offsets[i]! + tokenizer.tokenByteLength(docIds[i]!);
    if (offsets[docIds.length] !== texts[d]!.length) {
      throw new Error(`tokens of document ${d} ("${docs[d]!.title}") do not add up to its text (${offsets[docIds.length]} vs ${texts[d]!.length} bytes): the tokenizer is not lossless byte-level BPE`);
    }
    const base = docTextOffsets[d]!;
    for (let start = 0; start < docIds.length; start += chunkSize, r++) {
      spans[3 * r] = base + offsets[start]!;
      spans[3 * r + 1] = base + offsets[Math.min(start + chunkSize, docIds.length)]!;
      spans[3 * r + 2] = base + offsets[Math.min(start + neighbourLen, docIds.length)]!;
    }
  }
  ids.length = 0;
  seconds.chunk = (clock() - phaseStart) / 1000;
  report('chunk', n, n, 'chunks');
  await checkpoint(true);

  // Embed in batches so progress and cancel stay responsive.
  phaseStart = clock();
  const dim = embedder.dim;
  const vectors = new Float32Array(n * dim);
  const batch = 1024;
  for (let first = 0; first < n; first += batch) {
    const count = Math.min(batch, n - first);
    embedder.embedRows(chunks.tokens, neighbourLen, chunks.lengths, first, count, vectors, first * dim);
    const elapsed = (clock() - phaseStart) / 1000;
    embedRate = elapsed > 0 ? (first + count) / elapsed : 0;
    if (await checkpoint()) report('embed', first + count, n, 'chunks');
  }
  seconds.embed = (clock() - phaseStart) / 1000;
  embedRate = seconds.embed > 0 ? n / seconds.embed : 0;
  report('embed', n, n, 'chunks');

  phaseStart = clock();
  report('index', 0, n, 'chunks');
  await checkpoint(true);
  const embeddings = quantizeVectors(vectors, dim);
  let indexBytes: Uint8Array = new Uint8Array(0);
  if (indexKind === 'voy') {
    const voy = VoyIndex.build(new ArrayVectorSource(vectors, dim));
    indexBytes = voy.serialize();
    voy.dispose();
  }
  seconds.index = (clock() - phaseStart) / 1000;
  report('index', n, n, 'chunks');
  await checkpoint(true);

  phaseStart = clock();
  let tokens = 0;
  for (let i = 0; i < n; i++) tokens += chunks.lengths[i]!;
  const meta: ShardMeta = {
    name: options.name,
    description: options.description ?? '',
    createdAt: (options.now?.() ?? new Date()).toISOString(),
    tokenizer: { id: tokenizer.id, fingerprint: tokenizer.fingerprint, vocabSize: tokenizer.vocabSize, eotId: tokenizer.eotId, unkId: tokenizer.unkId },
    embedder: { id: embedder.id, fingerprint: embedder.fingerprint, vocabSize: embedder.vocabSize, dim },
    sources: options.sources ?? [],
  };
  const built: Shard = {
    formatVersion: SHARD_FORMAT_VERSION,
    meta,
    chunkSize,
    neighbourLen,
    vocabSize: tokenizer.vocabSize,
    eotId: tokenizer.eotId,
    dim,
    indexKind,
    tokens: chunks.tokens,
    chunkLengths: chunks.lengths,
    chunkDocs: chunks.docs,
    chunkTextSpans: spans,
    docTextOffsets,
    texts: allText,
    titles: docs.map((d) => d.title),
    embeddings,
    indexBytes,
    knnlm: null,
  };
  seconds.total = (clock() - t0) / 1000;
  meta.extra = { build: { seconds: { ...seconds }, embedChunksPerSecond: embedRate, tokens } };
  const bytes = encodeShard(built);
  const shard = decodeShard(bytes);
  seconds.encode = (clock() - phaseStart) / 1000;
  seconds.total = (clock() - t0) / 1000;
  report('encode', bytes.length, bytes.length, 'bytes');
  const stats: BuildStats = {
    documents: docs.length,
    chunks: n,
    tokens,
    bytes: bytes.length,
    seconds,
    embedChunksPerSecond: embedRate,
    chunksPerSecond: n / seconds.total,
  };
  report('done', n, n, 'chunks');
  return { shard, bytes, stats };
}

/** Characters per tokenizer call: one call takes milliseconds, so progress and Cancel get through. */
export const TOKENIZE_SLICE_CHARS = 64 * 1024;

/**
 * Where a slice of `text` starting at `from` may end, near `from + size`: before a space that sits
 * between two non-spaces. The ByteLevel pre-tokenizer (GPT-2's regex) starts a piece at such a
 * space (" word"), so encoding the slices one by one gives exactly the ids of the whole text. With
 * no such space in the second half of the slice it cuts at the size (never inside a surrogate pair):
 * still lossless, only the tokens at that cut may differ.
 */
export function sliceEnd(text: string, from: number, size: number): number {
  const target = from + size;
  if (target >= text.length) return text.length;
  const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
  for (let i = target; i > from + size / 2; i--) {
    if (text.charCodeAt(i) === 0x20 && !isSpace(text.charCodeAt(i - 1)) && i + 1 < text.length && !isSpace(text.charCodeAt(i + 1))) return i;
  }
  const high = text.charCodeAt(target - 1);
  return high >= 0xd800 && high <= 0xdbff ? target - 1 : target;
}

/**
 * Encodes `text` slice by slice (sliceEnd), calling `afterSlice` with each slice's token and byte
 * counts (it may yield, report progress or throw to stop). Returns the ids and the UTF-8 bytes.
 */
export async function tokenizeInSlices(
  tokenizer: Pick<RetroTokenizer, 'encode'>,
  text: string,
  afterSlice: (ids: number, bytes: number) => Promise<void>,
  sliceChars = TOKENIZE_SLICE_CHARS,
): Promise<{ ids: Int32Array; bytes: Uint8Array }> {
  const encoder = new TextEncoder();
  const idParts: Int32Array[] = [];
  const byteParts: Uint8Array[] = [];
  let idCount = 0;
  let byteCount = 0;
  for (let from = 0; from < text.length; ) {
    const to = sliceEnd(text, from, sliceChars);
    const slice = text.slice(from, to);
    const sliceIds = tokenizer.encode(slice);
    const sliceBytes = encoder.encode(slice);
    idParts.push(Int32Array.from(sliceIds));
    byteParts.push(sliceBytes);
    idCount += sliceIds.length;
    byteCount += sliceBytes.length;
    from = to;
    await afterSlice(sliceIds.length, sliceBytes.length);
  }
  const ids = new Int32Array(idCount);
  let at = 0;
  for (const part of idParts) {
    ids.set(part, at);
    at += part.length;
  }
  const bytes = new Uint8Array(byteCount);
  at = 0;
  for (const part of byteParts) {
    bytes.set(part, at);
    at += part.length;
  }
  return { ids, bytes };
}

/** UTF-8 length without encoding (lone surrogates count 3, as TextEncoder writes U+FFFD). */
function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
