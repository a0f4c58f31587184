/**
 * `npm run bench:bm25`: what BM25 costs on the built-in WikiText-2 train datastore: building the index
 * over its chunks (CPU, wall, heap), then In-Context RALM's queries (the last 32 tokens of WikiText-2
 * valid at 100 places, decoded) searched for the top 4. One JSON line each (docs/bm25.md).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeShard } from '../src/core/datastore/shard';
import { dataDir, loadModelFiles } from '../src/core/datastore/node';
import { Bm25Index } from '../src/core/retrieval/bm25';
const shard = decodeShard(new Uint8Array(readFileSync('public/datastores/wikitext-2-train.rlds')));
const dec = new TextDecoder();
const text = (i: number) => dec.decode(shard.texts.subarray(shard.chunkTextSpans[3 * i]!, shard.chunkTextSpans[3 * i + 1]!));
const heap0 = process.memoryUsage().heapUsed;
let c0 = process.cpuUsage(); let t0 = performance.now();
const index = Bm25Index.build(shard.chunkLengths.length, text);
let c = process.cpuUsage(c0);
console.log(JSON.stringify({ chunks: index.count, build_wall_ms: performance.now() - t0, build_cpu_ms: (c.user + c.system) / 1000, heap_mb: (process.memoryUsage().heapUsed - heap0) / 1e6 }));
const { tokenizer } = loadModelFiles({});
const ids = tokenizer.encode(readFileSync(join(dataDir(), 'wikitext-2', 'wiki.valid.tokens'), 'utf8').slice(0, 200_000));
const queries = Array.from({ length: 100 }, (_, i) => tokenizer.decode(ids.slice(200 + i * 97, 232 + i * 97)));
c0 = process.cpuUsage(); t0 = performance.now();
for (const q of queries) index.search(q, 4);
c = process.cpuUsage(c0);
console.log(JSON.stringify({ queries: queries.length, tokens: 32, wall_ms_per_query: (performance.now() - t0) / queries.length, cpu_ms_per_query: (c.user + c.system) / 1000 / queries.length }));
