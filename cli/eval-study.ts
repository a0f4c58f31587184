/**
 * `npm run eval:study`: the perplexity studies that go beyond what the app's engines do, on the core
 * building blocks directly (src/core/eval, knnlm, icralm, replug): RETRO with the evaluated split
 * leaked into its datastore (`--neighbours leakage`), other query models, embedders, datastore and
 * kNN-LM files given as paths, In-Context RALM separators. `npm run eval` (cli/eval.ts) is the
 * standard measurement and runs the engines the browser runs; on the same options both give the
 * same numbers. Same protocol (docs/manifest.md), same output, same options:
 *
 *   npm run eval:study -- --model public/models/gpt-wt2 --split test
 *   npm run eval:study -- --model public/models/retro-wt2 --split test --neighbours real|random|leakage|none
 *        [--datastore <shard file | wiki.*.tokens>]   (default: built in memory from wiki.train.tokens)
 *        token-aligned RETRO (manifest `retrieval`): [--knn-datastore <file.rlds>] [--query-model <dir>]
 *        (default: public/datastores/wikitext-2-train.knn-pca64.rlds and the GPT named in the manifest)
 *   npm run eval:study -- --model public/models/gpt-wt2 --split test --knnlm --knn-datastore <file.rlds>
 *        [--lambda 0.25] [--k 1024] [--temperature 1] [--sweep-lambda 0.1,0.25,0.5] [--sweep-temperature 1,10]
 *        [--sweep-k 64,1024]   (kNN-LM, docs/knnlm.md: GPT and kNN-LM perplexity from one pass)
 *        [--knn-index exact|ivf] [--nprobe N] [--rerank N]   (kNN-LM search: exact, or the datastore's IVF lists, npm run datastore -- build-ivf)
 *        [--pointers N]   (RetoMaton: follow the previous neighbours' pointers when >= N survive, src/core/knnlm/retomaton.ts)
 *        [--skip-above θ1,θ2] [--adaptive-lambda | --lambda-table <file.json>] [--fit-adaptive B [--write-lambda-table <file.json>]]
 *             (adaptive kNN-LM, docs/adaptive-knnlm.md: no search when the GPT's top probability >= θ; λ by the
 *              nearest distance from the shipped table or a file; --fit-adaptive fits B distance buckets' λ on
 *              these windows for the headline k and T)
 *        [--fit-records <file.f32>]   (each searched target's log p_LM, log p_kNN, nearest distance, GPT top probability)
 *   npm run eval:study -- --fit-from <a.f32,b.f32> [--fit-adaptive B] [--lambda 0.5] [--adaptive-lambda | --lambda-table <file>] [--skip-above θ1,θ2]
 *        (adaptive kNN-LM offline, no model: fits B buckets on all files and, with several, on all but one scored on
 *         the one left out; scores the fixed λ, the table and each θ on the records)
 *        [--token-logprobs <prefix>]   (--knnlm: writes <prefix>.gpt.f32 and <prefix>.<i>.f32 per setting, for npm run eval:paired)
 *   npm run eval:study -- --model public/models/gpt-wt2 --split test --icralm [--icralm-stride 4] [--icralm-query 32]
 *        [--max-windows N | --max-tokens N]   (In-Context RALM, cli/eval-icralm.ts)
 *   npm run eval:study -- --model public/models/gpt-wt2 --split test --replug [--replug-k 4] [--replug-temperature 0.1]
 *        [--icralm-stride 4] [--icralm-query 32] [--max-windows N]   (REPLUG, the same blocks and passages)
 *   options: --max-windows N  --windows a:b (a part, for npm run eval:merge)  --batch B (4)  --threads T (1)  --backend cpu|wasm  --k K  --seed S  --stride S (128)
 *            --write-metrics <key>  (full runs only: writes {token_ppl, word_ppl, ...} into manifest.json)
 *            --token-logprobs <file.f32>  (each target's log-probability, for npm run eval:paired)
 *
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chunkDatastoreGeometry, keysMatchDecoder, type ModelManifest } from '../src/protocol/manifest';
import type { PerplexityResult } from '../src/protocol/model';
import { Datastore } from '../src/core/datastore/datastore';
import { buildShard } from '../src/core/datastore/builder';
import { bytesOf, fingerprint } from '../src/core/datastore/checksum';
import { parseText } from '../src/core/datastore/parse';
import { evaluatePerplexity, type WindowNeighbours, type WindowRange } from '../src/core/eval/perplexity';
import { alignedWindowNeighbours, datastoreEvalStore, windowNeighbours, withLeakedStream, type NeighbourMode } from '../src/core/eval/neighbours';
import { buildKnnShard } from '../src/core/knnlm/build';
import { GptModel, loadModel, RetroModel } from '../src/core/models';
import { KnnDatastore } from '../src/core/knnlm/datastore';
import { openKnnFile } from '../src/core/datastore/node';
import { evaluateKnnLm } from '../src/core/knnlm/eval';
import { DEFAULT_LAMBDA_TABLE, fitLambdaTable, scoreRecords, validateAdaptive, type AdaptiveRecord, type FitRecord, type LambdaTable } from '../src/core/knnlm/adaptive';
import { writeManifestMetric } from './metrics';
import { DEFAULT_KNN_SETTINGS, type KnnLmSettings } from '../src/core/knnlm/types';
import { MeanEmbedder } from '../src/core/retrieval/embedder';
import { Runtime } from '../src/core/runtime';
import { onnxRuntimeName, parseBackend } from './backend';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { countWikiTextWords, loadTokenizer, type RetroTokenizer } from '../src/core/tokenizer';
import { concatenateArticles, tokenizeWikiTextArticles } from '../src/core/eval/stream';
import { runIcRalmEval } from './eval-icralm';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA_DIR = process.env.RETROLAB_DATA ? resolve(process.env.RETROLAB_DATA) : resolve(REPO_ROOT, '..', 'shared', 'data');
const CACHE_DIR = join(REPO_ROOT, '.cache', 'eval');

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    split: { type: 'string', default: 'test' },
    data: { type: 'string', default: join(DATA_DIR, 'wikitext-2') },
    neighbours: { type: 'string' },
    datastore: { type: 'string' },
    k: { type: 'string' },
    'max-windows': { type: 'string' },
    batch: { type: 'string', default: '4' },
    threads: { type: 'string', default: '1' },
    backend: { type: 'string', default: 'cpu' },
    stride: { type: 'string', default: '128' },
    seed: { type: 'string', default: '0' },
    'write-metrics': { type: 'string' },
    'no-cache': { type: 'boolean', default: false },
    knnlm: { type: 'boolean', default: false },
    'knn-datastore': { type: 'string' },
    'knn-index': { type: 'string', default: 'exact' },
    nprobe: { type: 'string' },
    rerank: { type: 'string' },
    lambda: { type: 'string' },
    temperature: { type: 'string' },
    'sweep-lambda': { type: 'string' },
    'sweep-temperature': { type: 'string' },
    'sweep-k': { type: 'string' },
    pointers: { type: 'string' },
    'skip-above': { type: 'string' },
    'adaptive-lambda': { type: 'boolean', default: false },
    'lambda-table': { type: 'string' },
    'fit-adaptive': { type: 'string' },
    'write-lambda-table': { type: 'string' },
    'fit-records': { type: 'string' },
    'fit-from': { type: 'string' },
    windows: { type: 'string' },
    icralm: { type: 'boolean', default: false },
    replug: { type: 'boolean', default: false },
    'replug-k': { type: 'string' },
    'replug-temperature': { type: 'string' },
    'icralm-stride': { type: 'string' },
    'icralm-query': { type: 'string' },
    'icralm-separator': { type: 'string', default: 'newline' },
    'max-tokens': { type: 'string' },
    embedder: { type: 'string' },
    'no-baseline': { type: 'boolean', default: false },
    'token-logprobs': { type: 'string' },
    'query-model': { type: 'string' },
  },
});

function fail(message: string): never {
  console.error(`eval:study: ${message}`);
  process.exit(2);
}

function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

const progress = (message: string) => process.stderr.write(`${message}\n`);

/** --windows start:end (window indices, end excluded): one part of a run split across processes. */
function windowRangeArgument(): WindowRange | undefined {
  if (!args.windows) return undefined;
  const m = /^(\d+):(\d+)$/.exec(args.windows);
  if (!m) fail(`--windows takes start:end (window indices, end excluded), got ${args.windows}`);
  return { start: Number(m[1]), end: Number(m[2]) };
}

/** A windows-done progress line on stderr at most every `everyMs`, and at the end. */
function windowProgress(started: number, everyMs: number): (done: number, total: number) => void {
  let lastReport = 0;
  return (done, total) => {
    const now = performance.now();
    if (now - lastReport > everyMs || done === total) {
      lastReport = now;
      const rate = done / ((now - started) / 1000);
      progress(`${done}/${total} windows, ${rate.toFixed(2)} windows/s, ~${((total - done) / rate / 60).toFixed(1)} min left`);
    }
  };
}

/** The datastore: a shard file, or built from a WikiText file (cached under .cache/eval/). */
async function openDatastore(path: string, tokenizer: RetroTokenizer, embedder: MeanEmbedder, manifest: ModelManifest): Promise<{ datastore: Datastore; source: string }> {
  if (!existsSync(path)) fail(`datastore ${path} does not exist`);
  const geometry = chunkDatastoreGeometry(manifest);
  if (!path.endsWith('.tokens') && !path.endsWith('.txt')) {
    return { datastore: await Datastore.open(new Uint8Array(readFileSync(path)), embedder), source: path };
  }
  const cached = join(CACHE_DIR, `${basename(path)}.${tokenizer.fingerprint}.${embedder.fingerprint}.c${geometry.chunk}.shard`);
  if (!args['no-cache'] && existsSync(cached)) {
    return { datastore: await Datastore.open(new Uint8Array(readFileSync(cached)), embedder), source: `${path} (cached shard ${cached})` };
  }
  progress(`building a datastore from ${path} ...`);
  const t = performance.now();
  const documents = parseText(readFileSync(path, 'utf8'), 'wikitext', basename(path));
  const built = await buildShard(documents, {
    name: basename(path),
    description: `built by npm run eval from ${basename(path)}`,
    tokenizer,
    embedder,
    chunkSize: geometry.chunk,
    neighbourLen: geometry.neighbourLen,
  });
  progress(`datastore: ${built.stats.chunks} chunks in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  if (!args['no-cache']) {
    mkdirSync(CACHE_DIR, { recursive: true });
    writeFileSync(cached, built.bytes);
  }
  return { datastore: Datastore.fromShard(built.shard, embedder, built.bytes.length), source: path };
}

/** --fit-from: adaptive kNN-LM from --fit-records dumps, without the model. */
function fitFromRecords(): void {
  const files = args['fit-from']!.split(',');
  const parts = files.map((file): AdaptiveRecord[] => {
    if (!existsSync(file)) fail(`${file} does not exist (write it with --fit-records)`);
    const bytes = readFileSync(file);
    const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    return Array.from({ length: f.length / 4 }, (_, i) => ({ lm: f[4 * i]!, knn: f[4 * i + 1]!, nearest: f[4 * i + 2]!, lmTop: f[4 * i + 3]! }));
  });
  const all = parts.flat();
  const lambda = Number(args.lambda ?? DEFAULT_KNN_SETTINGS.lambda);
  const ppl = (records: readonly AdaptiveRecord[], s: Parameters<typeof scoreRecords>[1]) => {
    const r = scoreRecords(records, s);
    return { token_ppl: Math.exp(r.nll / records.length), searches_saved: r.skipped / records.length };
  };
  let table: LambdaTable | undefined;
  if (args['lambda-table']) table = JSON.parse(readFileSync(args['lambda-table'], 'utf8')) as LambdaTable;
  else if (args['adaptive-lambda']) table = { ...DEFAULT_LAMBDA_TABLE };
  const buckets = int('fit-adaptive', args['fit-adaptive']);
  const result: Record<string, unknown> = { files, targets: parts.map((p) => p.length), fixed_lambda: { lambda, ...ppl(all, { lambda }) } };
  if (buckets) {
    const fit = fitLambdaTable(all, buckets);
    result.fit = { buckets, table: fit.table, token_ppl: Math.exp(fit.nll / all.length), constant: { lambda: fit.constant.lambda, token_ppl: Math.exp(fit.constant.nll / all.length) } };
    if (parts.length > 1) {
      // Each part scored with a table and a single λ fitted on the other parts (out of sample).
      result.held_out = parts.map((part, i) => {
        const rest = parts.filter((_, j) => j !== i).flat();
        const other = fitLambdaTable(rest, buckets);
        return { file: files[i], fixed_lambda: ppl(part, { lambda }).token_ppl, table: ppl(part, { lambda, lambdaTable: other.table }).token_ppl, constant: { lambda: other.constant.lambda, token_ppl: ppl(part, { lambda: other.constant.lambda }).token_ppl } };
      });
    }
    if (args['write-lambda-table']) writeFileSync(args['write-lambda-table'], `${JSON.stringify(fit.table)}\n`);
  }
  if (table) result.table = { table, ...ppl(all, { lambda, lambdaTable: table }) };
  const thetas = args['skip-above'] !== undefined ? positiveNumbers('skip-above', args['skip-above'], 0) : [];
  result.skip = thetas.map((skipAbove) => ({ skip_above: skipAbove, fixed_lambda: ppl(all, { lambda, skipAbove }), ...(table ? { table: ppl(all, { lambda, skipAbove, lambdaTable: table }) } : {}) }));
  console.log(JSON.stringify(result));
}

async function main(): Promise<void> {
  if (args['fit-from']) return fitFromRecords();
  if (!args.model) fail('usage: npm run eval -- --model public/models/<id> [--split test|valid] [--neighbours real|random|leakage|none] [--max-windows N]');
  const modelDir = resolve(args.model);
  const maxWindows = int('max-windows', args['max-windows']);
  const batch = int('batch', args.batch) || 1;
  const threads = int('threads', args.threads) || 1;
  const stride = int('stride', args.stride)!;
  const seed = int('seed', args.seed)!;
  if (args['write-metrics'] && maxWindows !== undefined) fail('--write-metrics needs a full run (no --max-windows)');
  if (args['write-metrics'] && args.windows) fail('--write-metrics needs the whole split: merge the parts with npm run eval:merge');

  const started = performance.now();
  const runtime = await Runtime.create({ prefer: parseBackend(args.backend), wasmThreads: threads });
  const files = nodeModelFiles(modelDir);
  const model = await loadModel(runtime, files);
  const manifest = model.manifest;
  const hp = manifest.hyperparameters;
  const isRetro = model instanceof RetroModel;
  const mode = (args.neighbours ?? (isRetro ? 'real' : 'none')) as NeighbourMode | 'none';
  if (!['real', 'random', 'leakage', 'none'].includes(mode)) fail(`--neighbours must be real, random, leakage or none, got ${mode}`);
  if (!isRetro && mode !== 'none') fail(`${manifest.id} is a GPT: it takes no neighbours`);
  const k = int('k', args.k) ?? hp.neighbours ?? 0;

  const splitPath = join(resolve(args.data!), `wiki.${args.split}.tokens`);
  if (!existsSync(splitPath)) fail(`${splitPath} does not exist (set --data or RETROLAB_DATA)`);
  const tokenizerJson: unknown = JSON.parse(await files.text(manifest.tokenizer.file));
  const tokenizer = loadTokenizer(tokenizerJson, { id: manifest.tokenizer.id });
  const text = readFileSync(splitPath, 'utf8');
  const articles = tokenizeWikiTextArticles(tokenizer, text);
  const stream = concatenateArticles(articles, tokenizer.vocabSize);
  const words = countWikiTextWords(text);
  progress(`${manifest.id}: ${args.split} has ${stream.length} tokens, ${words} words`);

  if (args.knnlm) {
    if (!(model instanceof GptModel)) fail(`--knnlm wraps a GPT; ${manifest.id} is ${manifest.architecture}`);
    await evalKnnLm(model, stream, words, started, maxWindows, stride, modelDir, articles.map((d) => d.length));
    return;
  }
  if (args.icralm || args.replug) {
    if (!(model instanceof GptModel)) fail(`--icralm and --replug wrap a GPT; ${manifest.id} is ${manifest.architecture}`);
    const replugK = int('replug-k', args['replug-k']);
    const replugTemperature = args['replug-temperature'] !== undefined ? Number(args['replug-temperature']) : undefined;
    const icralmStride = int('icralm-stride', args['icralm-stride']);
    const icralmQuery = int('icralm-query', args['icralm-query']);
    const maxTokens = int('max-tokens', args['max-tokens']);
    await runIcRalmEval({
      model, modelDir, tokenizer, stream, words, started, split: args.split!, batch, progress, fail,
      ...(icralmStride !== undefined ? { stride: icralmStride } : {}),
      ...(icralmQuery !== undefined ? { queryLength: icralmQuery } : {}),
      ...(maxWindows !== undefined ? { maxWindows } : {}),
      ...(maxTokens !== undefined ? { maxTokens } : {}),
      ...(args.embedder ? { embedderDir: resolve(args.embedder) } : {}),
      ...(args['write-metrics'] ? { writeMetrics: args['write-metrics'] } : {}),
      separator: args['icralm-separator']!,
      ...(args.replug ? { replug: { ...(replugK !== undefined ? { k: replugK } : {}), ...(replugTemperature !== undefined ? { temperature: replugTemperature } : {}) } } : {}),
      baseline: !args['no-baseline'],
      datastorePath: resolve(args.datastore ?? join(resolve(args.data!), 'wiki.train.tokens')),
      openDatastore,
    });
    return;
  }

  let neighbours: WindowNeighbours | undefined;
  let datastoreInfo: Record<string, unknown> | undefined;
  if (isRetro && mode !== 'none' && manifest.retrieval?.kind === 'token-aligned') {
    const aligned = await alignedNeighbourSource(runtime, manifest, modelDir, mode, stream, text, k, seed);
    neighbours = aligned.neighbours;
    datastoreInfo = aligned.info;
  } else if (isRetro && mode !== 'none') {
    const spec = manifest.embedder;
    if (!spec) fail(`${manifest.id}: manifest has no embedder, which retrieval needs`);
    const embedder = MeanEmbedder.fromBytes(await files.bytes(spec.file), spec.vocab_size, spec.dim, spec.id);
    const { datastore, source } = await openDatastore(resolve(args.datastore ?? join(resolve(args.data!), 'wiki.train.tokens')), tokenizer, embedder, manifest);
    let store = datastoreEvalStore(datastore);
    if (mode === 'leakage') store = withLeakedStream(store, stream, embedder, hp.chunk!, hp.neighbour_len!, manifest.tokenizer.eot_id);
    neighbours = windowNeighbours(store, {
      mode,
      chunk: hp.chunk!,
      k,
      K: hp.neighbours!,
      neighbourLen: hp.neighbour_len!,
      eotId: manifest.tokenizer.eot_id,
      seed,
    });
    datastoreInfo = { source, chunks: datastore.chunkCount, documents: datastore.documentCount };
  }

  const tokenLogProbs = args['token-logprobs'] ? new Float32Array(stream.length - 1).fill(NaN) : undefined;
  const windowRange = windowRangeArgument();
  const evalStart = performance.now();
  const totals = await evaluatePerplexity(model, stream, {
    context: hp.context,
    stride,
    batch,
    ...(windowRange ? { windowRange } : {}),
    ...(tokenLogProbs ? { tokenLogProbs } : {}),
    ...(maxWindows !== undefined ? { maxWindows } : {}),
    ...(neighbours ? { neighbours } : {}),
    words,
    onProgress: windowProgress(evalStart, 5000),
  });
  // A partial run scored only part of the split: word-level perplexity then uses the split's
  // words in proportion to the tokens scored (an estimate, flagged).
  const partial = totals.scored_tokens < stream.length - 1;
  const scoredWords = partial ? (words * totals.scored_tokens) / (stream.length - 1) : words;
  const result: PerplexityResult & Record<string, unknown> = {
    model: manifest.id,
    split: args.split!,
    ...(isRetro ? { neighbours: mode } : {}),
    windows: totals.windows,
    ...(windowRange ? { window_range: windowRange, total_windows: totals.total_windows, split_tokens: stream.length, split_words: words } : {}),
    scored_tokens: totals.scored_tokens,
    words: Math.round(scoredWords),
    nll: totals.nll,
    token_ppl: totals.token_ppl,
    word_ppl: Math.exp(totals.nll / scoredWords),
    ...(partial ? { word_ppl_estimated: true } : {}),
    seconds: (performance.now() - started) / 1000,
    backend: model.info.backend.backend,
    eval_seconds: (performance.now() - evalStart) / 1000,
    tokens_per_second: totals.windows * hp.context / ((performance.now() - evalStart) / 1000),
    batch,
    threads,
    stride,
    ...(isRetro && mode !== 'none' ? { k, seed, datastore: datastoreInfo } : {}),
  };
  if (args['write-metrics']) {
    result.wrote_metrics = writeManifestMetric(modelDir, args['write-metrics'], {
      token_ppl: result.token_ppl,
      word_ppl: result.word_ppl,
      scored_tokens: result.scored_tokens,
      words: result.words,
      windows: result.windows,
      ...(isRetro ? { neighbours: mode, k } : {}),
      measured_by: `npm run eval:study (${onnxRuntimeName(runtime.candidate)}, int8 graphs)`,
    });
  }
  if (tokenLogProbs) {
    const file = resolve(args['token-logprobs']!);
    writeFileSync(file, new Uint8Array(tokenLogProbs.buffer));
    // The articles let eval:paired resample whole articles; the rest lets it refuse unlike runs.
    const articleLengths = articles.map((d) => d.length);
    writeFileSync(`${file}.json`, JSON.stringify({
      model: manifest.id, split: args.split, ...(isRetro ? { neighbours: mode, k } : {}), context: hp.context, stride,
      windows: totals.windows, token_ppl: totals.token_ppl, article_lengths: articleLengths,
    }));
    result.token_logprobs = file;
  }
  await model.dispose();
  console.log(JSON.stringify(result));
}

/**
 * Token-aligned RETRO (manifest `retrieval`): queries from the GPT named there, over its kNN-LM
 * datastore of WikiText-2 train (npm run setup:knn); for `leakage` also over a kNN-LM datastore of
 * the evaluated split, built with the train datastore's PCA (cached under .cache/eval/).
 */
async function alignedNeighbourSource(runtime: Runtime, manifest: ModelManifest, modelDir: string, mode: NeighbourMode, stream: ArrayLike<number>, splitText: string, k: number, seed: number): Promise<{ neighbours: WindowNeighbours; info: Record<string, unknown> }> {
  const spec = manifest.retrieval!;
  const hp = manifest.hyperparameters;
  const queryDir = resolve(args['query-model'] ?? join(dirname(modelDir), spec.query_model));
  const gpt = await loadModel(runtime, nodeModelFiles(queryDir));
  if (!(gpt instanceof GptModel)) fail(`${queryDir} is not a GPT: token-aligned RETRO queries with a GPT's knn_key`);
  if (!keysMatchDecoder(gpt.manifest.onnx.decoder, spec.query_decoder_sha256)) {
    fail(`${manifest.id} was trained with queries from ${spec.query_model} decoder ${spec.query_decoder_sha256.slice(0, 12)}…, ${queryDir} has ${gpt.manifest.onnx.decoder.sha256.slice(0, 12)}…`);
  }
  const file = resolve(args['knn-datastore'] ?? join(REPO_ROOT, 'public', 'datastores', 'wikitext-2-train.knn-pca64.rlds'));
  if (!existsSync(file)) fail(`kNN-LM datastore ${file} does not exist: npm run setup:knn builds it (or pass --knn-datastore)`);
  const train = await openKnnFile(file);
  train.checkModel(gpt.manifest);
  const stores = [train];
  if (mode === 'leakage') stores.push(await splitKnnDatastore(gpt, train, stream, splitText));
  progress(`token-aligned neighbours: queries from ${gpt.manifest.id}, ${stores.map((s) => `${s.name} (${s.size.toLocaleString('en')} entries)`).join(' + ')}`);
  return {
    neighbours: alignedWindowNeighbours({
      mode, chunk: hp.chunk!, k, K: hp.neighbours!, neighbourLen: hp.neighbour_len!, eotId: manifest.tokenizer.eot_id, seed, queryModel: gpt, stores,
    }),
    info: { retrieval: 'token-aligned', query_model: gpt.manifest.id, knn_datastore: file, entries: stores.map((s) => s.size) },
  };
}

/** The evaluated split as a kNN-LM datastore in the train datastore's key space (the leakage case). */
async function splitKnnDatastore(gpt: GptModel, train: KnnDatastore, stream: ArrayLike<number>, splitText: string): Promise<KnnDatastore> {
  const pca = train.section.pca;
  const tag = `${args.split}.${gpt.manifest.onnx.decoder.sha256.slice(0, 12)}.${train.section.encoding}${pca ? `-pca${train.section.dim}-${fingerprint(bytesOf(pca.basis))}` : ''}`;
  const cached = join(CACHE_DIR, `wiki.${tag}.knn.rlds`);
  let datastore: KnnDatastore;
  if (!args['no-cache'] && existsSync(cached)) {
    datastore = KnnDatastore.open(new Uint8Array(readFileSync(cached)));
  } else {
    progress(`keying the ${args.split} split for the leakage datastore (once; cached in ${cached}) ...`);
    const t = performance.now();
    const tokenizerJson: unknown = JSON.parse(readFileSync(join(resolve(args.model!), gpt.manifest.tokenizer.file), 'utf8'));
    const built = await buildKnnShard(parseText(splitText, 'wikitext', `wiki.${args.split}.tokens`), {
      name: `WikiText-2 ${args.split}`,
      tokenizer: loadTokenizer(tokenizerJson, { id: gpt.manifest.tokenizer.id }),
      model: gpt,
      encoding: train.section.encoding,
      ...(pca ? { projection: pca } : {}),
      onProgress: (p) => { if (p.phase === 'keys' && p.done % 20000 < 300) progress(`  ${p.done}/${p.total} keys`); },
    });
    progress(`keyed ${built.stats.entries} entries in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    if (!args['no-cache']) {
      mkdirSync(CACHE_DIR, { recursive: true });
      writeFileSync(cached, built.bytes);
    }
    datastore = KnnDatastore.fromShard(built.shard);
  }
  // Its entries must be the evaluated stream itself, or "leakage" would leak something else.
  const values = datastore.section.values;
  if (values.length !== stream.length - 1 || values.some((v, i) => v !== stream[i + 1])) fail(`${cached}: its tokens are not the ${args.split} stream (delete it and rerun)`);
  return datastore;
}

function positiveNumbers(name: string, value: string | undefined, fallback: number): number[] {
  if (value === undefined) return [fallback];
  const list = value.split(',').map((v) => Number(v.trim()));
  if (list.length === 0 || list.some((v) => !Number.isFinite(v) || v < 0)) fail(`--${name} must be a number or a comma-separated list, got ${value}`);
  return list;
}

/** --knnlm: GPT and kNN-LM perplexity from one pass over the windows (src/core/knnlm/eval.ts). */
/** A short name of a kNN-LM setting, for the paired files and the adaptive summary. */
function settingLabel(s: KnnLmSettings): string {
  const parts = [s.lambdaTable ? 'λ by distance' : `λ ${s.lambda}`, `k ${s.k}`, `T ${s.temperature}`];
  if (s.skipAbove) parts.push(`skip ≥ ${s.skipAbove}`);
  return parts.join(', ');
}

async function evalKnnLm(
  model: GptModel,
  stream: ArrayLike<number>,
  words: number,
  started: number,
  maxWindows: number | undefined,
  stride: number,
  modelDir: string,
  articleLengths: number[],
): Promise<void> {
  const manifest = model.manifest;
  const file = args['knn-datastore'];
  if (!file) fail('--knnlm needs --knn-datastore <file.rlds> (npm run datastore -- build-knn)');
  if (!existsSync(file)) fail(`kNN-LM datastore ${file} does not exist`);
  const t0 = performance.now();
  const index = args['knn-index'];
  if (index !== 'exact' && index !== 'ivf') fail('--knn-index must be exact or ivf');
  const nprobe = int('nprobe', args.nprobe);
  const rerank = int('rerank', args.rerank);
  const datastore = await openKnnFile(file, { index, ...(nprobe !== undefined ? { nprobe } : {}), ...(rerank !== undefined ? { rerank } : {}) });
  if (index === 'ivf' && datastore.defaultIndex !== 'ivf') fail(`${file} has no IVF lists: npm run datastore -- build-ivf`);
  datastore.checkModel(manifest);
  const m = datastore.meta;
  const searchIndex = datastore.defaultIndex === 'ivf' ? datastore.ivf! : datastore.index;
  progress(`kNN-LM datastore ${file}: ${datastore.size.toLocaleString('en')} entries, ${m.dim}-d ${m.encoding} keys${m.pcaSample ? ` (PCA from ${m.keyDim})` : ''}, opened in ${((performance.now() - t0) / 1000).toFixed(1)} s (${searchIndex.backend}, ${datastore.defaultIndex} search)`);
  const headline: KnnLmSettings = {
    lambda: Number(args.lambda ?? DEFAULT_KNN_SETTINGS.lambda),
    k: int('k', args.k) ?? DEFAULT_KNN_SETTINGS.k,
    temperature: Number(args.temperature ?? DEFAULT_KNN_SETTINGS.temperature),
  };
  const settings: KnnLmSettings[] = [headline];
  for (const lambda of positiveNumbers('sweep-lambda', args['sweep-lambda'], headline.lambda)) {
    for (const temperature of positiveNumbers('sweep-temperature', args['sweep-temperature'], headline.temperature)) {
      for (const k of positiveNumbers('sweep-k', args['sweep-k'], headline.k)) {
        if (!settings.some((s) => s.lambda === lambda && s.k === k && s.temperature === temperature)) settings.push({ lambda, k, temperature });
      }
    }
  }
  // Adaptive kNN-LM: the headline's k and T with θ and/or the λ table (src/core/knnlm/adaptive.ts).
  let table: LambdaTable | undefined;
  if (args['lambda-table']) table = JSON.parse(readFileSync(args['lambda-table'], 'utf8')) as LambdaTable;
  else if (args['adaptive-lambda']) table = { ...DEFAULT_LAMBDA_TABLE };
  if (table) {
    try {
      validateAdaptive({ lambdaTable: table });
    } catch (error) {
      fail((error as Error).message);
    }
    settings.push({ ...headline, lambdaTable: table });
  }
  const thetas = args['skip-above'] !== undefined ? positiveNumbers('skip-above', args['skip-above'], 0) : [];
  if (thetas.some((t) => !(t > 0 && t <= 1))) fail(`--skip-above takes thresholds in (0, 1], got ${args['skip-above']}`);
  for (const skipAbove of thetas) {
    settings.push({ ...headline, skipAbove });
    if (table) settings.push({ ...headline, skipAbove, lambdaTable: table });
  }
  const fitBuckets = int('fit-adaptive', args['fit-adaptive']);
  if (fitBuckets === 0) fail('--fit-adaptive takes a number of buckets >= 1');
  const fitRecords: FitRecord[] = [];
  // --fit-records: each searched target's log p_LM, log p_kNN (headline k, T), nearest distance and the GPT's top probability
  const dump: number[] | null = args['fit-records'] ? [] : null;
  const paired = args['token-logprobs'] ? settings.map(() => new Float32Array(stream.length - 1).fill(NaN)) : null;
  const pairedGpt = paired ? new Float32Array(stream.length - 1).fill(NaN) : null;

  const hp = manifest.hyperparameters;
  const windowRange = windowRangeArgument();
  const evalStart = performance.now();
  const totals = await evaluateKnnLm(model, datastore, stream, {
    context: hp.context,
    stride,
    ...(maxWindows !== undefined ? { maxWindows } : {}),
    ...(windowRange ? { windowRange } : {}),
    settings,
    ...(args.pointers !== undefined ? { pointers: int('pointers', args.pointers)! } : {}),
    onProgress: windowProgress(evalStart, 10_000),
    ...(fitBuckets || paired || dump
      ? {
          onTarget: (position: number, target: { lm: number; lmTop: number; nearest: number | undefined; knn: Float64Array; mixed: Float64Array }) => {
            if (fitBuckets && target.nearest !== undefined) fitRecords.push({ lm: target.lm, knn: target.knn[0]!, nearest: target.nearest });
            if (dump && target.nearest !== undefined) dump.push(target.lm, target.knn[0]!, target.nearest, target.lmTop);
            if (paired) {
              pairedGpt![position] = target.lm;
              paired.forEach((p, i) => (p[position] = target.mixed[i]!));
            }
          },
        }
      : {}),
  });
  const partial = totals.scored_tokens < stream.length - 1;
  const scoredWords = partial ? (words * totals.scored_tokens) / (stream.length - 1) : words;
  const head = totals.knnlm[0]!;
  if (partial && args['write-metrics']) fail('--write-metrics needs the whole split: merge the parts with npm run eval:merge');
  const result: PerplexityResult & Record<string, unknown> = {
    model: `${manifest.id}+knnlm`,
    split: args.split!,
    windows: totals.windows,
    ...(windowRange ? { window_range: windowRange, total_windows: totals.total_windows, split_tokens: stream.length, split_words: words } : {}),
    scored_tokens: totals.scored_tokens,
    words: Math.round(scoredWords),
    nll: head.nll,
    token_ppl: head.token_ppl,
    word_ppl: Math.exp(head.nll / scoredWords),
    ...(partial ? { word_ppl_estimated: true } : {}),
    settings: head.settings,
    gpt: { nll: totals.lm.nll, token_ppl: totals.lm.token_ppl, word_ppl: Math.exp(totals.lm.nll / scoredWords) },
    sweep: totals.knnlm.map((s) => ({ ...s.settings, nll: s.nll, token_ppl: s.token_ppl, word_ppl: Math.exp(s.nll / scoredWords), ...(s.skipped ? { searches_saved: s.skipped } : {}) })),
    target_in_neighbours: totals.target_in_neighbours,
    ...(settings.some((s) => s.skipAbove || s.lambdaTable)
      ? {
          adaptive: totals.knnlm
            .filter((s) => s.settings.skipAbove || s.settings.lambdaTable)
            .map((s) => ({
              setting: settingLabel(s.settings),
              skip_above: s.settings.skipAbove ?? 0,
              lambda_by_distance: Boolean(s.settings.lambdaTable),
              token_ppl: s.token_ppl,
              vs_plain: s.token_ppl / head.token_ppl - 1,
              searches_saved: s.skipped / Math.max(1, totals.scored_tokens),
            })),
          searches_saved_in_this_run: totals.searches_saved,
        }
      : {}),
    ...(args.pointers !== undefined ? { retomaton: { min_pointers: Number(args.pointers), searches_skipped: totals.searches_skipped, fraction_skipped: totals.searches_skipped / Math.max(1, totals.scored_tokens) } } : {}),
    datastore: { file, name: datastore.name, entries: datastore.size, dim: m.dim, key_dim: m.keyDim, encoding: m.encoding, pca: Boolean(m.pcaSample), built_with: m.model },
    search: { ...totals.search, backend: searchIndex.backend, index: datastore.defaultIndex, ...(datastore.defaultIndex === 'ivf' ? { lists: datastore.ivf!.lists, nprobe: datastore.nprobe, ...(rerank !== undefined ? { rerank } : {}) } : {}) },
    forward_seconds: totals.forward_seconds,
    seconds: (performance.now() - started) / 1000,
    eval_seconds: (performance.now() - evalStart) / 1000,
    backend: model.info.backend.backend,
    stride,
  };
  if (args['write-metrics']) {
    result.wrote_metrics = writeManifestMetric(modelDir, args['write-metrics'], {
      token_ppl: result.token_ppl,
      word_ppl: result.word_ppl,
      scored_tokens: result.scored_tokens,
      words: result.words,
      windows: result.windows,
      ...head.settings,
      datastore: { name: datastore.name, entries: datastore.size, dim: m.dim, encoding: m.encoding },
      measured_by: `npm run eval:study --knnlm (${onnxRuntimeName(model.info.backend.backend)}, int8 graph; exact kNN search)`,
    });
  }
  if (fitBuckets) {
    const fit = fitLambdaTable(fitRecords, fitBuckets);
    result.adaptive_fit = {
      buckets: fitBuckets,
      settings: { k: headline.k, temperature: headline.temperature },
      table: fit.table,
      token_ppl: Math.exp(fit.nll / fitRecords.length),
      constant: { lambda: fit.constant.lambda, token_ppl: Math.exp(fit.constant.nll / fitRecords.length) },
      by_bucket: fit.buckets.map((b) => ({ ...b, to: Number.isFinite(b.to) ? b.to : null, token_ppl: Math.exp(b.nll / Math.max(1, b.count)) })),
      targets: fitRecords.length,
    };
    if (args['write-lambda-table']) writeFileSync(args['write-lambda-table'], `${JSON.stringify(fit.table)}\n`);
  }
  if (dump) {
    writeFileSync(args['fit-records']!, new Uint8Array(Float32Array.from(dump).buffer));
    result.fit_records = { file: args['fit-records'], targets: dump.length / 4, k: headline.k, temperature: headline.temperature };
  }
  if (paired) {
    const prefix = resolve(args['token-logprobs']!);
    const write = (file: string, logprobs: Float32Array, model: string, tokenPpl: number) => {
      writeFileSync(file, new Uint8Array(logprobs.buffer));
      writeFileSync(`${file}.json`, JSON.stringify({ model, split: args.split, context: hp.context, stride, windows: totals.windows, token_ppl: tokenPpl, article_lengths: articleLengths }));
      return file;
    };
    result.token_logprobs = [
      write(`${prefix}.gpt.f32`, pairedGpt!, manifest.id, totals.lm.token_ppl),
      ...paired.map((p, i) => write(`${prefix}.${i}.f32`, p, `${manifest.id}+knnlm (${settingLabel(totals.knnlm[i]!.settings)})`, totals.knnlm[i]!.token_ppl)),
    ];
  }
  await model.dispose();
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  process.exit(1);
});
