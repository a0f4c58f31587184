/**
 * `npm run setup:datastores`: builds the app's default datastores from the shared corpora into
 * public/datastores/<id>.rlds and lists them in public/datastores/index.json (git-ignored: the
 * corpora are never committed, so every checkout builds these at set-up time).
 *
 *   npm run setup:datastores [-- --force]
 *
 * Each is built by the app's retrieval engine (cli/datastore-node.ts), with the shipped RETRO's
 * tokenizer, embedder and chunking, as a datastore dropped into the app is.
 *
 * Data: $RETROLAB_DATA, else ../shared/data. Each datastore is skipped when its file exists and was
 * built from the same sources with the same tokenizer, embedder and chunking (--force rebuilds).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { IndexKind } from '../src/protocol/retrieval';
import type { DefaultDatastoreEntry, DefaultDatastoreIndex } from '../src/protocol/shard';
import { readShardHeader } from '../src/core/datastore/shard';
import type { InputFormat } from '../src/core/datastore/parse';
import { buildDatastoreFile, dataDir, defaultDatastoreEntry, loadModelFiles, REPO_ROOT } from './datastore-node';

interface Definition {
  id: string;
  name: string;
  description: string;
  inputs: string[];
  format: InputFormat;
  index: IndexKind;
}

const DEFAULTS: Definition[] = [
  {
    id: 'wikitext-2-train',
    name: 'WikiText-2 train',
    description: 'The 629 Wikipedia articles of WikiText-2 train (CC BY-SA 3.0, Merity et al. 2016): the corpus the models were trained on.',
    inputs: ['wikitext-2/wiki.train.tokens'],
    format: 'wikitext',
    index: 'flat',
  },
  {
    id: 'squad-v2-paragraphs',
    name: 'SQuAD 2.0 paragraphs',
    description: '1,216 Wikipedia paragraphs from the SQuAD 2.0 dev set (CC BY-SA 4.0, Rajpurkar et al. 2018), facts the training corpus does not hold.',
    inputs: ['squad-v2/dev.passages.jsonl', 'squad-v2/test.passages.jsonl'],
    format: 'jsonl',
    index: 'flat',
  },
];

const OUT_DIR = join(REPO_ROOT, 'public', 'datastores');

const { values } = parseArgs({
  options: {
    force: { type: 'boolean', default: false },
  },
});

async function main(): Promise<void> {
  const data = dataDir();
  // What an up-to-date file was built with: the shipped RETRO's files, which the engine builds with.
  const model = loadModelFiles({});
  mkdirSync(OUT_DIR, { recursive: true });
  const entries: DefaultDatastoreEntry[] = [];

  for (const def of DEFAULTS) {
    const inputs = def.inputs.map((p) => join(data, p));
    const missing = inputs.filter((p) => !existsSync(p));
    if (missing.length) throw new Error(`missing corpus file(s): ${missing.join(', ')} (set RETROLAB_DATA to the shared data folder)`);
    const file = `${def.id}.rlds`;
    const out = join(OUT_DIR, file);

    let upToDate = false;
    if (existsSync(out) && !values.force) {
      try {
        const header = readShardHeader(new Uint8Array(readFileSync(out)));
        const sources = inputs.map((p) => `${basename(p)}:${statSync(p).size}`).join(',');
        upToDate =
          header.meta.embedder.fingerprint === model.embedder.fingerprint &&
          header.meta.tokenizer.fingerprint === model.tokenizer.fingerprint &&
          header.chunkSize === model.chunkSize &&
          header.neighbourLen === model.neighbourLen &&
          header.indexKind === def.index &&
          header.meta.name === def.name &&
          header.meta.sources.map((s) => `${s.name}:${s.bytes}`).join(',') === sources;
      } catch {
        upToDate = false; // unreadable or damaged: rebuild
      }
    }
    if (upToDate) {
      console.error(`${def.name}: ${out} is up to date (--force rebuilds)`);
    } else {
      console.error(`${def.name}: building ${out}`);
      const stats = await buildDatastoreFile({ inputs, format: def.format, name: def.name, description: def.description, index: def.index, out });
      console.error(
        `${def.name}: ${stats.documents.toLocaleString('en')} documents, ${stats.chunks.toLocaleString('en')} chunks, ` +
          `${(stats.bytes / 1048576).toFixed(1)} MB in ${stats.seconds.total.toFixed(1)} s: ${Math.round(stats.chunksPerSecond).toLocaleString('en')} chunks/s ` +
          `(embedding ${Math.round(stats.embedChunksPerSecond).toLocaleString('en')} chunks/s; tokenizing took ${stats.seconds.tokenize.toFixed(1)} s)`,
      );
    }
    entries.push(defaultDatastoreEntry(out, { id: def.id, name: def.name, description: def.description, file }));
  }

  copyLensSample(data);

  const indexPath = join(OUT_DIR, 'index.json');
  // The kNN-LM datastore's entry is npm run setup:knn's (cli/build-default-knn.ts): keep it while its file is there.
  const previous = existsSync(indexPath) ? (JSON.parse(readFileSync(indexPath, 'utf8')) as DefaultDatastoreIndex).datastores : [];
  const knnEntries = previous.filter((e) => e.knnlm && existsSync(join(OUT_DIR, e.file)));
  const index: DefaultDatastoreIndex = { format_version: 1, datastores: [...entries, ...knnEntries] };
  writeFileSync(`${indexPath}.tmp`, JSON.stringify(index, null, 2) + '\n');
  renameSync(`${indexPath}.tmp`, indexPath);
  console.log(JSON.stringify(index));
}

/**
 * The perplexity lens's default text (src/features/lens/): WikiText-2 test, served next to the
 * datastores so the app does not ship the corpus.
 */
function copyLensSample(data: string): void {
  const source = join(data, 'wikitext-2', 'wiki.test.tokens');
  if (!existsSync(source)) {
    console.error(`perplexity lens: ${source} is missing; the lens will offer pasted text and files only`);
    return;
  }
  const out = join(OUT_DIR, 'wikitext-2-test.tokens');
  if (existsSync(out) && statSync(out).size === statSync(source).size && !values.force) return;
  copyFileSync(source, `${out}.tmp`);
  renameSync(`${out}.tmp`, out);
  console.error(`perplexity lens: copied ${source} to ${out}`);
}

main().catch((e: Error) => {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
});
