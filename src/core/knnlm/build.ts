/**
 * Documents -> kNN-LM datastore: one entry per token of the datastore text. The documents are
 * tokenized one by one and concatenated into one stream (the eval protocol's stream, docs/manifest.md);
 * the GPT reads it in the eval's windows (context 256, stride 128) and each scored position t gives
 * one entry: key = `knn_key` at t, value = token t+1. So every token after the first has exactly one
 * key, made with the same context the eval would use (at least context − stride tokens of history
 * after the first window), and the keys of the eval text itself are reproduced exactly.
 *
 * Runs in Node and in a worker: it yields to the event loop between windows so progress can be
 * posted and an AbortSignal seen.
 */
import type { DocumentInput, KnnBuildProgress, KnnlmIvfMeta, KnnlmKeyEncoding, KnnlmMeta, KnnlmSection, Shard, ShardMeta } from '../../protocol/shard';
import { SHARD_FORMAT_VERSION } from '../../protocol/shard';
import { EmptyInputError, ShardMismatchError } from '../datastore/errors';
import { buildCheckpoint, clock } from '../datastore/checkpoint';
import { decodeShard, encodeShard } from '../datastore/shard';
import { streamWindows, type Window } from '../eval/perplexity';
import type { LanguageModel } from '../models/types';
import { quantizeVectors } from '../retrieval/flat';
import type { RetroTokenizer } from '../tokenizer/index';
import { fitPca, projectKeys, type Pca } from './pca';
import { IVF_FORMAT_VERSION, trainIvf, type IvfTrainOptions, type IvfTrainStats } from './ivf';

/** Windows per forward of `keysBatch` by default: docs/benchmarks.md, "Set-up: building the kNN-LM keys". */
export const DEFAULT_KEY_BATCH = 4;

/**
 * What the builder needs of a model: its manifest and a prefill that returns `knnKeys` (GptModel);
 * with `keysBatch` (GptModel's knn_key-only cut), windows go through it `keyBatch` at a time.
 */
export type KeyModel = Pick<LanguageModel, 'manifest' | 'start'> & {
  keysBatch?: (sequences: readonly (readonly number[])[]) => Promise<Float32Array>;
};

/**
 * A model that only makes keys, `keysBatch` at a time: the Node tools' pool of GPT workers
 * (cli/key-pool.ts), whose `concurrency` batches run at once on as many cores.
 */
export type KeyBatchModel = Pick<LanguageModel, 'manifest'> & {
  keysBatch: (sequences: readonly (readonly number[])[]) => Promise<Float32Array>;
  concurrency?: number;
};

export interface KnnBuildOptions {
  name: string;
  description?: string;
  tokenizer: RetroTokenizer;
  model: KeyModel | KeyBatchModel;
  /** int8 (default: 1 byte per dim + a scale per key) or f32 (exact keys, 4 bytes per dim) */
  encoding?: KnnlmKeyEncoding;
  /** Project the keys onto this many principal components (default: no projection). */
  pca?: number;
  /** Keys the PCA is fitted on: the first ones of the stream (default 32,768). */
  pcaSample?: number;
  /**
   * Project with this PCA (another datastore's) instead of fitting one, so the two datastores'
   * distances compare: the leakage eval searches the train datastore and the evaluated split together.
   */
  projection?: { mean: Float32Array; basis: Float32Array };
  /** Window stride (default half the context: 128, the eval's); the context is the model's. */
  stride?: number;
  /** Windows per forward when the model has `keysBatch` (default DEFAULT_KEY_BATCH). */
  keyBatch?: number;
  /** Use only the first N tokens of the stream. */
  maxTokens?: number;
  /**
   * Attach the kNN-LM sections to this chunk datastore instead of making a kNN-only shard. It must
   * have been built from the same documents (checked): entries then point into its texts.
   */
  base?: Shard;
  sources?: ShardMeta['sources'];
  onProgress?: (progress: KnnBuildProgress) => void;
  signal?: AbortSignal;
  /** Yield to the event loop at least this often (ms); default 50. */
  yieldEveryMs?: number;
  now?: () => Date;
}

export interface KnnBuildStats {
  documents: number;
  /** tokens of the stream (after --max-tokens) */
  tokens: number;
  entries: number;
  windows: number;
  dim: number;
  encoding: KnnlmKeyEncoding;
  pcaExplained?: number;
  bytes: number;
  /** bytes of the kNN-LM sections alone */
  knnBytes: number;
  seconds: Record<'tokenize' | 'keys' | 'pca' | 'encode' | 'total', number>;
  /** tokens keyed per second in the keys phase (the GPT forward) */
  tokensPerSecond: number;
}

export interface KnnBuildResult {
  /** decoded from `bytes`, so what the caller holds is exactly what was written */
  shard: Shard;
  bytes: Uint8Array;
  stats: KnnBuildStats;
}

/** The documents of a shard (titles and texts), e.g. to attach kNN-LM sections to it. */
export function shardDocuments(shard: Shard): DocumentInput[] {
  const decoder = new TextDecoder();
  return shard.titles.map((title, d) => ({ title, text: decoder.decode(shard.texts.subarray(shard.docTextOffsets[d]!, shard.docTextOffsets[d + 1]!)) }));
}

/** Tokens of the documents as one stream, with each token's byte offset into the concatenated texts. */
export interface TokenStream {
  ids: Uint16Array | Int32Array;
  /** [tokens + 1]: token t spans byteOffsets[t]..byteOffsets[t+1] of `texts` */
  byteOffsets: Uint32Array;
  texts: Uint8Array;
  /** [documents + 1] byte offsets of each document in `texts` */
  docTextOffsets: Uint32Array;
  /** documents that have at least one token in the stream */
  documents: number;
}

/**
 * Tokenizes documents one by one into a single stream (the eval's), keeping the byte offsets the
 * explanation uses to show an entry's text. `maxTokens` cuts the stream (documents after the cut
 * are dropped, the last one is kept whole).
 */
export async function tokenStream(
  documents: readonly DocumentInput[],
  tokenizer: RetroTokenizer,
  maxTokens = Infinity,
  checkpoint: (done: number) => Promise<void> = async () => undefined,
): Promise<TokenStream> {
  const encoder = new TextEncoder();
  const perDoc: number[][] = [];
  const texts: Uint8Array[] = [];
  let total = 0;
  let textBytes = 0;
  for (let d = 0; d < documents.length && total < maxTokens; d++) {
    const ids = tokenizer.encode(documents[d]!.text);
    const bytes = encoder.encode(documents[d]!.text);
    perDoc.push(ids);
    texts.push(bytes);
    total += ids.length;
    textBytes += bytes.length;
    if (textBytes > 0xffffffff) throw new RangeError('documents over 4 GiB of text do not fit one shard');
    await checkpoint(d + 1);
  }
  const n = Math.min(total, maxTokens);
  const ids = tokenizer.vocabSize <= 0x10000 ? new Uint16Array(n) : new Int32Array(n);
  const byteOffsets = new Uint32Array(n + 1);
  const docTextOffsets = new Uint32Array(texts.length + 1);
  const allText = new Uint8Array(textBytes);
  let t = 0;
  for (let d = 0; d < perDoc.length; d++) {
    const base = docTextOffsets[d]!;
    allText.set(texts[d]!, base);
    docTextOffsets[d + 1] = base + texts[d]!.length;
    let offset = base;
    let complete = true;
    for (const id of perDoc[d]!) {
      if (t >= n) {
        complete = false;
        break;
      }
      ids[t] = id;
      byteOffsets[t] = offset;
      offset += tokenizer.tokenByteLength(id);
      t++;
      byteOffsets[t] = offset;
    }
    if (complete && offset !== docTextOffsets[d + 1]!) {
      throw new Error(`tokens of document ${d} do not add up to its text (${offset - base} vs ${texts[d]!.length} bytes): the tokenizer is not lossless byte-level BPE`);
    }
  }
  return { ids, byteOffsets, texts: allText, docTextOffsets, documents: perDoc.length };
}

/** Builds a kNN-LM datastore shard. Throws BuildAbortedError (name 'AbortError') when cancelled. */
export async function buildKnnShard(documents: readonly DocumentInput[], options: KnnBuildOptions): Promise<KnnBuildResult> {
  const { tokenizer, model, signal, onProgress } = options;
  const manifest = model.manifest;
  const hp = manifest.hyperparameters;
  const keyDim = hp.d_model;
  const context = hp.context;
  const stride = options.stride ?? Math.max(1, Math.floor(context / 2));
  const encoding = options.encoding ?? 'int8';
  const given = options.projection;
  if (given && (given.mean.length !== keyDim || given.basis.length % keyDim !== 0 || given.basis.length === 0)) {
    throw new RangeError(`the projection must map ${keyDim}-d keys: mean ${given.mean.length}, basis ${given.basis.length} floats`);
  }
  const pcaDim = given ? given.basis.length / keyDim : options.pca && options.pca < keyDim ? options.pca : 0;
  const dim = pcaDim || keyDim;
  if (tokenizer.vocabSize !== hp.vocab_size) throw new ShardMismatchError(`the tokenizer has ${tokenizer.vocabSize} ids, the model ${hp.vocab_size}`);
  if (!(stride >= 1 && stride <= context)) throw new RangeError(`stride must be in 1..${context}`);
  if (options.pca !== undefined && options.pca !== 0 && !(Number.isInteger(options.pca) && options.pca >= 1 && options.pca <= keyDim)) {
    throw new RangeError(`--pca must be in 1..${keyDim}, got ${options.pca}`);
  }

  const t0 = clock();
  const seconds: KnnBuildStats['seconds'] = { tokenize: 0, keys: 0, pca: 0, encode: 0, total: 0 };
  let rate = 0;
  const report = (phase: KnnBuildProgress['phase'], done: number, total: number, unit: KnnBuildProgress['unit']) =>
    onProgress?.({ phase, done, total, unit, tokensPerSecond: rate, elapsedMs: clock() - t0 });
  const checkpoint = buildCheckpoint(signal, options.yieldEveryMs ?? 50);

  const docs = options.base ? shardDocuments(options.base) : documents.filter((d) => d.text.length > 0);
  if (options.base && documents.length > 0) {
    const given = documents.filter((d) => d.text.length > 0);
    const same = given.length === docs.length && given.every((d, i) => d.text === docs[i]!.text);
    if (!same) throw new ShardMismatchError(`the documents differ from those of datastore "${options.base.meta.name}": attach kNN-LM sections only to a datastore built from the same text`);
  }
  if (docs.length === 0) throw new EmptyInputError('no documents with text to build a kNN-LM datastore from', options.name);

  let phaseStart = clock();
  report('tokenize', 0, docs.length, 'documents');
  const stream = await tokenStream(docs, tokenizer, options.maxTokens ?? Infinity, async (d) => {
    if (await checkpoint()) report('tokenize', d, docs.length, 'documents');
  });
  seconds.tokenize = (clock() - phaseStart) / 1000;
  const N = stream.ids.length;
  if (N < 2) throw new EmptyInputError('the documents make fewer than two tokens: no (context, next token) pair to store', options.name);
  const count = N - 1;

  // Keys: the eval's windows; entry i = key at stream position i, value = token i+1.
  phaseStart = clock();
  const windows = streamWindows(N, context, stride);
  const values = new Uint32Array(count);
  for (let i = 0; i < count; i++) values[i] = stream.ids[i + 1]!;
  const floats = encoding === 'f32' ? new Float32Array(count * dim) : null;
  const codes = encoding === 'int8' ? new Int8Array(count * dim) : null;
  const scales = encoding === 'int8' ? new Float32Array(count) : null;
  const sampleSize = pcaDim && !given ? Math.min(count, options.pcaSample ?? 32768) : 0;
  const sample = sampleSize ? new Float32Array(sampleSize * keyDim) : null;
  let pca: Pca | null = given ? { keyDim, dim, mean: given.mean, basis: given.basis, variances: new Float64Array(0), explained: NaN } : null;
  let keyed = 0;

  const store = (first: number, rows: Float32Array) => {
    const block = pca ? projectKeys(pca, rows) : rows;
    if (floats) floats.set(block, first * dim);
    else {
      const q = quantizeVectors(block, dim);
      codes!.set(q.codes, first * dim);
      scales!.set(q.scales, first);
    }
  };
  const fit = async () => {
    const t = clock();
    report('pca', 0, sampleSize, 'keys');
    await checkpoint(true);
    pca = fitPca(sample!, keyDim, pcaDim);
    store(0, sample!);
    seconds.pca = (clock() - t) / 1000;
    report('pca', sampleSize, sampleSize, 'keys');
  };

  report('keys', 0, count, 'keys');
  const keyBatch = model.keysBatch ? Math.max(1, options.keyBatch ?? DEFAULT_KEY_BATCH) : 1;
  /** Keys of a run of equal-length windows, each [inputs × keyDim]. */
  const keysOf = async (batch: readonly Window[]): Promise<Float32Array[]> => {
    const inputs = batch.map((w) => Array.from(stream.ids.subarray(w.start, w.start + w.length - 1)));
    if (model.keysBatch) {
      const T = inputs[0]!.length;
      const all = await model.keysBatch(inputs);
      if (all.length !== batch.length * T * keyDim) throw new Error(`${manifest.id} returned ${all.length} knn_key values for ${batch.length} × ${T} tokens`);
      return batch.map((_, b) => all.subarray(b * T * keyDim, (b + 1) * T * keyDim));
    }
    const keys = (await (model as KeyModel).start(inputs[0]!, { allLogits: true })).knnKeys;
    if (!keys || keys.length !== inputs[0]!.length * keyDim) throw new Error(`${manifest.id} returned no knn_key rows for its prefill: it is not a GPT with kNN-LM keys`);
    return [keys];
  };
  // Batches of equal-length windows (all but the stream's last are `context` long).
  const batches: Window[][] = [];
  for (let i = 0; i < windows.length; ) {
    let j = i + 1;
    while (j < windows.length && j - i < keyBatch && windows[j]!.length === windows[i]!.length) j++;
    batches.push(windows.slice(i, j));
    i = j;
  }
  // A pool's forwards run `concurrency` at once; the keys are stored in window order whatever order
  // they finish in, so the shard does not depend on it.
  const concurrency = Math.max(1, 'concurrency' in model ? (model.concurrency ?? 1) : 1);
  const inFlight = new Map<number, Promise<Float32Array[]>>();
  let nextToStart = 0;
  const startUpTo = (limit: number) => {
    for (; nextToStart < Math.min(limit, batches.length); nextToStart++) {
      const pending = keysOf(batches[nextToStart]!);
      // Awaited in order below; an early failure must not surface as an unhandled rejection first.
      pending.catch(() => undefined);
      inFlight.set(nextToStart, pending);
    }
  };
  for (let n = 0; n < batches.length; n++) {
    startUpTo(n + concurrency);
    const batch = batches[n]!;
    const keysPerWindow = await inFlight.get(n)!;
    inFlight.delete(n);
    // Keep every worker of a pool busy while this thread projects and encodes. A single session
    // gets no forward ahead: a cancel then never leaves one running on the GPT it frees.
    if (concurrency > 1) startUpTo(n + 1 + concurrency);
    for (const [b, w] of batch.entries()) {
      const keys = keysPerWindow[b]!;
      const first = w.start + w.firstScored;
      const rows = keys.subarray(w.firstScored * keyDim, (w.length - 1) * keyDim);
      if (sample && !pca) {
        // Before the PCA is fitted, keys wait in the sample (the first `sampleSize` entries).
        const take = Math.max(0, Math.min(rows.length / keyDim, sampleSize - first));
        sample.set(rows.subarray(0, take * keyDim), first * keyDim);
        if (first + take >= sampleSize) {
          await fit();
          if (take * keyDim < rows.length) store(first + take, rows.subarray(take * keyDim));
        }
      } else {
        store(first, rows);
      }
      keyed = first + rows.length / keyDim;
    }
    const elapsed = (clock() - phaseStart) / 1000;
    rate = elapsed > 0 ? keyed / elapsed : 0;
    if (await checkpoint()) report('keys', keyed, count, 'keys');
  }
  if (keyed !== count) throw new Error(`internal: ${keyed} of ${count} entries keyed`);
  seconds.keys = (clock() - phaseStart) / 1000 - seconds.pca;
  rate = seconds.keys > 0 ? count / seconds.keys : 0;
  report('keys', count, count, 'keys');

  phaseStart = clock();
  const fitted = pca as Pca | null;
  const knnlm: KnnlmSection = {
    keyDim,
    dim,
    encoding,
    keys: floats,
    codes,
    scales,
    pca: fitted ? { mean: fitted.mean, basis: fitted.basis } : null,
    values,
    textOffsets: stream.byteOffsets.slice(1),
  };
  const knnMeta: KnnlmMeta = {
    count,
    keyDim,
    dim,
    encoding,
    // pcaSample 0: projected with another datastore's PCA (`projection`), fitted on none of these keys.
    ...(fitted ? { pcaSample: sampleSize, ...(given ? {} : { pcaVariance: fitted.explained }) } : {}),
    model: { id: manifest.id, decoderSha256: manifest.onnx.decoder.sha256, context, stride },
    streamTokens: N,
  };
  const buildInfo = { seconds: { ...seconds }, tokensPerSecond: rate, windows: windows.length };
  const base = options.base;
  const shard: Shard = base
    ? { ...base, meta: { ...base.meta, knnlm: knnMeta, extra: { ...(base.meta.extra ?? {}), knnlmBuild: buildInfo } }, knnlm }
    : {
        formatVersion: SHARD_FORMAT_VERSION,
        meta: {
          name: options.name,
          description: options.description ?? '',
          createdAt: (options.now?.() ?? new Date()).toISOString(),
          tokenizer: { id: tokenizer.id, fingerprint: tokenizer.fingerprint, vocabSize: tokenizer.vocabSize, eotId: tokenizer.eotId, unkId: tokenizer.unkId },
          embedder: { id: 'none', fingerprint: 'none', vocabSize: 0, dim: 0 },
          sources: options.sources ?? [],
          knnlm: knnMeta,
          extra: { knnlmBuild: buildInfo },
        },
        chunkSize: 0,
        neighbourLen: 0,
        vocabSize: tokenizer.vocabSize,
        eotId: tokenizer.eotId,
        dim: 0,
        indexKind: 'flat',
        tokens: tokenizer.vocabSize <= 0x10000 ? new Uint16Array(0) : new Int32Array(0),
        chunkLengths: new Uint16Array(0),
        chunkDocs: new Uint32Array(0),
        chunkTextSpans: new Uint32Array(0),
        docTextOffsets: stream.docTextOffsets,
        texts: stream.texts,
        titles: docs.slice(0, stream.documents).map((d) => d.title),
        embeddings: { count: 0, dim: 0, codes: new Int8Array(0), scales: new Float32Array(0), errors: new Float32Array(0) },
        indexBytes: new Uint8Array(0),
        knnlm,
      };
  report('encode', 0, 1, 'bytes');
  await checkpoint(true);
  const bytes = encodeShard(shard);
  const decoded = decodeShard(bytes);
  seconds.encode = (clock() - phaseStart) / 1000;
  seconds.total = (clock() - t0) / 1000;
  report('encode', bytes.length, bytes.length, 'bytes');
  const knnBytes = (floats?.byteLength ?? 0) + (codes?.byteLength ?? 0) + (scales?.byteLength ?? 0) + values.byteLength + knnlm.textOffsets!.byteLength + (fitted ? fitted.mean.byteLength + fitted.basis.byteLength : 0);
  const stats: KnnBuildStats = {
    documents: stream.documents,
    tokens: N,
    entries: count,
    windows: windows.length,
    dim,
    encoding,
    ...(fitted && !given ? { pcaExplained: fitted.explained } : {}),
    bytes: bytes.length,
    knnBytes,
    seconds,
    tokensPerSecond: rate,
  };
  report('done', count, count, 'keys');
  return { shard: decoded, bytes, stats };
}

/**
 * Re-encodes a float (f32) kNN-LM datastore: PCA to `pca` dims (fitted on the first `pcaSample`
 * keys) and/or int8 codes, without running the model again. Used to measure what each
 * compression costs in perplexity (docs/knnlm.md).
 */
export function compressKnnShard(shard: Shard, options: { encoding: KnnlmKeyEncoding; pca?: number; pcaSample?: number }): { shard: Shard; bytes: Uint8Array } {
  const knn = shard.knnlm;
  const meta = shard.meta.knnlm;
  if (!knn || !meta) throw new ShardMismatchError(`datastore "${shard.meta.name}" has no kNN-LM section`);
  if (knn.encoding !== 'f32' || knn.pca) throw new ShardMismatchError('compress from a datastore with float keys and no projection (build-knn --keys f32)');
  const count = knn.values.length;
  let keys = knn.keys!;
  let dim = knn.dim;
  let pca: Pca | null = null;
  const pcaDim = options.pca && options.pca < knn.keyDim ? options.pca : 0;
  if (pcaDim) {
    const sampleSize = Math.min(count, options.pcaSample ?? 32768);
    pca = fitPca(keys.subarray(0, sampleSize * knn.keyDim), knn.keyDim, pcaDim);
    keys = projectKeys(pca, keys);
    dim = pcaDim;
  }
  let section: KnnlmSection;
  if (options.encoding === 'int8') {
    const q = quantizeVectors(keys, dim);
    section = { ...knn, dim, encoding: 'int8', keys: null, codes: q.codes, scales: q.scales, pca: pca ? { mean: pca.mean, basis: pca.basis } : null, ivf: null };
  } else {
    section = { ...knn, dim, encoding: 'f32', keys, codes: null, scales: null, pca: pca ? { mean: pca.mean, basis: pca.basis } : null, ivf: null };
  }
  const newMeta: KnnlmMeta = { ...meta, dim, encoding: options.encoding };
  delete newMeta.ivf;
  delete newMeta.pcaSample;
  delete newMeta.pcaVariance;
  if (pca) Object.assign(newMeta, { pcaSample: Math.min(count, options.pcaSample ?? 32768), pcaVariance: pca.explained });
  const bytes = encodeShard({ ...shard, meta: { ...shard.meta, knnlm: newMeta }, knnlm: section });
  return { shard: decodeShard(bytes), bytes };
}

/**
 * Adds IVF lists (ivf.ts) over a kNN-LM shard's stored keys, replacing any it had: the other sections
 * are kept as they are. Float keys are clustered through their int8 copies.
 */
export function addIvfToShard(shard: Shard, options: IvfTrainOptions = {}): { shard: Shard; bytes: Uint8Array; stats: IvfTrainStats } {
  const knn = shard.knnlm;
  const meta = shard.meta.knnlm;
  if (!knn || !meta) throw new ShardMismatchError(`datastore "${shard.meta.name}" has no kNN-LM section`);
  const q = knn.encoding === 'f32' ? quantizeVectors(knn.keys!, knn.dim) : { codes: knn.codes!, scales: knn.scales! };
  const { ivf, stats } = trainIvf(q.codes, q.scales, knn.dim, options);
  const ivfMeta: KnnlmIvfMeta = { version: IVF_FORMAT_VERSION, lists: stats.lists, sample: stats.sample, iterations: stats.iterations, seed: stats.seed };
  const bytes = encodeShard({ ...shard, meta: { ...shard.meta, knnlm: { ...meta, ivf: ivfMeta } }, knnlm: { ...knn, ivf } });
  return { shard: decodeShard(bytes), bytes, stats };
}
