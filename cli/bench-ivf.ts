/**
 * Exact kNN-LM search against the IVF index on a datastore with IVF lists (npm run datastore --
 * build-ivf): recall@k and recall@8 against the exact search, and latency, with every index run on
 * the same query one after the other (interleaved, in rotating order) so a noisy machine slows all
 * of them alike. Prints JSON.
 *
 *   npm run bench:ivf -- <file.rlds> [--k 1024] [--queries 300] [--nprobe 8,16,32,64,128] [--rerank 2048] [--seed 7]
 *        [--model public/models/gpt-wt2 --split-file ../shared/data/wikitext-2/wiki.test.tokens]
 *
 * Queries are stored keys (dequantized), each searched with k + 1 and itself left out of both
 * results: a query key is in the datastore's distribution without being its own nearest neighbour.
 * With --model and --split-file they are held-out keys instead: the GPT's knn_key at positions of
 * windows spread over that text (the second half of each window, every 4th position), projected
 * like the datastore's keys.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { decodeShard } from '../src/core/datastore/shard';
import { IvfIndex, type IvfSearchOptions } from '../src/core/knnlm/ivf';
import { KnnIndex } from '../src/core/knnlm/search';
import type { KnnSearchResult } from '../src/core/knnlm/types';
import { projectKeys } from '../src/core/knnlm/pca';
import { concatenateArticles, tokenizeWikiTextArticles } from '../src/core/eval/stream';
import { GptModel } from '../src/core/models';
import { Runtime } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { loadTokenizer } from '../src/core/tokenizer';
import type { KnnlmSection } from '../src/protocol/shard';
import { keysMatchDecoder } from '../src/protocol/manifest';

const { values, positionals } = parseArgs({
  options: {
    k: { type: 'string', default: '1024' },
    queries: { type: 'string', default: '300' },
    nprobe: { type: 'string', default: '8,16,32,64,128' },
    rerank: { type: 'string' },
    seed: { type: 'string', default: '7' },
    warmup: { type: 'string', default: '5' },
    model: { type: 'string' },
    'split-file': { type: 'string' },
  },
  allowPositionals: true,
});
const file = positionals[0];
if (!file) {
  console.error('usage: npm run bench:ivf -- <file.rlds> [--k 1024] [--queries 300] [--nprobe 8,16,32,64,128] [--rerank 2048] [--seed 7]');
  process.exit(2);
}
const k = Number(values.k);
const queryCount = Number(values.queries);
const warmup = Number(values.warmup);

const t0 = performance.now();
const shard = decodeShard(new Uint8Array(readFileSync(file)));
const knn = shard.knnlm;
if (!knn?.ivf || knn.encoding !== 'int8') throw new Error(`${file} has no int8 kNN-LM keys with IVF lists: npm run datastore -- build-ivf`);
const { codes, scales, dim } = knn as { codes: Int8Array; scales: Float32Array; dim: number };
const n = scales.length;
const t1 = performance.now();
const exact = KnnIndex.fromCodes(codes, scales, dim);
const t2 = performance.now();
const ivf = IvfIndex.fromCodes(codes, scales, dim, knn.ivf);
const t3 = performance.now();

/** The GPT's knn_key at positions of windows spread over a held-out text, projected into the datastore's key space. */
async function heldOutQueries(modelDir: string, splitPath: string, count: number, section: KnnlmSection, decoderSha256: string): Promise<Float32Array[]> {
  const runtime = await Runtime.create({ prefer: 'wasm', wasmThreads: 1 });
  const files = nodeModelFiles(modelDir);
  const gpt = await GptModel.load(runtime, files);
  if (!keysMatchDecoder(gpt.manifest.onnx.decoder, decoderSha256)) throw new Error(`${modelDir} is not the GPT whose keys ${file} holds`);
  const tokenizer = loadTokenizer(JSON.parse(await files.text(gpt.manifest.tokenizer.file)) as unknown, { id: gpt.manifest.tokenizer.id });
  const stream = concatenateArticles(tokenizeWikiTextArticles(tokenizer, readFileSync(splitPath, 'utf8')), tokenizer.vocabSize);
  const context = gpt.manifest.hyperparameters.context;
  const keyDim = gpt.manifest.hyperparameters.d_model;
  const perWindow = Math.floor(context / 2 / 4);
  const windows = Math.ceil(count / perWindow);
  const out: Float32Array[] = [];
  for (let w = 0; w < windows && out.length < count; w++) {
    const start = Math.floor((w * (stream.length - context)) / windows);
    const step = await gpt.start(Array.from(stream.slice(start, start + context)), { allLogits: true });
    const keys = step.knnKeys!;
    for (let t = context / 2; t < context && out.length < count; t += 4) {
      const raw = keys.slice(t * keyDim, (t + 1) * keyDim);
      out.push(section.pca ? projectKeys({ keyDim, dim: section.dim, ...section.pca }, raw) : raw);
    }
  }
  await gpt.dispose();
  return out;
}

let seed = Number(values.seed) >>> 0;
const uniform = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const heldOut = values.model && values['split-file'];
const queries = heldOut
  ? (await heldOutQueries(values.model!, values['split-file']!, queryCount, knn, shard.meta.knnlm!.model.decoderSha256)).map((key) => ({ id: -1, key }))
  : Array.from({ length: queryCount }, () => {
      const id = Math.floor(uniform() * n);
      return { id, key: Float32Array.from({ length: dim }, (_, j) => Math.fround(scales[id]! * codes[id * dim + j]!)) };
    });

interface Variant {
  name: string;
  options: IvfSearchOptions | null;
  wall: number[];
  found: number;
  found8: number;
  scanned: number;
  candidates: number;
}
const variants: Variant[] = [{ name: 'exact', options: null, wall: [], found: 0, found8: 0, scanned: 0, candidates: 0 }];
for (const p of values.nprobe.split(',').map(Number)) {
  variants.push({ name: `ivf nprobe=${p}`, options: { nprobe: p }, wall: [], found: 0, found8: 0, scanned: 0, candidates: 0 });
  if (values.rerank) variants.push({ name: `ivf nprobe=${p} rerank=${values.rerank}`, options: { nprobe: p, rerank: Number(values.rerank) }, wall: [], found: 0, found8: 0, scanned: 0, candidates: 0 });
}

/** The top k without the query's own entry. */
const withoutSelf = (r: KnnSearchResult, self: number): number[] => Array.from(r.ids).filter((id) => id !== self).slice(0, k);

for (const [t, q] of queries.entries()) {
  const results = new Map<Variant, number[]>();
  for (let r = 0; r < variants.length; r++) {
    const v = variants[(t + r) % variants.length]!;
    const w0 = performance.now();
    const res = v.options ? ivf.search(q.key, k + 1, v.options) : exact.search(q.key, k + 1);
    const ms = performance.now() - w0;
    if (t >= warmup) v.wall.push(ms);
    v.scanned += v.options ? ivf.lastScanned : n;
    v.candidates += v.options ? ivf.lastCandidates : exact.lastCandidates;
    results.set(v, withoutSelf(res, q.id));
  }
  const want = results.get(variants[0]!)!;
  const wantSet = new Set(want);
  const want8 = new Set(want.slice(0, 8));
  for (const v of variants) {
    const got = results.get(v)!;
    for (const id of got) if (wantSet.has(id)) v.found++;
    for (const id of got.slice(0, 8)) if (want8.has(id)) v.found8++;
  }
}

const at = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
};
const round = (x: number, d = 3) => Number(x.toFixed(d));
console.log(
  JSON.stringify(
    {
      file,
      entries: n,
      dim,
      lists: ivf.lists,
      k,
      queries: queryCount,
      timed_queries: Math.max(0, queryCount - warmup),
      query_source: heldOut ? `held-out keys: ${values.model} over ${values['split-file']}` : 'stored keys (dequantized), each left out of its own results',
      machine: { nproc: cpus().length, cpu: cpus()[0]?.model, node: process.version },
      decode_s: round((t1 - t0) / 1000, 2),
      exact_open_s: round((t2 - t1) / 1000, 2),
      ivf_open_s: round((t3 - t2) / 1000, 2),
      memory_mb: { exact: round(exact.memoryBytes / 1048576, 1), ivf: round(ivf.memoryBytes / 1048576, 1) },
      results: variants.map((v) => ({
        index: v.name,
        median_ms: round(at(v.wall, 0.5)),
        p95_ms: round(at(v.wall, 0.95)),
        [`recall@${k}`]: round(v.found / (queryCount * k), 4),
        'recall@8': round(v.found8 / (queryCount * 8), 4),
        mean_scanned: Math.round(v.scanned / queryCount),
        mean_candidates: Math.round(v.candidates / queryCount),
      })),
    },
    null,
    2,
  ),
);
