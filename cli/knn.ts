/**
 * Node side of the kNN-LM datastore commands (`npm run datastore -- build-knn | compress-knn`):
 * reading inputs and the GPT, progress on stderr, atomic writes. The work is src/core/knnlm.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { BackendPreference } from '../src/protocol/model';
import type { KnnlmKeyEncoding } from '../src/protocol/shard';
import { decodeShard } from '../src/core/datastore/shard';
import type { InputFormat } from '../src/core/datastore/parse';
import { addIvfToShard, buildKnnShard, compressKnnShard, type KeyModel, type KnnBuildStats } from '../src/core/knnlm/build';
import type { IvfTrainStats } from '../src/core/knnlm/ivf';
import { projectKeys } from '../src/core/knnlm/pca';
import { KnnIndex, bruteForceKnn, dequantize } from '../src/core/knnlm/search';
import { quantizeVectors } from '../src/core/retrieval/flat';
import { GptModel } from '../src/core/models/gpt';
import { Runtime } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { progressLines, readInputDocuments, readTokenizer, writeAtomically } from './datastore-node';
import { startEngines } from './engines-node';
import type { KeyPool } from './key-pool';
import { tsWorker } from './ts-worker';

export interface BuildKnnFileOptions {
  /** GPT model directory (manifest.json, tokenizer.json, decoder.int8.onnx) */
  model: string;
  inputs: string[];
  format?: InputFormat;
  /** attach to this chunk datastore (.rlds) instead of inputs */
  base?: string;
  name?: string;
  description?: string;
  out: string;
  maxTokens?: number;
  pca?: number;
  pcaSample?: number;
  encoding: KnnlmKeyEncoding;
  stride?: number;
  threads?: number;
  /** Key with this pool of worker threads (cli/key-pool.ts, the same model) instead of one session of `threads`; the caller disposes it. */
  pool?: KeyPool;
  /** --backend (cli/backend.ts); default cpu */
  backend?: BackendPreference;
  log?: (line: string) => void;
}

/** The key model: the caller's pool of key workers (cli/key-pool.ts), or one GPT session of `threads`. */
async function keyModel(modelDir: string, options: BuildKnnFileOptions): Promise<{ model: KeyModel | KeyPool; backend: string; dispose: () => Promise<void> }> {
  if (options.pool) return { model: options.pool, backend: `cpu, ${options.pool.concurrency} workers of 1 thread`, dispose: async () => undefined };
  const gpt = await GptModel.load(await Runtime.create({ prefer: options.backend ?? 'cpu', wasmThreads: options.threads ?? 1 }), nodeModelFiles(modelDir));
  return { model: gpt, backend: gpt.info.backend.backend, dispose: () => gpt.dispose() };
}

export async function buildKnnFile(options: BuildKnnFileOptions): Promise<KnnBuildStats & { out: string }> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const modelDir = resolve(options.model);
  const { model: gpt, backend, dispose } = await keyModel(modelDir, options);
  if (gpt.manifest.architecture !== 'gpt') throw new Error(`${modelDir} is a ${gpt.manifest.architecture} model: kNN-LM keys come from a GPT`);
  const tokenizerPath = join(modelDir, gpt.manifest.tokenizer.file);
  if (!existsSync(tokenizerPath)) throw new Error(`${tokenizerPath} does not exist`);
  const tokenizer = readTokenizer(tokenizerPath, gpt.manifest.tokenizer.id);
  log(`model ${gpt.manifest.id} (${backend}), tokenizer ${tokenizer.id}, keys ${gpt.manifest.hyperparameters.d_model}-d -> ${options.pca ? `PCA ${options.pca}` : 'no PCA'}, ${options.encoding}`);

  const base = options.base ? decodeShard(new Uint8Array(readFileSync(options.base))) : undefined;
  if (base) log(`${options.base}: attaching to datastore "${base.meta.name}" (${base.titles.length} documents, ${base.chunkLengths.length} chunks)`);
  const { documents, sources } = readInputDocuments(options.inputs, options.format, log);
  let lastPhase = '';
  let lastLine = 0;
  const started = Date.now();
  const { bytes, stats } = await buildKnnShard(documents, {
    name: options.name ?? base?.meta.name ?? basename(options.out).replace(/\.rlds$/, ''),
    description: options.description ?? `kNN-LM datastore of ${gpt.manifest.id} keys`,
    tokenizer,
    model: gpt,
    encoding: options.encoding,
    ...(options.pca ? { pca: options.pca } : {}),
    ...(options.pcaSample ? { pcaSample: options.pcaSample } : {}),
    ...(options.stride ? { stride: options.stride } : {}),
    ...(options.maxTokens ? { maxTokens: options.maxTokens } : {}),
    ...(base ? { base } : {}),
    sources,
    yieldEveryMs: 1000,
    onProgress: (p) => {
      const now = Date.now();
      if (p.phase !== lastPhase || now - lastLine > 10_000) {
        const eta = p.phase === 'keys' && p.tokensPerSecond > 0 ? `, ${Math.round(p.tokensPerSecond)} tokens/s, ~${((p.total - p.done) / p.tokensPerSecond / 60).toFixed(1)} min left` : '';
        log(`  ${p.phase.padEnd(8)} ${p.done.toLocaleString('en')}/${p.total.toLocaleString('en')} ${p.unit}${eta} (${((now - started) / 1000).toFixed(0)} s)`);
        lastPhase = p.phase;
        lastLine = now;
      }
    },
  });
  writeAtomically(options.out, bytes);
  await dispose();
  return { ...stats, out: options.out };
}

/**
 * Adds kNN-LM keys to a chunk datastore file with the app's engines, as the app's "Also build kNN-LM
 * keys" does (PCA 64 when the text has enough tokens, int8): the file is imported into an in-memory
 * catalogue, keyed by the engine's GPT, exported and written atomically to `out`.
 */
export async function attachKnnKeysToFile(options: { base: string; out: string; threads?: number; backend?: BackendPreference; pool?: KeyPool; log?: (line: string) => void }): Promise<{ out: string; entries: number; dim: number; bytes: number; seconds: number }> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const t0 = performance.now();
  const engines = await startEngines({ builtIns: false, threads: options.threads ?? 1, backend: options.backend ?? 'cpu', ...(options.pool ? { keyModel: options.pool } : {}) });
  try {
    const { imported } = await engines.retrieval.importFile(new File([readFileSync(options.base)], basename(options.base)));
    log(`${options.base}: datastore "${imported.name}" (${imported.documents} documents, ${imported.chunks} chunks); keying with ${engines.ready.models.find((m) => m.key === 'gpt')?.id ?? 'the GPT'}`);
    const { updated } = await engines.retrieval.addKnnKeys(imported.id, progressLines(log, 10_000));
    const bytes = new Uint8Array(await (await engines.retrieval.exportFile(updated.id)).arrayBuffer());
    writeAtomically(options.out, bytes);
    return { out: options.out, entries: updated.knnlm!.entries, dim: updated.knnlm!.dim, bytes: bytes.length, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await engines.dispose();
  }
}

export interface CompressKnnFileOptions {
  input: string;
  out: string;
  encoding: KnnlmKeyEncoding;
  pca?: number;
  pcaSample?: number;
}

/** Re-encodes a float kNN-LM datastore (PCA and/or int8) without running the model. */
export function compressKnnFile(options: CompressKnnFileOptions): { out: string; bytes: number; knnBytes: number; dim: number; encoding: KnnlmKeyEncoding; pcaVariance?: number; seconds: number } {
  const t0 = performance.now();
  const shard = decodeShard(new Uint8Array(readFileSync(options.input)));
  const { shard: out, bytes } = compressKnnShard(shard, { encoding: options.encoding, ...(options.pca ? { pca: options.pca } : {}), ...(options.pcaSample ? { pcaSample: options.pcaSample } : {}) });
  writeAtomically(options.out, bytes);
  const k = out.knnlm!;
  const knnBytes = (k.keys?.byteLength ?? 0) + (k.codes?.byteLength ?? 0) + (k.scales?.byteLength ?? 0) + k.values.byteLength + (k.textOffsets?.byteLength ?? 0) + (k.pca ? k.pca.mean.byteLength + k.pca.basis.byteLength : 0);
  return {
    out: options.out,
    bytes: bytes.length,
    knnBytes,
    dim: k.dim,
    encoding: k.encoding,
    ...(out.meta.knnlm?.pcaVariance !== undefined ? { pcaVariance: out.meta.knnlm.pcaVariance } : {}),
    seconds: (performance.now() - t0) / 1000,
  };
}

export interface BuildIvfFileOptions {
  input: string;
  out: string;
  lists?: number;
  sample?: number;
  iterations?: number;
  seed?: number;
  log?: (line: string) => void;
}

/** Adds IVF lists over a kNN-LM datastore's keys (src/core/knnlm/ivf.ts) and writes the file atomically. */
export function buildIvfFile(options: BuildIvfFileOptions): { out: string; bytes: number; ivfBytes: number; entries: number; totalSeconds: number } & IvfTrainStats {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const t0 = performance.now();
  const shard = decodeShard(new Uint8Array(readFileSync(options.input)));
  if (!shard.knnlm) throw new Error(`${options.input} has no kNN-LM section`);
  log(`${options.input}: ${shard.knnlm.values.length.toLocaleString('en')} entries of ${shard.knnlm.dim} dims (${shard.knnlm.encoding})`);
  let lastLine = 0;
  const { shard: out, bytes, stats } = addIvfToShard(shard, {
    ...(options.lists ? { lists: options.lists } : {}),
    ...(options.sample ? { sample: options.sample } : {}),
    ...(options.iterations !== undefined ? { iterations: options.iterations } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    onProgress: (phase, done, total) => {
      const now = performance.now();
      if (done === total || now - lastLine > 10_000) {
        log(`  ${phase.padEnd(7)} ${done.toLocaleString('en')}/${total.toLocaleString('en')} (${((now - t0) / 1000).toFixed(0)} s)`);
        lastLine = now;
      }
    },
  });
  writeAtomically(options.out, bytes);
  const ivf = out.knnlm!.ivf!;
  return { out: options.out, bytes: bytes.length, ivfBytes: ivf.centroids.byteLength + ivf.offsets.byteLength + ivf.ids.byteLength, entries: out.knnlm!.values.length, ...stats, totalSeconds: (performance.now() - t0) / 1000 };
}

/**
 * buildIvfFile on a worker thread, so the main thread can key another datastore meanwhile (the IVF
 * training is one thread; `npm run setup:knn` overlaps it with the SQuAD keys). Log lines get `prefix`.
 */
export function buildIvfFileInWorker(options: Omit<BuildIvfFileOptions, 'log'>, prefix = ''): Promise<ReturnType<typeof buildIvfFile>> {
  const worker = tsWorker(new URL('./ivf-worker.ts', import.meta.url), { options, prefix });
  return new Promise((resolveStats, reject) => {
    worker.once('message', (stats: ReturnType<typeof buildIvfFile>) => resolveStats(stats));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the IVF worker exited (code ${code}) before it finished`)));
  }).finally(() => void worker.terminate()) as Promise<ReturnType<typeof buildIvfFile>>;
}

export interface BenchKnnOptions {
  input: string;
  /** tile the keys (with a little noise) up to this many entries */
  size?: number;
  k: number;
  queries: number;
  /** a float, unprojected kNN-LM datastore whose keys are the queries (held-out contexts) */
  queriesFrom?: string;
  /** queries checked against brute force */
  check: number;
  /**
   * A float, unprojected datastore of the same entries (what this one was compressed from): report
   * the recall of this datastore's top k against exact search over the uncompressed keys.
   */
  reference?: string;
  simd?: boolean;
}

/**
 * Search latency (wall and CPU time per query) and exactness against brute force, at the
 * datastore's size or tiled up to `size` keys (latency depends on the count and dimension, not on
 * which keys they are). CPU time is reported because the machines this ran on were often shared.
 */
export function benchKnn(options: BenchKnnOptions): Record<string, unknown> {
  const shard = decodeShard(new Uint8Array(readFileSync(options.input)));
  const knn = shard.knnlm;
  if (!knn) throw new Error(`${options.input} has no kNN-LM section`);
  const dim = knn.dim;
  const base = knn.keys ?? dequantize(knn.codes!, knn.scales!, dim);
  const n0 = knn.values.length;
  const n = Math.max(n0, options.size ?? n0);
  let seed = 12345;
  const uniform = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return (seed + 0.5) / 2 ** 32;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  // Per-dimension spread, to scale the tiling noise and the synthetic queries.
  const std = new Float64Array(dim);
  for (let i = 0; i < n0; i++) for (let j = 0; j < dim; j++) std[j]! += base[i * dim + j]! ** 2;
  for (let j = 0; j < dim; j++) std[j] = Math.sqrt(std[j]! / n0);
  let keys = base;
  if (n > n0) {
    keys = new Float32Array(n * dim);
    keys.set(base);
    for (let i = n0; i < n; i++) {
      const src = i % n0;
      for (let j = 0; j < dim; j++) keys[i * dim + j] = base[src * dim + j]! + 0.05 * std[j]! * gauss();
    }
  }
  const t0 = performance.now();
  const simd = options.simd === undefined ? {} : { simd: options.simd };
  let index: KnnIndex;
  if (knn.encoding === 'f32') {
    index = KnnIndex.fromFloats(keys, dim, simd);
  } else {
    const q = quantizeVectors(keys, dim);
    index = KnnIndex.fromCodes(q.codes, q.scales, dim, simd);
    keys = dequantize(q.codes, q.scales, dim);
  }
  const openMs = performance.now() - t0;
  let queryKeys: Float32Array[];
  let rawQueries: Float32Array[] | null = null;
  if (options.queriesFrom) {
    const qs = decodeShard(new Uint8Array(readFileSync(options.queriesFrom))).knnlm;
    if (!qs || qs.encoding !== 'f32' || qs.pca) throw new Error(`${options.queriesFrom}: queries come from a float, unprojected kNN-LM datastore`);
    const project = (raw: Float32Array) => (knn.pca ? projectKeys({ keyDim: knn.keyDim, dim, ...knn.pca }, raw) : raw.slice());
    const count = qs.values.length;
    rawQueries = Array.from({ length: options.queries }, () => {
      const i = Math.floor(uniform() * count);
      return qs.keys!.slice(i * qs.keyDim, (i + 1) * qs.keyDim);
    });
    queryKeys = rawQueries.map(project);
  } else {
    queryKeys = Array.from({ length: options.queries }, () => {
      const i = Math.floor(uniform() * n);
      return Float32Array.from({ length: dim }, (_, j) => keys[i * dim + j]! + 0.3 * std[j]! * gauss());
    });
  }
  const wall: number[] = [];
  const cpu: number[] = [];
  const parts = { scan: 0, select: 0, rerank: 0 };
  let candidates = 0;
  for (const [t, q] of queryKeys.entries()) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    index.search(q, options.k);
    wall.push(performance.now() - w0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    if (t >= 5) {
      parts.scan += index.lastTimings.scan;
      parts.select += index.lastTimings.select;
      parts.rerank += index.lastTimings.rerank;
    }
    candidates += index.lastCandidates;
  }
  // The first queries warm the JIT up: leave them out of the timings.
  const timed = (xs: number[]) => xs.slice(5).sort((a, b) => a - b);
  const w = timed(wall);
  const c = timed(cpu);
  const at = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;
  let identical = 0;
  for (const q of queryKeys.slice(0, options.check)) {
    const got = index.search(q, options.k);
    const want = bruteForceKnn(keys, dim, q, options.k);
    if (got.ids.every((id, i) => id === want.ids[i])) identical++;
  }
  let compressionRecall: number | undefined;
  if (options.reference) {
    const ref = decodeShard(new Uint8Array(readFileSync(options.reference))).knnlm;
    if (!ref || ref.encoding !== 'f32' || ref.pca || ref.values.length !== n0 || n !== n0) throw new Error('--reference needs a float, unprojected datastore of the same entries, and no --size');
    if (!rawQueries) throw new Error('--reference needs --queries-from (model keys to project into both spaces)');
    const exact = KnnIndex.fromFloats(ref.keys!, ref.keyDim);
    let found = 0;
    for (const [t, raw] of rawQueries.entries()) {
      const want = new Set(exact.search(raw, options.k).ids);
      for (const id of index.search(queryKeys[t]!, options.k).ids) if (want.has(id)) found++;
    }
    compressionRecall = found / (rawQueries.length * Math.min(options.k, n0));
  }
  const m = Math.max(1, w.length);
  return {
    file: options.input,
    entries: n,
    tiled: n > n0,
    dim,
    encoding: knn.encoding,
    backend: index.backend,
    k: options.k,
    queries: queryKeys.length,
    query_source: options.queriesFrom ? `held-out keys of ${options.queriesFrom}` : 'stored keys + noise',
    open_ms: openMs,
    wall_ms: { median: at(w, 0.5), p95: at(w, 0.95) },
    cpu_ms: { median: at(c, 0.5), p95: at(c, 0.95) },
    mean_ms: { scan: parts.scan / m, select: parts.select / m, rerank: parts.rerank / m },
    mean_candidates: candidates / queryKeys.length,
    identical_to_brute_force: `${identical}/${Math.min(options.check, queryKeys.length)}`,
    ...(compressionRecall !== undefined ? { recall_vs_uncompressed: compressionRecall } : {}),
    memory_mb: index.memoryBytes / 1048576,
  };
}
