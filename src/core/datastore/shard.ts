/**
 * Reads and writes datastore shards (`.rlds`), the binary format of docs/datastore-format.md:
 * a fixed little-endian header, a section table, the metadata as JSON, then 8-byte-aligned
 * sections, each with its own CRC-32 so damage is reported by section.
 */
import {
  INDEX_KIND_CODES,
  SECTION_DTYPES,
  SECTION_IDS,
  SHARD_FIXED_HEADER_BYTES,
  SHARD_FLAGS,
  SHARD_FORMAT_VERSION,
  SHARD_MAGIC,
  SHARD_SECTION_ENTRY_BYTES,
  type SectionDtype,
  type SectionName,
  type Shard,
  type ShardMeta,
} from '../../protocol/shard';
import type { IndexKind } from '../../protocol/retrieval';
import { bytesOf, crc32 } from './checksum';
import { ShardCorruptError, ShardMagicError, ShardTruncatedError, ShardVersionError } from './errors';
import { IVF_FORMAT_VERSION, checkIvf } from './ivf-format';

// Sections are typed-array views of the bytes, which is only right on a little-endian machine
// (every browser platform); refuse loudly rather than misread elsewhere.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('RetroLab shards need a little-endian platform');

const OFF = {
  version: 8,
  headerBytes: 12,
  totalBytes: 16,
  flags: 24,
  headerCrc: 28,
  chunkSize: 32,
  neighbourLen: 36,
  chunkCount: 40,
  documentCount: 44,
  dim: 48,
  vocabSize: 52,
  eotId: 56,
  indexKind: 60,
  sectionCount: 64,
  metaBytes: 68,
} as const;

const DTYPE_SIZE: Record<SectionDtype, number> = { u8: 1, i8: 1, u16: 2, u32: 4, i32: 4, f32: 4 };
const DTYPE_BY_CODE = new Map<number, SectionDtype>(Object.entries(SECTION_DTYPES).map(([k, v]) => [v, k as SectionDtype]));
const NAME_BY_ID = new Map<number, SectionName>(Object.entries(SECTION_IDS).map(([k, v]) => [v, k as SectionName]));
const KIND_BY_CODE = new Map<number, IndexKind>(Object.entries(INDEX_KIND_CODES).map(([k, v]) => [v, k as IndexKind]));

const align8 = (n: number) => Math.ceil(n / 8) * 8;

export interface SectionInfo {
  name: SectionName | `unknown-${number}`;
  id: number;
  dtype: SectionDtype;
  offset: number;
  bytes: number;
  crc32: number;
}

/** Everything the header says, read without touching the sections. */
export interface ShardHeader {
  formatVersion: number;
  headerBytes: number;
  totalBytes: number;
  flags: number;
  chunkSize: number;
  neighbourLen: number;
  chunkCount: number;
  documentCount: number;
  dim: number;
  vocabSize: number;
  eotId: number;
  indexKind: IndexKind;
  /** length of the metadata JSON */
  metaBytes: number;
  meta: ShardMeta;
  sections: SectionInfo[];
}

type TypedArray = Uint8Array | Int8Array | Uint16Array | Uint32Array | Int32Array | Float32Array;

function dtypeOf(array: TypedArray): SectionDtype {
  if (array instanceof Uint8Array) return 'u8';
  if (array instanceof Int8Array) return 'i8';
  if (array instanceof Uint16Array) return 'u16';
  if (array instanceof Uint32Array) return 'u32';
  if (array instanceof Int32Array) return 'i32';
  return 'f32';
}

function utf8Join(strings: readonly string[]): { bytes: Uint8Array; offsets: Uint32Array } {
  const encoder = new TextEncoder();
  const parts = strings.map((s) => encoder.encode(s));
  const offsets = new Uint32Array(parts.length + 1);
  let total = 0;
  parts.forEach((p, i) => {
    offsets[i] = total;
    total += p.length;
  });
  offsets[parts.length] = total;
  const bytes = new Uint8Array(total);
  parts.forEach((p, i) => bytes.set(p, offsets[i]!));
  return { bytes, offsets };
}

/** Checks the invariants a shard must satisfy; the decoder runs the same checks on what it reads. */
function validate(shard: Shard, report: (message: string, section?: SectionName) => never, deferredCodes?: number): void {
  const { chunkSize: C, neighbourLen: L, dim, vocabSize } = shard;
  const n = shard.chunkLengths.length;
  const docs = shard.titles.length;
  // A kNN-LM-only shard has no chunks and says so with zero chunk size and neighbour length.
  const chunkless = n === 0 && C === 0 && L === 0 && shard.knnlm !== null;
  if (!chunkless && !(C >= 1 && L >= C)) report(`chunk size ${C} and neighbour length ${L} are inconsistent`);
  if (shard.tokens.length !== n * L) report(`tokens hold ${shard.tokens.length} ids, expected ${n} x ${L}`, 'tokens');
  if (shard.chunkDocs.length !== n) report('chunk documents and chunk lengths differ in count', 'chunkDocs');
  if (shard.chunkTextSpans.length !== 3 * n) report('chunk text spans do not hold 3 offsets per chunk', 'chunkTextSpans');
  if (shard.docTextOffsets.length !== docs + 1) report('document text offsets do not match the document count', 'docTextOffsets');
  const e = shard.embeddings;
  if (e.count !== n || e.dim !== dim || e.codes.length !== n * dim || e.scales.length !== n || e.errors.length !== n) {
    report('embeddings do not match the chunk count and dimension', 'embeddingCodes');
  }
  for (let i = 0; i < shard.tokens.length; i++) {
    const id = shard.tokens[i]!;
    if (id < 0 || id >= vocabSize) report(`token id ${id} at position ${i} is outside the vocabulary (${vocabSize})`, 'tokens');
  }
  const textBytes = shard.texts.length;
  for (let d = 0; d < docs; d++) {
    if (shard.docTextOffsets[d]! > shard.docTextOffsets[d + 1]!) report(`document ${d} has a negative text length`, 'docTextOffsets');
  }
  if (shard.docTextOffsets[docs]! !== textBytes) report('document text offsets do not end at the end of the texts', 'docTextOffsets');
  let previousDoc = 0;
  for (let i = 0; i < n; i++) {
    const len = shard.chunkLengths[i]!;
    if (len < 1 || len > C) report(`chunk ${i} has length ${len}, outside 1..${C}`, 'chunkLengths');
    const d = shard.chunkDocs[i]!;
    if (d >= docs || d < previousDoc) report(`chunk ${i} belongs to document ${d}: chunks must be grouped by document in order`, 'chunkDocs');
    previousDoc = d;
    const a = shard.chunkTextSpans[3 * i]!, b = shard.chunkTextSpans[3 * i + 1]!, c = shard.chunkTextSpans[3 * i + 2]!;
    if (!(shard.docTextOffsets[d]! <= a && a <= b && b <= c && c <= shard.docTextOffsets[d + 1]!)) {
      report(`text span of chunk ${i} lies outside its document`, 'chunkTextSpans');
    }
  }
  if (shard.knnlm) validateKnnlm(shard, report, deferredCodes);
}

function validateKnnlm(shard: Shard, report: (message: string, section?: SectionName) => never, deferredCodes?: number): void {
  const { keyDim, dim, encoding, keys, scales, pca, values, textOffsets } = shard.knnlm!;
  // Codes read later, straight into a search index (decodeShardFrom's `deferCodes`): their count is the section's.
  const codes = shard.knnlm!.codes ?? (deferredCodes !== undefined ? { length: deferredCodes } : null);
  const count = values.length;
  if (!(keyDim >= 1 && dim >= 1 && dim <= keyDim)) report(`kNN-LM key dimension ${dim} (of ${keyDim}) is inconsistent`, 'knnlmValues');
  if (encoding === 'f32') {
    if (!keys || keys.length !== count * dim || codes || scales) report('kNN-LM float keys and values differ in count', 'knnlmKeys');
  } else if (encoding === 'int8') {
    if (!codes || codes.length !== count * dim || keys) report('kNN-LM int8 keys and values differ in count', 'knnlmCodes');
    if (!scales || scales.length !== count) report('kNN-LM key scales and values differ in count', 'knnlmScales');
  } else {
    report(`unknown kNN-LM key encoding ${String(encoding)}`, 'knnlmValues');
  }
  if (pca) {
    if (pca.mean.length !== keyDim) report('the kNN-LM PCA mean does not match the key dimension', 'knnlmPcaMean');
    if (pca.basis.length !== dim * keyDim) report('the kNN-LM PCA basis does not match the key dimensions', 'knnlmPcaBasis');
  } else if (dim !== keyDim) {
    report(`kNN-LM keys of ${dim} dims without a projection from ${keyDim}`, 'knnlmValues');
  }
  for (let i = 0; i < count; i++) {
    if (values[i]! >= shard.vocabSize) report(`kNN-LM value ${values[i]} of entry ${i} is outside the vocabulary (${shard.vocabSize})`, 'knnlmValues');
  }
  if (textOffsets) {
    if (textOffsets.length !== count + 1) report('kNN-LM text offsets do not hold one offset per entry plus one', 'knnlmTextOffsets');
    for (let i = 0; i < count; i++) {
      if (textOffsets[i]! > textOffsets[i + 1]!) report(`kNN-LM text offsets decrease at entry ${i}`, 'knnlmTextOffsets');
    }
    if (textOffsets[count]! > shard.texts.length) report('kNN-LM text offsets run past the texts', 'knnlmTextOffsets');
  }
  const m = shard.meta.knnlm;
  const ivf = shard.knnlm!.ivf;
  if (ivf) {
    const problem = checkIvf(ivf, count, dim);
    if (problem) report(problem, 'knnlmIvfOffsets');
    if (m?.ivf && m.ivf.lists !== ivf.offsets.length - 1) report('the IVF metadata does not match its sections', 'knnlmIvfOffsets');
  }
  if (m && (m.count !== count || m.keyDim !== keyDim || m.dim !== dim || m.encoding !== encoding || (m.pcaSample !== undefined) !== (pca !== null))) {
    report('the kNN-LM metadata does not match its sections', 'knnlmValues');
  }
}

/** The placeholder layout of flag bit 0: float keys without projection or text offsets, no meta.knnlm. */
function isPlaceholderLayout(shard: Shard): boolean {
  const k = shard.knnlm;
  return k !== null && !shard.meta.knnlm && k.encoding === 'f32' && k.pca === null && k.textOffsets === null;
}

/** Encodes a shard into its file bytes. */
export function encodeShard(shard: Shard): Uint8Array {
  validate(shard, (message, section) => {
    throw new RangeError(`cannot encode shard${section ? ` (${section})` : ''}: ${message}`);
  });
  const titles = utf8Join(shard.titles);
  const sections: [SectionName, TypedArray][] = [
    ['tokens', shard.tokens],
    ['chunkLengths', shard.chunkLengths],
    ['chunkDocs', shard.chunkDocs],
    ['chunkTextSpans', shard.chunkTextSpans],
    ['docTextOffsets', shard.docTextOffsets],
    ['texts', shard.texts],
    ['docTitleOffsets', titles.offsets],
    ['titles', titles.bytes],
    ['embeddingCodes', shard.embeddings.codes],
    ['embeddingScales', shard.embeddings.scales],
    ['embeddingErrors', shard.embeddings.errors],
    ['index', shard.indexBytes],
  ];
  const meta: ShardMeta = { ...shard.meta };
  delete meta.knnlmKeyDim;
  let flags = 0;
  const knn = shard.knnlm;
  if (knn && isPlaceholderLayout(shard)) {
    sections.push(['knnlmKeys', knn.keys!], ['knnlmValues', knn.values]);
    meta.knnlmKeyDim = knn.keyDim;
    flags |= SHARD_FLAGS.knnlm;
  } else if (knn) {
    if (!meta.knnlm) throw new RangeError('cannot encode shard (knnlmValues): a kNN-LM section needs meta.knnlm');
    if (knn.keys) sections.push(['knnlmKeys', knn.keys]);
    if (knn.codes) sections.push(['knnlmCodes', knn.codes]);
    if (knn.scales) sections.push(['knnlmScales', knn.scales]);
    if (knn.pca) sections.push(['knnlmPcaMean', knn.pca.mean], ['knnlmPcaBasis', knn.pca.basis]);
    sections.push(['knnlmValues', knn.values]);
    if (knn.textOffsets) sections.push(['knnlmTextOffsets', knn.textOffsets]);
    if (knn.ivf) {
      if (!meta.knnlm.ivf) throw new RangeError('cannot encode shard (knnlmIvfOffsets): IVF sections need meta.knnlm.ivf');
      sections.push(['knnlmIvfCentroids', knn.ivf.centroids], ['knnlmIvfOffsets', knn.ivf.offsets], ['knnlmIvfIds', knn.ivf.ids]);
    } else if (meta.knnlm.ivf) {
      meta.knnlm = { ...meta.knnlm };
      delete meta.knnlm.ivf;
    }
    flags |= SHARD_FLAGS.knnlmDatastore;
  } else {
    delete meta.knnlm;
  }
  const metaBytes = new TextEncoder().encode(JSON.stringify(meta));
  const headerBytes = align8(SHARD_FIXED_HEADER_BYTES + sections.length * SHARD_SECTION_ENTRY_BYTES + metaBytes.length);
  const placed = sections.map(([name, array]) => ({ name, array, bytes: bytesOf(array), offset: 0 }));
  let end = headerBytes;
  for (const s of placed) {
    s.offset = align8(end);
    end = s.offset + s.bytes.length;
  }
  const totalBytes = end;
  if (totalBytes > Number.MAX_SAFE_INTEGER) throw new RangeError('shard too large');

  const out = new Uint8Array(totalBytes);
  const view = new DataView(out.buffer);
  out.set(SHARD_MAGIC, 0);
  view.setUint32(OFF.version, SHARD_FORMAT_VERSION, true);
  view.setUint32(OFF.headerBytes, headerBytes, true);
  view.setBigUint64(OFF.totalBytes, BigInt(totalBytes), true);
  view.setUint32(OFF.flags, flags, true);
  view.setUint32(OFF.chunkSize, shard.chunkSize, true);
  view.setUint32(OFF.neighbourLen, shard.neighbourLen, true);
  view.setUint32(OFF.chunkCount, shard.chunkLengths.length, true);
  view.setUint32(OFF.documentCount, shard.titles.length, true);
  view.setUint32(OFF.dim, shard.dim, true);
  view.setUint32(OFF.vocabSize, shard.vocabSize, true);
  view.setUint32(OFF.eotId, shard.eotId, true);
  view.setUint32(OFF.indexKind, INDEX_KIND_CODES[shard.indexKind], true);
  view.setUint32(OFF.sectionCount, sections.length, true);
  view.setUint32(OFF.metaBytes, metaBytes.length, true);
  placed.forEach((s, i) => {
    const e = SHARD_FIXED_HEADER_BYTES + i * SHARD_SECTION_ENTRY_BYTES;
    view.setUint32(e, SECTION_IDS[s.name], true);
    view.setUint32(e + 4, SECTION_DTYPES[dtypeOf(s.array)], true);
    view.setBigUint64(e + 8, BigInt(s.offset), true);
    view.setBigUint64(e + 16, BigInt(s.bytes.length), true);
    view.setUint32(e + 24, crc32(s.bytes), true);
    out.set(s.bytes, s.offset);
  });
  out.set(metaBytes, SHARD_FIXED_HEADER_BYTES + sections.length * SHARD_SECTION_ENTRY_BYTES);
  view.setUint32(OFF.headerCrc, headerCrc(out, headerBytes), true);
  return out;
}

/** CRC-32 of the header with its own CRC field read as zero. */
function headerCrc(bytes: Uint8Array, headerBytes: number): number {
  let c = crc32(bytes.subarray(0, OFF.headerCrc));
  c = crc32(new Uint8Array(4), c);
  return crc32(bytes.subarray(OFF.headerCrc + 4, headerBytes), c);
}

function readU64(view: DataView, offset: number): number {
  const v = view.getBigUint64(offset, true);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(v);
}

/**
 * Reads and checks the header (magic, version, length, header CRC, section table) without
 * reading the sections. Throws ShardMagicError, ShardVersionError, ShardTruncatedError or
 * ShardCorruptError.
 */
export function readShardHeader(bytes: Uint8Array, fileBytes = bytes.length): ShardHeader {
  const prefix = Math.min(bytes.length, SHARD_MAGIC.length);
  for (let i = 0; i < prefix; i++) {
    if (bytes[i] !== SHARD_MAGIC[i]) throw new ShardMagicError('not a RetroLab datastore (.rlds): the file does not start with the RLDS magic number');
  }
  if (bytes.length < SHARD_FIXED_HEADER_BYTES) throw new ShardTruncatedError(null, bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const formatVersion = view.getUint32(OFF.version, true);
  if (formatVersion !== SHARD_FORMAT_VERSION) throw new ShardVersionError(formatVersion, SHARD_FORMAT_VERSION);
  const headerBytes = view.getUint32(OFF.headerBytes, true);
  const totalBytes = readU64(view, OFF.totalBytes);
  if (fileBytes < totalBytes) throw new ShardTruncatedError(totalBytes, fileBytes);
  if (fileBytes > totalBytes) {
    throw new ShardCorruptError(`${fileBytes - totalBytes} unexpected bytes after the end of the datastore (${totalBytes} bytes)`);
  }
  const sectionCount = view.getUint32(OFF.sectionCount, true);
  const metaLength = view.getUint32(OFF.metaBytes, true);
  const tableEnd = SHARD_FIXED_HEADER_BYTES + sectionCount * SHARD_SECTION_ENTRY_BYTES;
  if (headerBytes > totalBytes || headerBytes !== align8(tableEnd + metaLength)) {
    throw new ShardCorruptError('the header length fields are inconsistent');
  }
  if (view.getUint32(OFF.headerCrc, true) !== headerCrc(bytes, headerBytes)) {
    throw new ShardCorruptError('the header failed its checksum: the file is damaged');
  }

  const sections: SectionInfo[] = [];
  for (let i = 0; i < sectionCount; i++) {
    const e = SHARD_FIXED_HEADER_BYTES + i * SHARD_SECTION_ENTRY_BYTES;
    const id = view.getUint32(e, true);
    const dtype = DTYPE_BY_CODE.get(view.getUint32(e + 4, true));
    const offset = readU64(view, e + 8);
    const length = readU64(view, e + 16);
    const name = NAME_BY_ID.get(id) ?? (`unknown-${id}` as const);
    if (!dtype) throw new ShardCorruptError(`section ${name} has an unknown element type`, name);
    if (offset < headerBytes || offset % 8 !== 0 || offset + length > totalBytes || length % DTYPE_SIZE[dtype] !== 0) {
      throw new ShardCorruptError(`section ${name} lies outside the file or is misaligned`, name);
    }
    sections.push({ name, id, dtype, offset, bytes: length, crc32: view.getUint32(e + 24, true) });
  }
  let meta: ShardMeta;
  try {
    meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(tableEnd, tableEnd + metaLength))) as ShardMeta;
  } catch {
    throw new ShardCorruptError('the metadata is not valid JSON');
  }
  const indexKind = KIND_BY_CODE.get(view.getUint32(OFF.indexKind, true));
  if (!indexKind) throw new ShardCorruptError(`unknown index kind ${view.getUint32(OFF.indexKind, true)}`);
  return {
    formatVersion,
    headerBytes,
    totalBytes,
    flags: view.getUint32(OFF.flags, true),
    chunkSize: view.getUint32(OFF.chunkSize, true),
    neighbourLen: view.getUint32(OFF.neighbourLen, true),
    chunkCount: view.getUint32(OFF.chunkCount, true),
    documentCount: view.getUint32(OFF.documentCount, true),
    dim: view.getUint32(OFF.dim, true),
    vocabSize: view.getUint32(OFF.vocabSize, true),
    eotId: view.getUint32(OFF.eotId, true),
    indexKind,
    metaBytes: metaLength,
    meta,
    sections,
  };
}

export interface DecodeOptions {
  /** Check each section's CRC-32 (default true; ~0.3 s per 100 MB). */
  verifyChecksums?: boolean;
}

/**
 * Decodes shard bytes. Arrays are views into `bytes` where aligned (copies otherwise), so keep
 * `bytes` unmodified while the shard is in use.
 */
export function decodeShard(bytes: Uint8Array, options: DecodeOptions = {}): Shard {
  const header = readShardHeader(bytes);

  // Padding between the header and sections must be zero: a flipped padding byte is damage too.
  let cursor = header.headerBytes;
  const tableEnd = SHARD_FIXED_HEADER_BYTES + header.sections.length * SHARD_SECTION_ENTRY_BYTES;
  const checkZero = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (bytes[i] !== 0) throw new ShardCorruptError(`non-zero padding byte at offset ${i}`);
  };
  checkZero(tableEnd + header.metaBytes, header.headerBytes);
  for (const s of [...header.sections].sort((a, b) => a.offset - b.offset)) {
    if (s.offset < cursor) throw new ShardCorruptError(`section ${s.name} overlaps another`, s.name);
    checkZero(cursor, s.offset);
    cursor = s.offset + s.bytes;
    if (options.verifyChecksums !== false && crc32(bytes.subarray(s.offset, s.offset + s.bytes)) !== s.crc32) {
      throw new ShardCorruptError(`section ${s.name} failed its checksum: the file is damaged`, s.name);
    }
  }
  checkZero(cursor, header.totalBytes);
  return assembleShard(header, (s) => bytes.subarray(s.offset, s.offset + s.bytes));
}

/**
 * Random access to shard bytes (a file, a Blob): `read` gives `length` bytes from `offset`, in a
 * buffer of their own, or in `into` (at least `length` bytes) when the source can reuse it.
 */
export interface ShardSource {
  readonly byteLength: number;
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
}

/** A Blob (a stored shard, a dropped file) as a ShardSource: each read is a slice of it. */
export function blobShardSource(blob: Blob): ShardSource {
  return { byteLength: blob.size, read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()) };
}

export interface DecodeFromOptions extends DecodeOptions {
  /** Leave the kNN-LM int8 codes unread (shard.knnlm.codes null): the caller streams them (`codes` of the result). */
  deferCodes?: boolean;
}

/**
 * Decodes a shard read section by section: each array is a buffer of its own (no view of a whole
 * file), so a caller that streams the largest section elsewhere never holds the file at once.
 */
export async function decodeShardFrom(source: ShardSource, options: DecodeFromOptions = {}): Promise<{ header: ShardHeader; shard: Shard; codes: SectionInfo | null }> {
  const fixed = await source.read(0, Math.min(source.byteLength, SHARD_FIXED_HEADER_BYTES));
  if (fixed.length < SHARD_FIXED_HEADER_BYTES) return { ...decodeShardWhole(fixed), codes: null };
  const { header, head } = await headerFrom(source, fixed);
  const tableEnd = SHARD_FIXED_HEADER_BYTES + header.sections.length * SHARD_SECTION_ENTRY_BYTES;
  const zero = (bytes: Uint8Array, at: number) => {
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) throw new ShardCorruptError(`non-zero padding byte at offset ${at + i}`);
  };
  zero(head.subarray(tableEnd + header.metaBytes, header.headerBytes), tableEnd + header.metaBytes);
  const deferred = options.deferCodes ? (header.sections.find((s) => s.name === 'knnlmCodes') ?? null) : null;
  const read = new Map<SectionInfo, Uint8Array>();
  let cursor = header.headerBytes;
  for (const s of [...header.sections].sort((a, b) => a.offset - b.offset)) {
    if (s.offset < cursor) throw new ShardCorruptError(`section ${s.name} overlaps another`, s.name);
    if (s.offset > cursor) zero(await source.read(cursor, s.offset - cursor), cursor);
    cursor = s.offset + s.bytes;
    if (s === deferred) continue;
    const bytes = await source.read(s.offset, s.bytes);
    if (options.verifyChecksums !== false && crc32(bytes) !== s.crc32) throw new ShardCorruptError(`section ${s.name} failed its checksum: the file is damaged`, s.name);
    read.set(s, bytes);
  }
  if (header.totalBytes > cursor) zero(await source.read(cursor, header.totalBytes - cursor), cursor);
  const shard = assembleShard(header, (s) => read.get(s) ?? null, deferred?.bytes);
  return { header, shard, codes: deferred };
}

/** Reads and checks the header of a shard source (readShardHeader), reading only the header's bytes. */
export async function readShardHeaderFrom(source: ShardSource): Promise<ShardHeader> {
  const fixed = await source.read(0, Math.min(source.byteLength, SHARD_FIXED_HEADER_BYTES));
  if (fixed.length < SHARD_FIXED_HEADER_BYTES) return readShardHeader(fixed, source.byteLength);
  return (await headerFrom(source, fixed)).header;
}

async function headerFrom(source: ShardSource, fixed: Uint8Array): Promise<{ header: ShardHeader; head: Uint8Array }> {
  const headerBytes = new DataView(fixed.buffer, fixed.byteOffset, fixed.byteLength).getUint32(OFF.headerBytes, true);
  const head = headerBytes > SHARD_FIXED_HEADER_BYTES && headerBytes <= source.byteLength ? await source.read(0, headerBytes) : fixed;
  return { header: readShardHeader(head, source.byteLength), head };
}

/** A too-short source: readShardHeader reports it. */
function decodeShardWhole(bytes: Uint8Array): { header: ShardHeader; shard: Shard } {
  const shard = decodeShard(bytes);
  return { header: readShardHeader(bytes), shard };
}

/**
 * The shard from its checked sections' bytes (`bytesOf`; null only for the deferred kNN-LM codes,
 * of `deferredCodes` bytes), validated.
 */
function assembleShard(header: ShardHeader, sectionBytes: (s: SectionInfo) => Uint8Array | null, deferredCodes?: number): Shard {
  const byName = new Map(header.sections.map((s) => [s.name, s]));
  function section<T extends TypedArray>(name: SectionName, allowed: SectionDtype[]): T {
    const s = byName.get(name);
    if (!s) throw new ShardCorruptError(`section ${name} is missing`, name);
    if (!allowed.includes(s.dtype)) throw new ShardCorruptError(`section ${name} has element type ${s.dtype}, expected ${allowed.join(' or ')}`, name);
    const size = DTYPE_SIZE[s.dtype];
    const bytes = sectionBytes(s);
    if (!bytes) return null as unknown as T;
    const ctor = { u8: Uint8Array, i8: Int8Array, u16: Uint16Array, u32: Uint32Array, i32: Int32Array, f32: Float32Array }[s.dtype];
    if (bytes.byteOffset % size === 0) return new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, s.bytes / size) as T;
    const copy = new Uint8Array(s.bytes);
    copy.set(bytes);
    return new ctor(copy.buffer, 0, s.bytes / size) as T;
  }

  const titleOffsets = section<Uint32Array>('docTitleOffsets', ['u32']);
  const titleBytes = section<Uint8Array>('titles', ['u8']);
  if (titleOffsets.length !== header.documentCount + 1 || titleOffsets[header.documentCount] !== titleBytes.length) {
    throw new ShardCorruptError('title offsets do not match the document count', 'docTitleOffsets');
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const titles: string[] = [];
  for (let d = 0; d < header.documentCount; d++) {
    const a = titleOffsets[d]!, b = titleOffsets[d + 1]!;
    if (a > b) throw new ShardCorruptError(`title offsets of document ${d} are out of order`, 'docTitleOffsets');
    titles.push(decoder.decode(titleBytes.subarray(a, b)));
  }

  const n = header.chunkCount;
  let knnlm: Shard['knnlm'] = null;
  if (header.flags & SHARD_FLAGS.knnlmDatastore) {
    const m = header.meta.knnlm;
    if (!m) throw new ShardCorruptError('the kNN-LM flag is set but its metadata is missing', 'knnlmValues');
    const optional = <T extends TypedArray>(name: SectionName, dtype: SectionDtype): T | null => (byName.has(name) ? section<T>(name, [dtype]) : null);
    const mean = optional<Float32Array>('knnlmPcaMean', 'f32');
    const basis = optional<Float32Array>('knnlmPcaBasis', 'f32');
    knnlm = {
      keyDim: m.keyDim,
      dim: m.dim,
      encoding: m.encoding,
      keys: optional<Float32Array>('knnlmKeys', 'f32'),
      codes: optional<Int8Array>('knnlmCodes', 'i8'),
      scales: optional<Float32Array>('knnlmScales', 'f32'),
      pca: mean && basis ? { mean, basis } : null,
      values: section<Uint32Array>('knnlmValues', ['u32']),
      textOffsets: section<Uint32Array>('knnlmTextOffsets', ['u32']),
      ivf: null,
    };
    // IVF lists (optional): used only when all three sections are there and their version is known.
    const centroids = optional<Float32Array>('knnlmIvfCentroids', 'f32');
    const ivfOffsets = optional<Uint32Array>('knnlmIvfOffsets', 'u32');
    const ivfIds = optional<Uint32Array>('knnlmIvfIds', 'u32');
    if (centroids && ivfOffsets && ivfIds && m.ivf?.version === IVF_FORMAT_VERSION) knnlm.ivf = { centroids, offsets: ivfOffsets, ids: ivfIds };
  } else if (header.flags & SHARD_FLAGS.knnlm) {
    const keyDim = header.meta.knnlmKeyDim;
    if (!keyDim) throw new ShardCorruptError('the kNN-LM flag is set but the key dimension is missing', 'knnlmKeys');
    knnlm = {
      keyDim,
      dim: keyDim,
      encoding: 'f32',
      keys: section<Float32Array>('knnlmKeys', ['f32']),
      codes: null,
      scales: null,
      pca: null,
      values: section<Uint32Array>('knnlmValues', ['u32']),
      textOffsets: null,
    };
  }
  const shard: Shard = {
    formatVersion: header.formatVersion,
    meta: header.meta,
    chunkSize: header.chunkSize,
    neighbourLen: header.neighbourLen,
    vocabSize: header.vocabSize,
    eotId: header.eotId,
    dim: header.dim,
    indexKind: header.indexKind,
    tokens: section<Uint16Array | Int32Array>('tokens', ['u16', 'i32']),
    chunkLengths: section<Uint16Array>('chunkLengths', ['u16']),
    chunkDocs: section<Uint32Array>('chunkDocs', ['u32']),
    chunkTextSpans: section<Uint32Array>('chunkTextSpans', ['u32']),
    docTextOffsets: section<Uint32Array>('docTextOffsets', ['u32']),
    texts: section<Uint8Array>('texts', ['u8']),
    titles,
    embeddings: {
      count: n,
      dim: header.dim,
      codes: section<Int8Array>('embeddingCodes', ['i8']),
      scales: section<Float32Array>('embeddingScales', ['f32']),
      errors: section<Float32Array>('embeddingErrors', ['f32']),
    },
    indexBytes: section<Uint8Array>('index', ['u8']),
    knnlm,
  };
  if (shard.chunkLengths.length !== n) throw new ShardCorruptError(`the header counts ${n} chunks, the sections ${shard.chunkLengths.length}`, 'chunkLengths');
  validate(
    shard,
    (message, section) => {
      throw new ShardCorruptError(`inconsistent datastore: ${message}`, section);
    },
    deferredCodes,
  );
  return shard;
}

/** Bytes per section of an encoded shard, by name (for the UI and `datastore info`). */
export function sectionSizes(header: ShardHeader): Record<string, number> {
  return Object.fromEntries(header.sections.map((s) => [s.name, s.bytes]));
}
