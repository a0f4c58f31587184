/**
 * Datastore command line: build a shard from text files, inspect one, or query one.
 *
 *   npm run datastore -- build --input <file> [--input <file> ...] [--format wikitext|jsonl|txt|md]
 *        [--index flat|voy] [--knn-keys] --name <name> [--description <text>] --out <file.rlds>
 *   npm run datastore -- info <file.rlds>
 *   npm run datastore -- search <file.rlds> --text "<query>" [--k 4]
 *   npm run datastore -- build-knn --base <file.rlds> --out <file.rlds> [--threads T]
 *   npm run datastore -- build-knn --model public/models/gpt-wt2 --input <file> ... [--format wikitext]
 *        --out <file.rlds> [--max-tokens N] [--pca D] [--keys int8|f32] [--pca-sample N] [--name <name>] [--stride 128] [--threads T]
 *   npm run datastore -- compress-knn <float.rlds> --out <file.rlds> [--pca D] [--keys int8|f32]
 *   npm run datastore -- build-ivf <file.rlds> --out <file.rlds> [--lists 2048] [--sample 65536] [--iterations 10] [--seed 1]
 *   npm run datastore -- build-ivf <file.rlds> --out <file.rlds> [--lists <n>] [--sample <n>] [--iterations <n>] [--seed <n>]
  npm run datastore -- bench-knn <file.rlds> [--size 1000000] [--k 1024] [--queries 200] [--queries-from <float.rlds>] [--check 5] [--reference <float.rlds>]
 *
 * build, search and build-knn --base do what the app does, with the app's engines (cli/engines-node.ts)
 * and the shipped models of public/models: the same parsing, chunking, embedding, search and key
 * pass. build-knn --input makes a keys-only kNN-LM datastore (the built-in WikiText-2 one), which the
 * app never builds: it runs src/core/knnlm directly, with the key encoding and stride as options.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { INDEX_KINDS, type IndexKind } from '../src/protocol/retrieval';
import { decodeShard, readShardHeader, sectionSizes } from '../src/core/datastore/shard';
import { INPUT_FORMATS, type InputFormat } from '../src/core/datastore/parse';
import { buildDatastoreFile } from './datastore-node';
import { parseBackend } from './backend';
import { startRetrieval } from './engines-node';
import { attachKnnKeysToFile, benchKnn, buildIvfFile, buildKnnFile, compressKnnFile } from './knn';

const USAGE = `usage:
  npm run datastore -- build --input <file> [--input <file> ...] [--format wikitext|jsonl|txt|md]
       [--index flat|voy] [--knn-keys] --name <name> [--description <text>] --out <file.rlds>
  npm run datastore -- info <file.rlds>
  npm run datastore -- search <file.rlds> --text <query> [--k <n>]
  npm run datastore -- build-knn --base <file.rlds> --out <file.rlds> [--threads <n>]
  npm run datastore -- build-knn --model <gpt dir> --input <file> ... [--format wikitext|jsonl|txt|md]
       --out <file.rlds> [--max-tokens <n>] [--pca <dims>] [--keys int8|f32] [--pca-sample <n>] [--name <name>]
       [--description <text>] [--stride <n>] [--threads <n>] [--backend cpu|wasm]
  npm run datastore -- compress-knn <float.rlds> --out <file.rlds> [--pca <dims>] [--keys int8|f32] [--pca-sample <n>]
  npm run datastore -- bench-knn <file.rlds> [--size <n>] [--k <n>] [--queries <n>] [--queries-from <float.rlds>] [--check <n>] [--reference <float.rlds>] [--no-simd]`;

function fail(message: string): never {
  console.error(`error: ${message}\n\n${USAGE}`);
  process.exit(2);
}

const options = {
  input: { type: 'string', multiple: true },
  format: { type: 'string' },
  model: { type: 'string' },
  'knn-keys': { type: 'boolean', default: false },
  index: { type: 'string', default: 'flat' },
  name: { type: 'string' },
  description: { type: 'string' },
  out: { type: 'string' },
  text: { type: 'string' },
  k: { type: 'string' },
  'max-tokens': { type: 'string' },
  pca: { type: 'string' },
  'pca-sample': { type: 'string' },
  keys: { type: 'string', default: 'int8' },
  base: { type: 'string' },
  stride: { type: 'string' },
  threads: { type: 'string' },
  backend: { type: 'string' },
  size: { type: 'string' },
  queries: { type: 'string', default: '200' },
  'queries-from': { type: 'string' },
  reference: { type: 'string' },
  check: { type: 'string', default: '5' },
  'no-simd': { type: 'boolean', default: false },
  lists: { type: 'string' },
  sample: { type: 'string' },
  iterations: { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ options, allowPositionals: true });
  } catch (e) {
    fail((e as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, file] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return;
  }
  const positive = (name: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!(Number.isInteger(n) && n > 0)) fail(`--${name} must be a positive integer, got ${value}`);
    return n;
  };
  if (values.keys !== 'int8' && values.keys !== 'f32') fail('--keys must be int8 or f32');

  if (command === 'build-knn') {
    if (!values.out) fail('build-knn needs --out');
    if (values.base) {
      if (values.input?.length) fail('build-knn takes --input (a keys-only datastore) or --base (keys added to a chunk datastore), not both');
      const appOnly = (['model', 'pca', 'pca-sample', 'stride', 'max-tokens', 'name', 'description', 'format'] as const).filter((o) => values[o] !== undefined);
      if (appOnly.length) fail(`build-knn --base adds keys as the app does (its GPT, PCA 64, int8): --${appOnly.join(', --')} does not apply`);
      if (values.keys !== 'int8') fail('build-knn --base stores int8 keys, as the app does');
      const result = await attachKnnKeysToFile({ base: values.base, out: values.out, threads: positive('threads', values.threads), backend: parseBackend(values.backend) });
      console.error(`built ${result.out}: ${result.entries.toLocaleString('en')} entries (${result.dim}-d int8 keys), ${(result.bytes / 1048576).toFixed(1)} MB in ${result.seconds.toFixed(1)} s`);
      console.log(JSON.stringify(result));
      return;
    }
    if (!values.model) fail('build-knn needs --model <gpt model dir>');
    if (!values.input?.length) fail('build-knn needs --input <file> or --base <file.rlds>');
    if (values.format && !INPUT_FORMATS.includes(values.format as InputFormat)) fail(`--format must be one of ${INPUT_FORMATS.join(', ')}`);
    const stats = await buildKnnFile({
      model: values.model,
      inputs: values.input,
      format: values.format as InputFormat | undefined,
      ...(values.name ? { name: values.name } : {}),
      ...(values.description ? { description: values.description } : {}),
      out: values.out,
      maxTokens: positive('max-tokens', values['max-tokens']),
      pca: positive('pca', values.pca),
      pcaSample: positive('pca-sample', values['pca-sample']),
      encoding: values.keys,
      stride: positive('stride', values.stride),
      threads: positive('threads', values.threads),
      backend: parseBackend(values.backend),
    });
    console.error(
      `built ${stats.out}: ${stats.entries.toLocaleString('en')} entries (${stats.dim}-d ${stats.encoding} keys), ${(stats.bytes / 1048576).toFixed(1)} MB ` +
        `(kNN-LM sections ${(stats.knnBytes / 1048576).toFixed(1)} MB) in ${stats.seconds.total.toFixed(1)} s, ${Math.round(stats.tokensPerSecond)} tokens/s keyed`,
    );
    console.log(JSON.stringify(stats));
    return;
  }

  if (command === 'compress-knn') {
    if (!file) fail('compress-knn needs a file');
    if (!values.out) fail('compress-knn needs --out');
    const result = compressKnnFile({ input: file, out: values.out, encoding: values.keys, pca: positive('pca', values.pca), pcaSample: positive('pca-sample', values['pca-sample']) });
    console.log(JSON.stringify(result));
    return;
  }

  if (command === 'build-ivf') {
    if (!file) fail('build-ivf needs a file');
    if (!values.out) fail('build-ivf needs --out');
    const count = (name: string, value: string | undefined): number | undefined => {
      if (value === undefined) return undefined;
      const n = Number(value);
      if (!(Number.isInteger(n) && n >= 0)) fail(`--${name} must be a whole number, got ${value}`);
      return n;
    };
    const result = buildIvfFile({
      input: file,
      out: values.out,
      lists: positive('lists', values.lists),
      sample: positive('sample', values.sample),
      iterations: count('iterations', values.iterations),
      seed: count('seed', values.seed),
    });
    console.error(`built ${result.out}: ${result.lists} lists (${result.minList}..${result.maxList} entries) over ${result.entries.toLocaleString('en')} entries, +${(result.ivfBytes / 1048576).toFixed(1)} MB, in ${result.totalSeconds.toFixed(1)} s`);
    console.log(JSON.stringify(result));
    return;
  }

  if (command === 'bench-knn') {
    if (!file) fail('bench-knn needs a file');
    const result = benchKnn({
      input: file,
      size: positive('size', values.size),
      k: positive('k', values.k ?? '1024')!,
      queries: positive('queries', values.queries)!,
      ...(values['queries-from'] ? { queriesFrom: values['queries-from'] } : {}),
      ...(values.reference ? { reference: values.reference } : {}),
      check: Number(values.check),
      ...(values['no-simd'] ? { simd: false } : {}),
    });
    console.log(JSON.stringify(result, null, 2));
    return;
  }

  if (command === 'build') {
    if (!values.input?.length) fail('build needs at least one --input');
    if (!values.name) fail('build needs --name');
    if (!values.out) fail('build needs --out');
    if (values.model) fail('build uses the shipped RETRO’s tokenizer, embedder and chunking (public/models), as the app does: --model does not apply');
    if (!INDEX_KINDS.includes(values.index as IndexKind)) fail(`--index must be one of ${INDEX_KINDS.join(', ')}`);
    if (values.format && !INPUT_FORMATS.includes(values.format as InputFormat)) fail(`--format must be one of ${INPUT_FORMATS.join(', ')}`);
    const stats = await buildDatastoreFile({
      inputs: values.input,
      format: values.format as InputFormat | undefined,
      name: values.name,
      description: values.description,
      index: values.index as IndexKind,
      knnKeys: values['knn-keys'],
      out: values.out,
    });
    console.error(
      `built ${stats.out}: ${stats.documents.toLocaleString('en')} documents, ${stats.chunks.toLocaleString('en')} chunks, ` +
        `${(stats.bytes / 1048576).toFixed(1)} MB in ${stats.seconds.total.toFixed(1)} s ` +
        `(${Math.round(stats.chunksPerSecond).toLocaleString('en')} chunks/s overall, ${Math.round(stats.embedChunksPerSecond).toLocaleString('en')} chunks/s embedding)`,
    );
    console.log(JSON.stringify(stats));
    return;
  }

  if (command === 'info') {
    if (!file) fail('info needs a file');
    const bytes = new Uint8Array(readFileSync(file));
    const header = readShardHeader(bytes);
    const t0 = performance.now();
    decodeShard(bytes); // full check: section checksums and structure
    const { meta } = header;
    console.log(
      JSON.stringify(
        {
          file,
          ok: true,
          verifyMs: Math.round(performance.now() - t0),
          formatVersion: header.formatVersion,
          name: meta.name,
          description: meta.description,
          createdAt: meta.createdAt,
          bytes: header.totalBytes,
          documents: header.documentCount,
          chunks: header.chunkCount,
          chunkSize: header.chunkSize,
          neighbourLen: header.neighbourLen,
          dim: header.dim,
          indexKind: header.indexKind,
          knnlm: header.meta.knnlm ?? Boolean(header.flags & 1),
          tokenizer: meta.tokenizer,
          embedder: meta.embedder,
          sources: meta.sources,
          sectionBytes: sectionSizes(header),
          build: meta.extra?.build,
        },
        null,
        2,
      ),
    );
    return;
  }

  if (command === 'search') {
    if (!file) fail('search needs a file');
    if (!values.text) fail('search needs --text');
    const k = Number(values.k ?? 4);
    // The app's search: the file imported into the catalogue (its checks), made active, queried with
    // the last chunk of the text as RETRO queries with its last completed chunk.
    const { retrieval, dispose } = await startRetrieval({ builtIns: false });
    try {
      const bytes = readFileSync(file);
      // Searched with the index the file was built with (the app's index setting).
      await retrieval.setIndexKind(readShardHeader(new Uint8Array(bytes)).indexKind);
      const { imported } = await retrieval.importFile(new File([bytes], basename(file)));
      const state = await retrieval.setActive(imported.id);
      const { neighbours, latencyMs } = await retrieval.retrieveText(values.text, k);
      console.log(`“${imported.name}”: ${neighbours.length} neighbours of the text's last chunk  [${latencyMs.toFixed(1)} ms, ${state.indexKind} index]`);
      for (const h of neighbours) {
        console.log(`\n#${h.chunkIndex}  distance ${h.distance.toFixed(4)}  "${h.title}"`);
        console.log(`  chunk:        ${h.text.replace(/\s+/g, ' ').trim()}`);
        console.log(`  continuation: ${h.continuationText.replace(/\s+/g, ' ').trim()}`);
      }
    } finally {
      await dispose();
    }
    return;
  }
  fail(`unknown command ${command}`);
}

main().catch((e: Error) => {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
});
