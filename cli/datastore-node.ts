/**
 * Node-side datastore building for the CLI tools: input files through the app's retrieval engine
 * to a shard file written atomically, its index.json entry. Where the model files are and how they load is
 * src/core/datastore/node.ts (the Node tests use it too).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { IndexKind } from '../src/protocol/retrieval';
import type { DefaultDatastoreEntry, DocumentInput, ShardMeta } from '../src/protocol/shard';
import type { Progress } from '../src/protocol/api';
import type { BuildStats } from '../src/core/datastore/builder';
import { detectFormat, parseDocuments, type InputFormat } from '../src/core/datastore/parse';
import { readShardHeader } from '../src/core/datastore/shard';

export { dataDir, DEFAULT_MODEL_DIR, findTokenizerPath, loadModelFiles, loadVoyForNode, readEmbedder, readTokenizer, REPO_ROOT, syntheticEmbedderBytes } from '../src/core/datastore/node';
export type { ModelFileOptions, ModelFiles } from '../src/core/datastore/node';
import { startEngines, startRetrieval } from './engines-node';

export interface BuildFileOptions {
  inputs: string[];
  /** every file's format; default from each file name */
  format?: InputFormat;
  name: string;
  description?: string;
  index: IndexKind;
  out: string;
  /** also run the GPT for kNN-LM keys in the same shard, as the app's "Also build kNN-LM keys" */
  knnKeys?: boolean;
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

/** A progress callback that prints a line per phase, and at most one every `everyMs` within one. */
export function progressLines(log: (line: string) => void, everyMs = 2000): (p: Progress) => void {
  let lastPhase = '';
  let lastLine = 0;
  return (p) => {
    const now = Date.now();
    const phase = `${p.label}: ${'phase' in p && p.phase ? p.phase : ''}`;
    if (phase === lastPhase && now - lastLine < everyMs && !p.finished) return;
    const total = p.total === null ? '' : `/${p.total.toLocaleString('en')}`;
    const rate = p.rate ? `, ${Math.round(p.rate).toLocaleString('en')} ${p.unit}/s` : '';
    log(`  ${phase.padEnd(40)} ${p.done.toLocaleString('en')}${total} ${p.unit}${rate}`);
    lastPhase = phase;
    lastLine = now;
  };
}

/**
 * Builds input files into a shard file (written atomically) with the app's retrieval engine, as the
 * app's drop zone does (npm run datastore -- build, npm run setup:datastores): the same parsing,
 * chunking, embedding and packing, with the tools' limits (any size, WikiText dumps too).
 */
export async function buildDatastoreFile(options: BuildFileOptions): Promise<BuildStats & { out: string }> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  // Keys on onnxruntime-node (cli/backend.ts): the app's graph, ~3x faster than its WASM kernels.
  const engines = options.knnKeys ? await startEngines({ builtIns: false, backend: 'cpu' }) : await startRetrieval({ builtIns: false });
  try {
    const files = options.inputs.map((path) => new File([readFileSync(path)], basename(path)));
    for (const f of files) log(`${f.name}: ${f.size.toLocaleString('en')} bytes`);
    const { built } = await engines.retrieval.build(
      { name: options.name, files, format: options.format, description: options.description, index: options.index, knnKeys: options.knnKeys === true },
      progressLines(log),
    );
    const bytes = new Uint8Array(await (await engines.retrieval.exportFile(built.id)).arrayBuffer());
    writeAtomically(options.out, bytes);
    return { ...buildStats(bytes), out: options.out };
  } finally {
    await engines.dispose();
  }
}

/** The build figures a shard keeps in its header (meta.extra.build, written by the builder). */
function buildStats(bytes: Uint8Array): BuildStats {
  const header = readShardHeader(bytes);
  const build = header.meta.extra?.build as { seconds: BuildStats['seconds']; embedChunksPerSecond: number; tokens: number };
  return {
    documents: header.documentCount,
    chunks: header.chunkCount,
    tokens: build.tokens,
    bytes: header.totalBytes,
    seconds: build.seconds,
    embedChunksPerSecond: build.embedChunksPerSecond,
    chunksPerSecond: build.seconds.total > 0 ? header.chunkCount / build.seconds.total : 0,
  };
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
