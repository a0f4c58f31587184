/**
 * Node-only: where the repository's data and shipped model files are on disk, and how to load a
 * tokenizer, an embedder and voy's WASM from them. The CLI tools and the Node tests share it;
 * browser code never imports it (it reads node:fs).
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunkDatastoreGeometry, type ModelManifest } from '../../protocol/manifest';
import { MeanEmbedder } from '../retrieval/embedder';
import { initVoy } from '../retrieval/voy';
import { loadTokenizer, type RetroTokenizer } from '../tokenizer/index';
import { readShardHeaderFrom, type ShardHeader, type ShardSource } from './shard';
import { KnnDatastore, type KnnOpenOptions } from '../knnlm/datastore';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The shared corpora: $RETROLAB_DATA, else ../shared/data next to the repository. */
export function dataDir(): string {
  return process.env.RETROLAB_DATA ? resolve(process.env.RETROLAB_DATA) : resolve(REPO_ROOT, '..', 'shared', 'data');
}

/** The model whose embedder and chunking datastores are built for. */
export const DEFAULT_MODEL_DIR = join(REPO_ROOT, 'public', 'models', 'retro-wt2');

/** tokenizer.json of a shipped model, else the training pipeline's copy (the same file). */
export function findTokenizerPath(): string | null {
  const candidates = [
    join(REPO_ROOT, 'public', 'models', 'retro-wt2', 'tokenizer.json'),
    join(REPO_ROOT, 'public', 'models', 'gpt-wt2', 'tokenizer.json'),
    join(REPO_ROOT, 'models', '.work', 'tokenizer.json'),
  ];
  return candidates.find((p) => existsSync(p)) ?? null;
}

export async function loadVoyForNode(): Promise<void> {
  const require = createRequire(import.meta.url);
  await initVoy(readFileSync(require.resolve('voy-search/voy_search_bg.wasm')));
}

export function readTokenizer(path: string, id?: string): RetroTokenizer {
  return loadTokenizer(JSON.parse(readFileSync(path, 'utf8')), { id });
}

/**
 * Reads an embedder.bin. Without a manifest the dimension follows from the file size:
 * bytes = vocab*dim + vocab*4.
 */
export function readEmbedder(path: string, vocabSize: number, dim?: number, id?: string): MeanEmbedder {
  const bytes = new Uint8Array(readFileSync(path));
  const d = dim ?? bytes.length / vocabSize - 4;
  if (!Number.isInteger(d) || d < 1) {
    throw new Error(`${path}: ${bytes.length} bytes is not vocab (${vocabSize}) x (dim + 4) for any whole dim`);
  }
  return MeanEmbedder.fromBytes(bytes, vocabSize, d, id);
}

export interface ModelFiles {
  tokenizer: RetroTokenizer;
  embedder: MeanEmbedder;
  chunkSize: number;
  neighbourLen: number;
  /** where each came from, for messages */
  from: { tokenizer: string; embedder: string; manifest: string | null };
}

export interface ModelFileOptions {
  /** model directory with manifest.json, tokenizer.json, embedder.bin */
  model?: string;
  tokenizer?: string;
  embedder?: string;
  chunk?: number;
  neighbourLen?: number;
}

/**
 * Tokenizer, embedder and chunking for building datastores: from a model directory's manifest,
 * each overridable by an explicit file or number (before the model is shipped: --embedder with a
 * file, --tokenizer models/.work/tokenizer.json, --chunk 32).
 */
export function loadModelFiles(options: ModelFileOptions): ModelFiles {
  const modelDir = options.model ? resolve(options.model) : DEFAULT_MODEL_DIR;
  const manifestPath = join(modelDir, 'manifest.json');
  const manifest: ModelManifest | null = existsSync(manifestPath) ? (JSON.parse(readFileSync(manifestPath, 'utf8')) as ModelManifest) : null;
  if (manifest && manifest.architecture !== 'retro') throw new Error(`${manifestPath} is a ${manifest.architecture} model; datastores are built for a RETRO model's embedder`);

  const tokenizerPath = options.tokenizer
    ? resolve(options.tokenizer)
    : existsSync(join(modelDir, manifest?.tokenizer.file ?? 'tokenizer.json'))
      ? join(modelDir, manifest?.tokenizer.file ?? 'tokenizer.json')
      : findTokenizerPath();
  if (!tokenizerPath || !existsSync(tokenizerPath)) throw new Error(`no tokenizer.json in ${modelDir}; pass --tokenizer <file>`);
  const tokenizer = readTokenizer(tokenizerPath, options.tokenizer ? undefined : manifest?.tokenizer.id);

  const embedderPath = options.embedder ? resolve(options.embedder) : join(modelDir, manifest?.embedder?.file ?? 'embedder.bin');
  if (!existsSync(embedderPath)) {
    throw new Error(`${embedderPath} does not exist: ship the RETRO model first (models/retrolab/ship.py), or pass --embedder <embedder.bin>`);
  }
  const embedder = options.embedder
    ? readEmbedder(embedderPath, tokenizer.vocabSize)
    : readEmbedder(embedderPath, manifest?.embedder?.vocab_size ?? tokenizer.vocabSize, manifest?.embedder?.dim, manifest?.embedder?.id);

  const geometry = manifest ? chunkDatastoreGeometry(manifest) : undefined;
  const chunkSize = options.chunk ?? geometry?.chunk;
  if (!chunkSize) throw new Error(`no chunk size: ${manifestPath} is missing; pass --chunk <tokens>`);
  // An explicit --chunk overrides the manifest's chunking as a whole: rows are then 2 chunks long.
  const neighbourLen = options.neighbourLen ?? (options.chunk === undefined ? geometry?.neighbourLen : undefined) ?? 2 * chunkSize;
  return {
    tokenizer,
    embedder,
    chunkSize,
    neighbourLen,
    from: { tokenizer: tokenizerPath, embedder: embedderPath, manifest: manifest ? manifestPath : null },
  };
}

export { syntheticEmbedderBytes } from '../retrieval/synthetic-embedder';

/**
 * A shard file read piece by piece (KnnDatastore.load): no whole-file buffer. Close it when done.
 */
export function fileShardSource(path: string): ShardSource & { close(): void } {
  const fd = openSync(path, 'r');
  return {
    byteLength: fstatSync(fd).size,
    async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
      const out = into ? into.subarray(0, length) : new Uint8Array(length);
      for (let done = 0; done < length; ) {
        const n = readSync(fd, out, done, length - done, offset + done);
        if (n === 0) throw new RangeError(`${path} ended at ${offset + done} bytes, before ${offset + length}`);
        done += n;
      }
      return out;
    },
    close: () => closeSync(fd),
  };
}

/** A shard file's header, read without the rest of the file (a kNN-LM datastore is 200 MB and more). */
export async function readShardHeaderOfFile(path: string): Promise<ShardHeader> {
  const source = fileShardSource(path);
  try {
    return await readShardHeaderFrom(source);
  } finally {
    source.close();
  }
}

/** Opens a kNN-LM datastore file section by section (its keys streamed into the index): the file is never held whole. */
export async function openKnnFile(path: string, options: KnnOpenOptions = {}): Promise<KnnDatastore> {
  const source = fileShardSource(path);
  try {
    return await KnnDatastore.load(source, options);
  } finally {
    source.close();
  }
}
