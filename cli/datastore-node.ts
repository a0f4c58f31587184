/**
 * Node-side datastore building for the CLI tools: input files to documents, a shard file written
 * atomically, its index.json entry. Where the model files are and how they load is
 * src/core/datastore/node.ts (the Node tests use it too).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { IndexKind } from '../src/protocol/retrieval';
import type { DefaultDatastoreEntry, DocumentInput, ShardMeta } from '../src/protocol/shard';
import { buildShard, type BuildStats } from '../src/core/datastore/builder';
import { detectFormat, parseDocuments, type InputFormat } from '../src/core/datastore/parse';
import { readShardHeader } from '../src/core/datastore/shard';

export { dataDir, DEFAULT_MODEL_DIR, findTokenizerPath, loadModelFiles, loadVoyForNode, readEmbedder, readTokenizer, REPO_ROOT, syntheticEmbedderBytes } from '../src/core/datastore/node';
export type { ModelFileOptions, ModelFiles } from '../src/core/datastore/node';
import { loadModelFiles, loadVoyForNode, type ModelFileOptions } from '../src/core/datastore/node';

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
