/**
 * Node-side helpers for the datastore tools and tests: where the data and model files are, how
 * to load a tokenizer + embedder from a model directory, and voy's WASM from node_modules.
 * Everything browser-safe lives in src/core; this file is the part that needs node:fs.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunkDatastoreGeometry, type ModelManifest } from '../src/protocol/manifest';
import type { IndexKind } from '../src/protocol/retrieval';
import type { DefaultDatastoreEntry, DocumentInput, ShardMeta } from '../src/protocol/shard';
import { buildShard, type BuildStats } from '../src/core/datastore/builder';
import { detectFormat, parseDocuments, type InputFormat } from '../src/core/datastore/parse';
import { readShardHeader } from '../src/core/datastore/shard';
import { MeanEmbedder } from '../src/core/retrieval/embedder';
import { initVoy } from '../src/core/retrieval/voy';
import { loadTokenizer, type RetroTokenizer } from '../src/core/tokenizer/index';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

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

export { syntheticEmbedderBytes } from '../src/core/retrieval/synthetic-embedder';

export interface BuildFileOptions extends ModelFileOptions {
  inputs: string[];
  /** per-file format; default from each file name */
  format?: InputFormat;
  name: string;
  description?: string;
  index: IndexKind;
  out: string;
  /** progress lines on stderr */
  log?: (line: string) => void;
}

/** Reads and parses input files (format from `format`, else from each name) into documents, with their provenance. */
export function readInputDocuments(inputs: readonly string[], format: InputFormat | undefined, log: (line: string) => void): { documents: DocumentInput[]; sources: ShardMeta['sources'] } {
  const documents: DocumentInput[] = [];
  const sources: ShardMeta['sources'] = [];
  for (const input of inputs) {
    const bytes = new Uint8Array(readFileSync(input));
    const inputFormat = format ?? detectFormat(input);
    if (!inputFormat) throw new Error(`${input}: cannot tell the format from the name; pass --format wikitext|jsonl|txt|md`);
    const docs = parseDocuments(bytes, basename(input), inputFormat);
    documents.push(...docs);
    sources.push({ name: basename(input), bytes: bytes.length, format: inputFormat });
    log(`${input}: ${inputFormat}, ${docs.length} documents, ${bytes.length.toLocaleString('en')} bytes`);
  }
  return { documents, sources };
}

/** Writes to a temporary file beside `path`, then renames it: a reader never sees half a file. */
export function writeAtomically(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(resolve(path)), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

/** Reads, parses and builds input files into a shard file (written atomically). */
export async function buildDatastoreFile(options: BuildFileOptions): Promise<BuildStats & { out: string }> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const model = loadModelFiles(options);
  if (options.index === 'voy') await loadVoyForNode();
  log(`tokenizer ${model.tokenizer.id} (${model.from.tokenizer}), embedder ${model.embedder.id} ${model.embedder.vocabSize}x${model.embedder.dim} (${model.from.embedder}), chunk ${model.chunkSize}, neighbour_len ${model.neighbourLen}`);
  const { documents, sources } = readInputDocuments(options.inputs, options.format, log);
  let lastPhase = '';
  let lastLine = 0;
  const { bytes, stats } = await buildShard(documents, {
    name: options.name,
    description: options.description,
    tokenizer: model.tokenizer,
    embedder: model.embedder,
    chunkSize: model.chunkSize,
    neighbourLen: model.neighbourLen,
    indexKind: options.index,
    sources,
    yieldEveryMs: 1000,
    onProgress: (p) => {
      const now = Date.now();
      if (p.phase !== lastPhase || now - lastLine > 2000) {
        log(`  ${p.phase.padEnd(8)} ${p.done.toLocaleString('en')}/${p.total.toLocaleString('en')} ${p.unit}` + (p.chunksPerSecond ? `, ${Math.round(p.chunksPerSecond).toLocaleString('en')} chunks/s embedding` : ''));
        lastPhase = p.phase;
        lastLine = now;
      }
    },
  });
  writeAtomically(options.out, bytes);
  return { ...stats, out: options.out };
}

/** The public/datastores/index.json entry of a built datastore file, read from its header. */
export function defaultDatastoreEntry(path: string, described: { id: string; name: string; description: string; file: string }): DefaultDatastoreEntry {
  const header = readShardHeader(new Uint8Array(readFileSync(path)));
  const knn = header.meta.knnlm;
  return {
    ...described,
    bytes: header.totalBytes,
    chunks: header.chunkCount,
    documents: header.documentCount,
    index: header.indexKind,
    embedder_fingerprint: header.meta.embedder.fingerprint,
    created_at: header.meta.createdAt,
    ...(knn && header.chunkCount === 0 ? { knnlm: { model: knn.model.id, decoder_sha256: knn.model.decoderSha256, entries: knn.count, dim: knn.dim } } : {}),
  };
}
