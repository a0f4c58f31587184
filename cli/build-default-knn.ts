/**
 * `npm run setup:knn`: builds the app's default kNN-LM datastore, WikiText-2 train keyed by the
 * shipped GPT (PCA 64, int8; ~210 MB, ~8 min on 2 cores with onnxruntime-node), into
 * public/datastores/wikitext-2-train.knn-pca64.rlds and lists it in public/datastores/index.json
 * with a `knnlm` field, so the app copies it into the browser only when kNN-LM (or RETRO) first needs
 * it. Then attaches keys to the built-in SQuAD paragraphs datastore (ATTACH_TO), so the shipped
 * RETRO, which retrieves through kNN-LM keys, can read it too.
 *
 *   npm run setup:knn [-- --force] [--model <gpt dir>] [--threads <n>] [--workers <n>] [--out-dir <dir>] [--max-tokens <n>]
 *
 * The keys run on one onnxruntime-node session of `--threads` threads (default: one per core, at
 * most 8); `--workers N` runs N worker threads of one onnxruntime-node thread each instead
 * (cli/key-pool.ts). On this project's 2-core VM the one session is ~4% faster with the shipped
 * GPT's fused attention, and the pool was 1.3× faster with the graph before it (docs/benchmarks.md,
 * "Set-up"): the pool is for machines where one session's threads scale worse.
 *
 * Skipped when the file exists and was built from the same sources by the same decoder (sha256 in
 * the shard) with the same key encoding; --force rebuilds. --out-dir and --max-tokens are for trying
 * the command on a small build without touching public/datastores.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { keysMatchDecoder, type ModelManifest } from '../src/protocol/manifest';
import type { DefaultDatastoreEntry, DefaultDatastoreIndex } from '../src/protocol/shard';
import type { ShardHeader } from '../src/core/datastore/shard';
import { parseDocuments } from '../src/core/datastore/parse';
import { dataDir, defaultDatastoreEntry, REPO_ROOT } from './datastore-node';
import { readShardHeaderOfFile } from '../src/core/datastore/node';
import { startKeyPool, type KeyPool } from './key-pool';
import { attachKnnKeysToFile, buildIvfFile, buildIvfFileInWorker, buildKnnFile } from './knn';

const ID = 'wikitext-2-train-knnlm';
/** The chunk datastore of the same articles (npm run setup:datastores). */
const BASE_ID = 'wikitext-2-train';
const NAME = 'WikiText-2 train (kNN-LM keys)';
const DESCRIPTION =
  'Every token of the 629 WikiText-2 train articles (CC BY-SA 3.0, Merity et al. 2016) with the GPT’s knn_key before it: ' +
  '2.63M entries, keys PCA-projected to 64 dims and stored as int8 (docs/knnlm.md).';
const FILE = 'wikitext-2-train.knn-pca64.rlds';
const INPUT = 'wikitext-2/wiki.train.tokens';
const PCA_DIMS = 64;
const ENCODING = 'int8';

const { values } = parseArgs({
  options: {
    force: { type: 'boolean', default: false },
    model: { type: 'string' },
    threads: { type: 'string' },
    workers: { type: 'string' },
    'out-dir': { type: 'string' },
    'max-tokens': { type: 'string' },
  },
});

/** The GPT of public/models/index.json (the model whose keys the app's kNN-LM column reads). */
function gptDir(): string {
  if (values.model) return resolve(values.model);
  const models = join(REPO_ROOT, 'public', 'models');
  const index = JSON.parse(readFileSync(join(models, 'index.json'), 'utf8')) as { models: string[] };
  for (const id of index.models) {
    const manifest = JSON.parse(readFileSync(join(models, id, 'manifest.json'), 'utf8')) as ModelManifest;
    if (manifest.architecture === 'gpt') return join(models, id);
  }
  throw new Error(`no GPT in ${join(models, 'index.json')}`);
}

/** Why an existing file must be rebuilt, or null when it is what this command would build. */
function staleness(header: ShardHeader, manifest: ModelManifest, input: string, documents: number): string | null {
  const knn = header.meta.knnlm;
  if (!knn) return 'it has no kNN-LM sections';
  if (!keysMatchDecoder(manifest.onnx.decoder, knn.model.decoderSha256)) return `it was keyed by decoder ${knn.model.decoderSha256.slice(0, 12)}…, the model is ${manifest.onnx.decoder.sha256.slice(0, 12)}…`;
  if (knn.dim !== PCA_DIMS || knn.encoding !== ENCODING) return `its keys are ${knn.dim}-d ${knn.encoding}, not ${PCA_DIMS}-d ${ENCODING}`;
  const sources = header.meta.sources.map((s) => `${s.name}:${s.bytes}`).join(',');
  if (sources !== `${basename(input)}:${statSync(input).size}`) return `it was built from ${sources || 'other sources'}`;
  // A build cut with --max-tokens lists the same source but fewer documents.
  if (header.documentCount !== documents) return `it holds ${header.documentCount} of the ${documents} documents (a partial build)`;
  return null;
}

/** Keys per IVF list: the built-in datastore's 2.63M keys make 2,048 lists (docs/benchmarks.md). */
const KEYS_PER_LIST = 1286;

/**
 * Adds IVF lists to a kNN-LM shard that has none (the engines search them by default; the exact
 * scan stays a choice): ~1 min for the built-in keys on this VM, one thread. A shard with lists is
 * left alone. `inWorker` trains them on a worker thread so the caller can key another datastore meanwhile.
 */
async function ensureIvf(path: string, name: string, inWorker = false): Promise<void> {
  const knn = (await readShardHeaderOfFile(path)).meta.knnlm;
  if (!knn) return;
  if (knn.ivf && !values.force) {
    console.error(`${name}: IVF lists up to date (${knn.ivf.lists})`);
    return;
  }
  const entries = knn.count;
  const lists = Math.min(2048, Math.max(8, Math.round(entries / KEYS_PER_LIST)));
  console.error(`${name}: building ${lists} IVF lists over ${entries.toLocaleString('en')} keys`);
  const stats = inWorker
    ? await buildIvfFileInWorker({ input: path, out: path, lists }, `${name}: `)
    : buildIvfFile({ input: path, out: path, lists, log: (line) => console.error(`${name}: ${line}`) });
  console.error(`${name}: ${stats.lists} IVF lists (${stats.minList}..${stats.maxList} keys) in ${stats.totalSeconds.toFixed(0)} s, +${(stats.ivfBytes / 1048576).toFixed(1)} MB`);
}

/**
 * Built-in chunk datastores that get kNN-LM keys attached (same file, `build-knn --base`): the
 * shipped RETRO retrieves only through a datastore's kNN-LM keys (token-aligned neighbours), and
 * the SQuAD paragraphs are the facts the classroom demo retrieves. About 5 min on one core.
 */
const ATTACH_TO = ['squad-v2-paragraphs'];

/** Attaches keys to a built-in chunk datastore unless it has this GPT's; its updated index entry, or null. */
async function attachKeys(entry: DefaultDatastoreEntry | undefined, outDir: string, manifest: ModelManifest, threads: number, keyPool: () => Promise<KeyPool | null>): Promise<DefaultDatastoreEntry | null> {
  if (!entry) return null;
  const path = join(outDir, entry.file);
  if (!existsSync(path)) {
    console.error(`${entry.name}: ${path} is missing (npm run setup:datastores builds it): no kNN-LM keys attached`);
    return null;
  }
  const knn = (await readShardHeaderOfFile(path)).meta.knnlm;
  const fresh = knn && keysMatchDecoder(manifest.onnx.decoder, knn.model.decoderSha256) && knn.dim === PCA_DIMS && knn.encoding === ENCODING;
  if (fresh && !values.force) {
    console.error(`${entry.name}: its kNN-LM keys are up to date`);
  } else {
    console.error(`${entry.name}: attaching kNN-LM keys to ${path}`);
    // As the app adds keys to a datastore (its engines: PCA 64, int8, the shipped GPT).
    const pool = await keyPool();
    const stats = await attachKnnKeysToFile({ base: path, out: path, threads, ...(pool ? { pool } : {}) });
    console.error(`${entry.name}: ${stats.entries.toLocaleString('en')} entries keyed in ${stats.seconds.toFixed(0)} s`);
  }
  await ensureIvf(path, entry.name);
  // Same datastore, new size: the app's copy-in progress bar reads `bytes`.
  return { ...entry, ...defaultDatastoreEntry(path, { id: entry.id, name: entry.name, description: entry.description, file: entry.file }) };
}

async function main(): Promise<void> {
  const input = join(dataDir(), INPUT);
  if (!existsSync(input)) throw new Error(`missing corpus file: ${input} (set RETROLAB_DATA to the shared data folder)`);
  const modelDir = gptDir();
  const manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as ModelManifest;
  const outDir = values['out-dir'] ? resolve(values['out-dir']) : join(REPO_ROOT, 'public', 'datastores');
  const out = join(outDir, FILE);
  const threads = values.threads ? Number(values.threads) : Math.min(availableParallelism(), 8);
  const workers = values.workers ? Number(values.workers) : 1;
  // Started when something needs keys; without onnxruntime-node the builds fall back to one session.
  const pools: { started: Promise<KeyPool | null> | null } = { started: null };
  const keyPool = () =>
    (pools.started ??= workers > 1
      ? startKeyPool(modelDir, workers).then(async (pool) => {
          if (pool.backend.backend === 'cpu') return pool;
          console.error(`key workers: onnxruntime-node did not load (${pool.backend.reason ?? 'no reason given'}); one session instead`);
          await pool.dispose();
          return null;
        })
      : Promise.resolve(null));
  const maxTokens = values['max-tokens'] ? Number(values['max-tokens']) : undefined;
  mkdirSync(outDir, { recursive: true });

  let reason: string | null = 'it does not exist';
  if (existsSync(out) && !values.force) {
    try {
      const documents = parseDocuments(new Uint8Array(readFileSync(input)), basename(input), 'wikitext').length;
      reason = staleness(await readShardHeaderOfFile(out), manifest, input, documents);
    } catch (error) {
      reason = `it cannot be read (${(error as Error).message})`;
    }
  } else if (values.force) {
    reason = '--force';
  }
  if (reason === null) {
    console.error(`${NAME}: ${out} is up to date (--force rebuilds)`);
  } else {
    console.error(`${NAME}: building ${out} (${reason}) with ${workers > 1 ? `${workers} key workers` : `${threads} thread(s)`}; ~8 min for all of WikiText-2 train on 2 cores (onnxruntime-node)`);
    const pool = await keyPool();
    const stats = await buildKnnFile({
      model: modelDir,
      inputs: [input],
      format: 'wikitext',
      name: NAME,
      description: DESCRIPTION,
      out,
      pca: PCA_DIMS,
      encoding: ENCODING,
      threads,
      ...(pool ? { pool } : {}),
      ...(maxTokens ? { maxTokens } : {}),
    });
    console.error(
      `${NAME}: ${stats.entries.toLocaleString('en')} entries, ${(stats.bytes / 1048576).toFixed(1)} MB in ${stats.seconds.total.toFixed(0)} s ` +
        `(${Math.round(stats.tokensPerSecond).toLocaleString('en')} tokens/s keyed)`,
    );
  }

  // Its IVF lists train on one thread while the SQuAD paragraphs are keyed beside it.
  // Its failure is reported below, once the keys beside it are done.
  const lists = ensureIvf(out, NAME, true).then(() => null, (error: unknown) => error);
  // The chunk datastores' entries (npm run setup:datastores) stay; this one replaces its old self.
  const indexPath = join(outDir, 'index.json');
  const index: DefaultDatastoreIndex = existsSync(indexPath)
    ? (JSON.parse(readFileSync(indexPath, 'utf8')) as DefaultDatastoreIndex)
    : { format_version: 1, datastores: [] };
  let attachFailure: unknown = null;
  try {
    if (!maxTokens) {
      for (const id of ATTACH_TO) {
        const updated = await attachKeys(index.datastores.find((e) => e.id === id), outDir, manifest, threads, keyPool);
        if (updated) index.datastores = index.datastores.map((e) => (e.id === id ? updated : e));
      }
    }
  } catch (error) {
    attachFailure = error;
  }
  // The workers go whatever failed; the first failure is the one reported.
  const listsFailure = await lists;
  await (await pools.started?.catch(() => null))?.dispose();
  if (attachFailure) throw attachFailure;
  if (listsFailure) throw listsFailure;
  const entry = { ...defaultDatastoreEntry(out, { id: ID, name: NAME, description: DESCRIPTION, file: FILE }), base_id: BASE_ID };
  if (!entry.knnlm) throw new Error(`${out} has no kNN-LM sections`);
  index.datastores = [...index.datastores.filter((e) => e.id !== ID), entry];
  writeFileSync(`${indexPath}.tmp`, JSON.stringify(index, null, 2) + '\n');
  renameSync(`${indexPath}.tmp`, indexPath);
  console.log(JSON.stringify(entry));
}

main().catch((e: Error) => {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
});
