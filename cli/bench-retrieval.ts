/**
 * Retrieval benchmarks, one JSON object per line on stdout (progress on stderr):
 *
 *   nice -n 19 npm run bench:retrieval [-- --sizes 10000,100000,1000000 --queries 200
 *        --backends flat,flat-js,voy --builds full,slice --slice-bytes 2000000]
 *
 * Lines, each tagged by `bench`:
 * - `machine`: cores, CPU, RAM, Node, load average, the niceness this ran at.
 * - `vector-index`: per backend and size: build time, peak RSS, index bytes, query latency
 *   (median and p95) at k = 2, 10, 256, recall@10 against brute force. Data: clustered synthetic
 *   unit vectors of dim 256 (Gaussian clusters around random unit centres, like real chunk
 *   embeddings, which crowd around topics rather than fill the sphere).
 * - `datastore-build`: the real builder (src/core/datastore/builder.ts) over WikiText-2 train with
 *   the shipped tokenizer and embedder: chunks/s overall and per phase, peak RSS.
 * - `datastore-query`: the flat index over the real WikiText-2 train embeddings, queried with
 *   WikiText-2 valid chunks (real queries): latency, recall@10, and Datastore.retrieve (what RETRO
 *   calls per chunk: embed + search + neighbour texts).
 *
 * Every case runs in its own child process, so `rssPeakMB` (the OS's max RSS) belongs to that
 * case alone, and a case that crashes, panics in WASM or runs out of memory becomes a
 * `status: "crashed"` line instead of ending the run. Failures inside a case (voy's size limit,
 * its serialize past V8's string limit) are reported the same way: as data.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, freemem, getPriority, loadavg, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
// The benchmark reaches past VoyIndex only to measure voy above VOY_MAX_VECTORS, where the
// adapter (rightly) refuses to build: the point is to show what happens there.
// eslint-disable-next-line no-restricted-imports -- measures voy beyond the adapter on purpose (above)
import * as voyGlue from 'voy-search/voy_search_bg.js';
import { buildShard } from '../src/core/datastore/builder';
import { Datastore } from '../src/core/datastore/datastore';
import { parseDocuments } from '../src/core/datastore/parse';
import { chunkDocuments } from '../src/core/retrieval/chunker';
import { FlatIndex } from '../src/core/retrieval/flat';
import { ArrayVectorSource, exactSearch, type VectorIndex } from '../src/core/retrieval/vector-index';
import { VOY_MAX_VECTORS, VoyIndex, initVoy } from '../src/core/retrieval/voy';
import { DEFAULT_MODEL_DIR, dataDir, loadModelFiles } from './datastore-node';

const DIM = 256;
const KS = [2, 10, 256] as const;
const SELF = fileURLToPath(import.meta.url);

type Json = Record<string, unknown>;
const emit = (line: Json) => process.stdout.write(JSON.stringify(line) + '\n');
const log = (message: string) => process.stderr.write(`[bench-retrieval] ${message}\n`);
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
const errorOf = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));
/** Peak resident set of this process so far (the kernel's high-water mark). */
const peakRssMB = () => mb(process.resourceUsage().maxRSS * 1024);

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000,1000000' },
    backends: { type: 'string', default: 'flat,flat-js,voy' },
    queries: { type: 'string', default: '200' },
    /** brute-force reference queries for recall@10 (each is a full float scan in JS) */
    'recall-queries': { type: 'string', default: '50' },
    /** stop a (case, k) latency loop after this many seconds and report how many queries ran */
    'budget-s': { type: 'string', default: '40' },
    clusters: { type: 'string', default: '1000' },
    /** norm of the Gaussian offset from a cluster centre, relative to the unit centre */
    spread: { type: 'string', default: '0.35' },
    /** largest size voy is tried at by calling voy-search directly (past the adapter's limit) */
    'voy-direct-max': { type: 'string', default: '100000' },
    builds: { type: 'string', default: 'full,slice' },
    'slice-bytes': { type: 'string', default: '2000000' },
    train: { type: 'string' },
    valid: { type: 'string' },
    model: { type: 'string', default: DEFAULT_MODEL_DIR },
    'case-timeout-s': { type: 'string', default: '420' },
    // internal: run one case in this process
    child: { type: 'string' },
    backend: { type: 'string' },
    n: { type: 'string' },
    index: { type: 'string' },
    bytes: { type: 'string' },
  },
});

const num = (name: keyof typeof args): number => {
  const v = Number(args[name]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a non-negative number, got ${String(args[name])}`);
  return v;
};

// ---------------------------------------------------------------------------------------------
// Synthetic data

/** mulberry32: small, seedable, fast enough for 256M draws. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = 1 - rand();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * rand();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

function normalizeRow(v: Float32Array, o: number, dim: number): void {
  let s = 0;
  for (let j = 0; j < dim; j++) s += v[o + j]! * v[o + j]!;
  const inv = 1 / Math.sqrt(s);
  for (let j = 0; j < dim; j++) v[o + j] = v[o + j]! * inv;
}

/**
 * `count` unit vectors around `centres`, written row by row straight into the output: at 1M x 256
 * that is 1 GiB, so no intermediate copies. The same seed gives the same vectors.
 */
function clusteredVectors(count: number, centres: Float32Array, spread: number, seed: number): Float32Array {
  const clusters = centres.length / DIM;
  const rand = rng(seed);
  const normal = gaussian(rand);
  const sigma = spread / Math.sqrt(DIM);
  const out = new Float32Array(count * DIM);
  for (let i = 0; i < count; i++) {
    const c = Math.floor(rand() * clusters) * DIM;
    const o = i * DIM;
    for (let j = 0; j < DIM; j++) out[o + j] = centres[c + j]! + sigma * normal();
    normalizeRow(out, o, DIM);
  }
  return out;
}

function unitCentres(clusters: number, seed: number): Float32Array {
  const normal = gaussian(rng(seed));
  const out = new Float32Array(clusters * DIM);
  for (let i = 0; i < out.length; i++) out[i] = normal();
  for (let c = 0; c < clusters; c++) normalizeRow(out, c * DIM, DIM);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Latency {
  k: number;
  queries: number;
  medianMs: number;
  p95Ms: number;
  meanMs: number;
  /** flat only: vectors re-ranked with exact floats per query, mean */
  meanCandidates?: number;
  /** set when the time budget cut the loop short */
  budgetHit?: boolean;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

/** Times `search` over the queries for one k, after a few warm-up calls. */
function timeQueries(search: (q: Float32Array, k: number) => unknown, queries: Float32Array[], k: number, budgetMs: number, candidates?: () => number): Latency {
  for (let i = 0; i < Math.min(3, queries.length); i++) search(queries[i]!, k);
  const times: number[] = [];
  let cand = 0;
  const start = performance.now();
  let budgetHit = false;
  for (const q of queries) {
    const t = performance.now();
    search(q, k);
    times.push(performance.now() - t);
    if (candidates) cand += candidates();
    if (performance.now() - start > budgetMs && times.length < queries.length) {
      budgetHit = true;
      break;
    }
  }
  const sorted = times.slice().sort((a, b) => a - b);
  const line: Latency = {
    k,
    queries: times.length,
    medianMs: round(percentile(sorted, 0.5)),
    p95Ms: round(percentile(sorted, 0.95)),
    meanMs: round(times.reduce((a, b) => a + b, 0) / times.length),
  };
  if (candidates) line.meanCandidates = Math.round(cand / times.length);
  if (budgetHit) line.budgetHit = true;
  return line;
}

interface Recall {
  recallAt10: number;
  recallQueries: number;
  /** mean cosine distance of the true nearest and 10th nearest, to compare data sets */
  meanTop1Distance: number;
  meanTop10Distance: number;
  bruteForceMsPerQuery: number;
}

/** The brute-force top 10 of the first `count` queries (exactSearch: the tests' reference). */
function bruteForce(source: ArrayVectorSource, queries: Float32Array[], count: number): { truth: Int32Array[]; stats: Omit<Recall, 'recallAt10'> } {
  const truth: Int32Array[] = [];
  let d1 = 0;
  let d10 = 0;
  const t = performance.now();
  for (const q of queries.slice(0, count)) {
    const r = exactSearch(source, q, 10);
    truth.push(r.ids);
    d1 += r.distances[0]!;
    d10 += r.distances[r.distances.length - 1]!;
  }
  const n = truth.length;
  return {
    truth,
    stats: { recallQueries: n, meanTop1Distance: round(d1 / n, 4), meanTop10Distance: round(d10 / n, 4), bruteForceMsPerQuery: Math.round((performance.now() - t) / n) },
  };
}

function recallAt10(search: (q: Float32Array, k: number) => Int32Array, queries: Float32Array[], truth: Int32Array[]): number {
  let hit = 0;
  let total = 0;
  truth.forEach((want, i) => {
    const got = new Set(search(queries[i]!, 10));
    for (const id of want) if (got.has(id)) hit++;
    total += want.length;
  });
  return round(hit / total, 4);
}

async function loadVoy(): Promise<void> {
  const require = createRequire(import.meta.url);
  await initVoy(readFileSync(require.resolve('voy-search/voy_search_bg.wasm')));
}

// ---------------------------------------------------------------------------------------------
// Child: one vector-index case

async function indexCase(backend: string, n: number): Promise<void> {
  const queryCount = num('queries');
  const recallCount = Math.min(num('recall-queries'), queryCount);
  const budgetMs = num('budget-s') * 1000;
  const clusters = num('clusters');
  const spread = num('spread');
  const base: Json = { bench: 'vector-index', backend, n, dim: DIM, data: { kind: 'clustered', clusters, spread } };

  if (backend === 'voy' && n > VOY_MAX_VECTORS) {
    // The adapter refuses on the count alone, before it reads a vector: no need to make 1 GiB of them.
    await loadVoy();
    const countOnly = { count: n, dim: DIM, vector: () => { throw new Error('not read'); } };
    try {
      VoyIndex.build(countOnly).dispose();
      emit({ ...base, status: 'error', error: `the adapter accepted ${n} vectors over its limit ${VOY_MAX_VECTORS}` });
    } catch (e) {
      emit({ ...base, status: 'refused', error: errorOf(e), limit: VOY_MAX_VECTORS });
    }
    return;
  }

  let t = performance.now();
  const centres = unitCentres(clusters, 7);
  const vectors = clusteredVectors(n, centres, spread, 1000 + n);
  const queries: Float32Array[] = [];
  const qv = clusteredVectors(queryCount, centres, spread, 99);
  for (let i = 0; i < queryCount; i++) queries.push(qv.subarray(i * DIM, (i + 1) * DIM));
  const source = new ArrayVectorSource(vectors, DIM);
  const generateMs = Math.round(performance.now() - t);
  const rssBaselineMB = mb(process.memoryUsage().rss);
  const line: Json = { ...base, generateMs, rssBaselineMB };
  log(`${backend} ${n}: generated in ${generateMs} ms`);

  if (backend === 'flat' || backend === 'flat-js') {
    t = performance.now();
    const index = FlatIndex.build(vectors, DIM, source, { simd: backend === 'flat' });
    line.buildMs = Math.round(performance.now() - t);
    line.scan = index.backend;
    t = performance.now();
    line.indexBytes = index.serialize().length;
    line.serializeMs = Math.round(performance.now() - t);
    const search = (q: Float32Array, k: number) => index.search(q, k);
    line.latency = KS.map((k) => timeQueries(search, queries, k, budgetMs, () => index.lastCandidates));
    line.rssPeakMB = peakRssMB();
    log(`${backend} ${n}: queries done, brute force for recall`);
    const { truth, stats } = bruteForce(source, queries, recallCount);
    Object.assign(line, stats, { recallAt10: recallAt10((q, k) => index.search(q, k).ids, queries, truth) });
    emit({ ...line, status: 'ok' });
    return;
  }

  if (backend === 'voy') {
    // Through the adapter the app uses.
    await loadVoy();
    t = performance.now();
    const index = VoyIndex.build(source);
    line.buildMs = Math.round(performance.now() - t);
    line.rssAfterBuildMB = mb(process.memoryUsage().rss);
    const search = (q: Float32Array, k: number) => index.search(q, k);
    line.latency = KS.map((k) => timeQueries(search, queries, k, budgetMs));
    const { truth, stats } = bruteForce(source, queries, recallCount);
    Object.assign(line, stats, { recallAt10: recallAt10((q, k) => index.search(q, k).ids, queries, truth) });
    // What opening a stored voy datastore costs: its JSON back into a tree.
    try {
      t = performance.now();
      const bytes = index.serialize();
      line.serializeMs = Math.round(performance.now() - t);
      line.indexBytes = bytes.length;
      t = performance.now();
      VoyIndex.deserialize(bytes, source).dispose();
      line.deserializeMs = Math.round(performance.now() - t);
    } catch (e) {
      line.serializeError = errorOf(e);
    }
    line.rssPeakMB = peakRssMB();
    index.dispose();
    emit({ ...line, status: 'ok' });
    return;
  }

  if (backend === 'voy-direct') {
    // voy-search itself, without the adapter's size check: what a bigger voy index would cost.
    await loadVoy();
    const steps: Json = {};
    const v = new Float32Array(DIM);
    let voy: voyGlue.Voy;
    t = performance.now();
    try {
      const embeddings: voyGlue.EmbeddedResource[] = [];
      for (let i = 0; i < n; i++) {
        source.vector(i, v);
        embeddings.push({ id: String(i), title: '', url: '', embeddings: Array.from(v) });
      }
      voy = new voyGlue.Voy({ embeddings });
    } catch (e) {
      emit({ ...line, status: 'failed', failedAt: 'build', error: errorOf(e), msUntilFailure: Math.round(performance.now() - t), rssPeakMB: peakRssMB() });
      return;
    }
    line.buildMs = Math.round(performance.now() - t);
    line.rssAfterBuildMB = mb(process.memoryUsage().rss);
    // voy returns ids only: time its own search, as the adapter's distance pass is not voy's cost.
    const search = (q: Float32Array, k: number) => voy.search(q, k).neighbors;
    try {
      line.latency = KS.map((k) => timeQueries(search, queries, k, budgetMs));
      const { truth, stats } = bruteForce(source, queries, recallCount);
      const ids = (q: Float32Array, k: number) => Int32Array.from(voy.search(q, k).neighbors, (h) => Number(h.id));
      Object.assign(line, stats, { recallAt10: recallAt10(ids, queries, truth) });
    } catch (e) {
      steps.searchError = errorOf(e);
    }
    line.rssPeakMB = peakRssMB();
    try {
      t = performance.now();
      const json = voy.serialize();
      line.serializeMs = Math.round(performance.now() - t);
      line.indexBytes = json.length;
    } catch (e) {
      steps.serializeError = errorOf(e);
      steps.serializeMs = Math.round(performance.now() - t);
    }
    line.rssPeakMB = peakRssMB();
    emit({ ...line, ...steps, status: Object.keys(steps).length ? 'partial' : 'ok' });
    return;
  }
  throw new Error(`unknown backend ${backend}`);
}

// ---------------------------------------------------------------------------------------------
// Child: datastore build over real text

function trainPath(): string {
  return args.train ?? join(dataDir(), 'wikitext-2', 'wiki.train.tokens');
}

/** The first `limit` bytes cut at a line end, so no UTF-8 character or WikiText line is split. */
function slice(bytes: Uint8Array, limit: number): Uint8Array {
  if (limit <= 0 || limit >= bytes.length) return bytes;
  let end = limit;
  while (end > 0 && bytes[end - 1] !== 0x0a) end--;
  return bytes.subarray(0, end);
}

async function buildCase(indexKind: 'flat' | 'voy', limit: number): Promise<void> {
  const path = trainPath();
  const model = loadModelFiles({ model: args.model });
  if (indexKind === 'voy') await loadVoy();
  const bytes = slice(new Uint8Array(readFileSync(path)), limit);
  const rssBaselineMB = mb(process.memoryUsage().rss);
  let t = performance.now();
  const documents = parseDocuments(bytes, basename(path), 'wikitext');
  const parseMs = Math.round(performance.now() - t);
  log(`build ${indexKind} ${bytes.length} bytes: ${documents.length} documents`);
  const base: Json = {
    bench: 'datastore-build',
    input: basename(path),
    inputBytes: bytes.length,
    documents: documents.length,
    index: indexKind,
    tokenizer: model.tokenizer.id,
    embedder: `${model.embedder.id} (${model.embedder.vocabSize}x${model.embedder.dim})`,
    chunkSize: model.chunkSize,
    neighbourLen: model.neighbourLen,
    parseMs,
  };
  t = performance.now();
  let result;
  try {
    result = await buildShard(documents, {
      name: 'bench',
      tokenizer: model.tokenizer,
      embedder: model.embedder,
      chunkSize: model.chunkSize,
      neighbourLen: model.neighbourLen,
      indexKind,
      // The CLI's setting: yields cost little, and the app's worker yields at 50 ms.
      yieldEveryMs: 1000,
    });
  } catch (e) {
    emit({ ...base, status: 'failed', error: errorOf(e), rssPeakMB: peakRssMB() });
    return;
  }
  const wallS = (performance.now() - t) / 1000;
  const { stats } = result;
  emit({
    ...base,
    status: 'ok',
    chunks: stats.chunks,
    tokens: stats.tokens,
    shardBytes: stats.bytes,
    wallS: round(wallS, 2),
    chunksPerSecond: Math.round(stats.chunksPerSecond),
    embedChunksPerSecond: Math.round(stats.embedChunksPerSecond),
    tokensPerSecond: Math.round(stats.tokens / stats.seconds.total),
    inputMBPerSecond: round(bytes.length / 1048576 / stats.seconds.total, 2),
    seconds: Object.fromEntries(Object.entries(stats.seconds).map(([k, v]) => [k, round(v, 2)])),
    rssBaselineMB,
    rssPeakMB: peakRssMB(),
  });
  if (indexKind === 'flat' && limit <= 0) await realQueries(result.shard, model);
}

/** The flat index over real chunk embeddings, queried with WikiText-2 valid chunks. */
async function realQueries(shard: Parameters<typeof Datastore.fromShard>[0], model: ReturnType<typeof loadModelFiles>): Promise<void> {
  const validPath = args.valid ?? join(dataDir(), 'wikitext-2', 'wiki.valid.tokens');
  if (!existsSync(validPath)) {
    emit({ bench: 'datastore-query', status: 'skipped', reason: `${validPath} not found` });
    return;
  }
  const queryCount = num('queries');
  const docs = parseDocuments(new Uint8Array(readFileSync(validPath)), basename(validPath), 'wikitext');
  const ids = docs.map((d) => model.tokenizer.encode(d.text));
  const chunked = chunkDocuments(ids, { chunkSize: model.chunkSize, neighbourLen: model.neighbourLen, eotId: model.tokenizer.eotId }, model.tokenizer.vocabSize);
  // Full chunks only, evenly spread over the valid set: what RETRO queries with mid-generation.
  const full: number[] = [];
  for (let r = 0; r < chunked.count; r++) if (chunked.lengths[r] === model.chunkSize) full.push(r);
  const picked = Array.from({ length: Math.min(queryCount, full.length) }, (_, i) => full[Math.floor((i * full.length) / Math.min(queryCount, full.length))]!);
  const queryTokens = picked.map((r) => Array.from(chunked.tokens.subarray(r * model.neighbourLen, r * model.neighbourLen + model.chunkSize)));
  const queries = queryTokens.map((q) => model.embedder.embed(q));

  let t = performance.now();
  const ds = Datastore.fromShard(shard, model.embedder);
  const openMs = Math.round(performance.now() - t);
  const index: VectorIndex = ds.index;
  const flat = index instanceof FlatIndex ? index : null;
  const budgetMs = num('budget-s') * 1000;
  const latency = KS.map((k) => timeQueries((q, kk) => index.search(q, kk), queries, k, budgetMs, flat ? () => flat.lastCandidates : undefined));
  let qi = 0;
  const retrieve = timeQueries(() => ds.retrieve(queryTokens[qi++ % queryTokens.length]!, 2), queries, 2, budgetMs);

  // Reference: every chunk's float vector once (what EmbeddedChunkSource recomputes per call).
  t = performance.now();
  const all = new Float32Array(ds.source.count * ds.source.dim);
  const v = new Float32Array(ds.source.dim);
  for (let i = 0; i < ds.source.count; i++) {
    ds.source.vector(i, v);
    all.set(v, i * ds.source.dim);
  }
  const embedAllMs = Math.round(performance.now() - t);
  const { truth, stats } = bruteForce(new ArrayVectorSource(all, ds.source.dim), queries, Math.min(num('recall-queries'), queries.length));
  emit({
    bench: 'datastore-query',
    status: 'ok',
    backend: index.kind,
    scan: flat?.backend,
    n: ds.chunkCount,
    dim: ds.source.dim,
    data: { kind: 'wikitext-2 train chunks', queries: `${queries.length} wikitext-2 valid chunks` },
    openMs,
    embedAllChunksMs: embedAllMs,
    latency,
    retrieveK2: { ...retrieve, k: 2 },
    ...stats,
    recallAt10: recallAt10((q, k) => index.search(q, k).ids, queries, truth),
  });
}

// ---------------------------------------------------------------------------------------------
// Parent: runs every case in a child and passes its lines through

interface Case {
  label: string;
  args: string[];
  tags: Json;
}
/** A case decided without running anything (skipped), kept in order with the others. */
type Step = Case | { line: Json };

function runChild(c: Case, timeoutS: number): Promise<void> {
  return new Promise((resolve) => {
    const t = performance.now();
    const child = spawn(process.execPath, [...process.execArgv, SELF, ...process.argv.slice(2), ...c.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let emitted = 0;
    let pending = '';
    let stderrTail = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      pending += s;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (text.trim()) {
          process.stdout.write(text + '\n');
          emitted++;
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      process.stderr.write(s);
      stderrTail = (stderrTail + s).slice(-600);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 || emitted === 0) {
        emit({
          ...c.tags,
          status: 'crashed',
          exitCode: code,
          signal,
          timedOut: signal === 'SIGKILL' && (performance.now() - t) / 1000 >= timeoutS - 1,
          wallS: round((performance.now() - t) / 1000, 1),
          stderrTail: stderrTail.trim().split('\n').slice(-4).join(' | '),
        });
      }
      resolve();
    });
  });
}

function machine(): Json {
  const cpu = cpus()[0]?.model ?? 'unknown';
  return {
    bench: 'machine',
    nproc: cpus().length,
    cpu,
    ramGB: round(totalmem() / 1073741824, 1),
    freeRamGB: round(freemem() / 1073741824, 1),
    node: process.version,
    loadavg1m: round(loadavg()[0]!, 2),
    nice: getPriority(),
    command: `npm run bench:retrieval -- ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
  };
}

async function parent(): Promise<void> {
  emit(machine());
  const sizes = args.sizes!.split(',').filter(Boolean).map(Number);
  const backends = args.backends!.split(',').filter(Boolean);
  const voyDirectMax = num('voy-direct-max');
  const timeoutS = num('case-timeout-s');
  const cases: Step[] = [];
  for (const n of sizes) {
    for (const backend of backends) {
      const tags = { bench: 'vector-index', backend, n, dim: DIM };
      if (backend === 'voy' && n > VOY_MAX_VECTORS) {
        // The adapter's refusal is a result too; voy itself is then tried directly.
        cases.push({ label: `voy ${n}`, args: ['--child', 'index', '--backend', 'voy', '--n', String(n)], tags });
        if (n <= voyDirectMax) {
          cases.push({ label: `voy-direct ${n}`, args: ['--child', 'index', '--backend', 'voy-direct', '--n', String(n)], tags: { ...tags, backend: 'voy-direct' } });
        } else {
          cases.push({
            line: {
              ...tags,
              backend: 'voy-direct',
              status: 'skipped',
              reason: `above --voy-direct-max ${voyDirectMax}: voy-search's build already fails at 100k x 256 here, and panicked ("capacity overflow") at 500k`,
            },
          });
        }
        continue;
      }
      cases.push({ label: `${backend} ${n}`, args: ['--child', 'index', '--backend', backend, '--n', String(n)], tags });
    }
  }
  const builds = args.builds!.split(',').filter(Boolean);
  const sliceBytes = num('slice-bytes');
  if (builds.length && !existsSync(trainPath())) {
    cases.push({ line: { bench: 'datastore-build', status: 'skipped', reason: `${trainPath()} not found (set RETROLAB_DATA or --train)` } });
  } else {
    const tags = { bench: 'datastore-build' };
    if (builds.includes('full')) cases.push({ label: 'build full flat', args: ['--child', 'build', '--index', 'flat', '--bytes', '0'], tags: { ...tags, index: 'flat', inputBytes: 'all' } });
    if (builds.includes('slice')) {
      for (const index of ['flat', 'voy']) {
        cases.push({ label: `build slice ${index}`, args: ['--child', 'build', '--index', index, '--bytes', String(sliceBytes)], tags: { ...tags, index, inputBytes: sliceBytes } });
      }
    }
  }
  for (const c of cases) {
    if ('line' in c) {
      emit(c.line);
      continue;
    }
    log(`case: ${c.label}`);
    await runChild(c, timeoutS);
  }
}

async function main(): Promise<void> {
  if (args.child === 'index') return indexCase(args.backend!, num('n'));
  if (args.child === 'build') return buildCase(args.index === 'voy' ? 'voy' : 'flat', num('bytes'));
  return parent();
}

main().catch((e: unknown) => {
  emit({ bench: 'error', status: 'crashed', error: errorOf(e) });
  process.exitCode = 1;
});
