/**
 * Memory of a stored kNN-LM datastore in Node: each scenario in a fresh process, its peak RSS
 * (getrusage ru_maxrss, the whole process's high-water mark) and the RSS the process had before
 * opening the datastore (after its imports), both as multiples of the file's size. One JSON object
 * per scenario on stdout, a table on stderr.
 *
 *   npm run bench:knn-memory [-- --datastore public/datastores/wikitext-2-train.knn-pca64.rlds
 *                               --searches 20 --read file|bytes --src DIR --verify]
 *
 * Scenarios: `open` (open only), `ivf` (open, then `searches` IVF searches, the app's default),
 * `exact` (open, then `searches` exact searches). `--read file` streams the shard section by section
 * (KnnDatastore.load over the file, as the CLIs now open it); `--read bytes` reads the whole file and
 * opens its bytes (KnnDatastore.open: the browser's path, whose bytes come from IndexedDB). `--src`
 * imports KnnDatastore from another checkout's src/ (e.g. `git archive` of an older commit), for a
 * before/after table; an older src/ has no `load`, so use `--read bytes` with it.
 *
 * `--verify` instead checks, on the real keys, that the exact search over the list-ordered keys
 * gives the entry-order scan's ids and distances (KnnIndex over the decoded codes), for `searches`
 * queries at k = 1024 and a prefix: the proof that the built-in datastore's exact results did not change.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    datastore: { type: 'string', default: 'public/datastores/wikitext-2-train.knn-pca64.rlds' },
    searches: { type: 'string', default: '20' },
    read: { type: 'string', default: 'file' },
    src: { type: 'string' },
    scenario: { type: 'string' },
    verify: { type: 'boolean', default: false },
  },
});

const file = resolve(args.datastore!);
const searches = Number(args.searches);
const MB = 1e6;

/** Queries in the model's key space: the PCA mean plus Gaussian noise, seeded (the same in every run). */
function queries(keyDim: number, mean: Float32Array | null, count: number): Float32Array[] {
  let s = 12345;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return Array.from({ length: count }, () => Float32Array.from({ length: keyDim }, (_, j) => (mean?.[j] ?? 0) + gauss()));
}

interface Result {
  scenario: string;
  read: string;
  src: string;
  fileBytes: number;
  rssBeforeOpen: number;
  rssAfter: number;
  peakRss: number;
  peakRatio: number;
  addedPeakRatio: number;
  openMs: number;
  searchMs: number;
}

async function child(scenario: string): Promise<void> {
  const src = args.src ? resolve(args.src) : resolve(fileURLToPath(import.meta.url), '../../src');
  const { KnnDatastore } = (await import(`${src}/core/knnlm/datastore.ts`)) as typeof import('../src/core/knnlm/datastore');
  const { fileShardSource } = await import('../src/core/datastore/node');
  const fileBytes = statSync(file).size;
  const rssBeforeOpen = process.memoryUsage().rss;
  const t0 = performance.now();
  let datastore: import('../src/core/knnlm/datastore').KnnDatastore;
  if (args.read === 'file') {
    const source = fileShardSource(file);
    try {
      datastore = await KnnDatastore.load(source, { index: 'ivf' });
    } finally {
      source.close();
    }
  } else {
    datastore = KnnDatastore.open(new Uint8Array(readFileSync(file)), { index: 'ivf' });
  }
  const openMs = performance.now() - t0;
  const t1 = performance.now();
  if (scenario !== 'open') {
    for (const q of queries(datastore.section.keyDim, datastore.section.pca?.mean ?? null, searches)) {
      datastore.search(q, 1024, { index: scenario === 'exact' ? 'exact' : 'ivf' });
    }
  }
  const searchMs = performance.now() - t1;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const result: Result = {
    scenario,
    read: args.read!,
    src: args.src ?? 'this checkout',
    fileBytes,
    rssBeforeOpen,
    rssAfter: process.memoryUsage().rss,
    peakRss,
    peakRatio: peakRss / fileBytes,
    addedPeakRatio: (peakRss - rssBeforeOpen) / fileBytes,
    openMs,
    searchMs,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function verify(): Promise<void> {
  const { KnnDatastore } = await import('../src/core/knnlm/datastore');
  const { KnnIndex } = await import('../src/core/knnlm/search');
  const { decodeShard } = await import('../src/core/datastore/shard');
  const { fileShardSource } = await import('../src/core/datastore/node');
  const knn = decodeShard(new Uint8Array(readFileSync(file))).knnlm!;
  const entryOrder = KnnIndex.fromCodes(knn.codes!, knn.scales!, knn.dim);
  const source = fileShardSource(file);
  const datastore = await KnnDatastore.load(source, { index: 'ivf' }).finally(() => source.close());
  let same = 0;
  let total = 0;
  for (const q of queries(knn.keyDim, knn.pca?.mean ?? null, searches)) {
    const projected = datastore.project(q).slice();
    for (const limit of [datastore.size, datastore.prefixLimit(0.3)]) {
      const want = entryOrder.search(projected, 1024, limit);
      const got = datastore.index.search(projected, 1024, limit);
      total++;
      if (Array.from(got.ids).join() === Array.from(want.ids).join() && Array.from(got.distances).join() === Array.from(want.distances).join()) same++;
    }
  }
  process.stdout.write(`${JSON.stringify({ verify: 'exact search, list-ordered vs entry-order keys', queries: total, identical: same })}\n`);
  if (same !== total) process.exitCode = 1;
}

if (args.verify) await verify();
else if (args.scenario) await child(args.scenario);
else {
  const rows: Result[] = [];
  for (const scenario of ['open', 'ivf', 'exact']) {
    const passOn = ['--datastore', file, '--searches', String(searches), '--read', args.read!, ...(args.src ? ['--src', args.src] : []), '--scenario', scenario];
    const run = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...passOn], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (run.status !== 0) throw new Error(`scenario ${scenario} failed (exit ${run.status})`);
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!) as Result;
    rows.push(result);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  const fmt = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;
  process.stderr.write(`${file}: ${fmt(rows[0]!.fileBytes)}, read: ${args.read}, src: ${args.src ?? 'this checkout'}\n`);
  process.stderr.write('scenario | RSS before open | peak RSS | peak / file | (peak - before) / file | open s\n');
  for (const r of rows) {
    process.stderr.write(`${r.scenario} | ${fmt(r.rssBeforeOpen)} | ${fmt(r.peakRss)} | ${r.peakRatio.toFixed(2)} | ${r.addedPeakRatio.toFixed(2)} | ${(r.openMs / 1000).toFixed(1)}\n`);
  }
}
