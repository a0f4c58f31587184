/**
 * `npm run eval -- --icralm`: In-Context RALM perplexity (src/core/icralm) of a GPT on a WikiText-2
 * split, with passages from the chunk datastore RETRO's eval uses (same embedder, same flat index).
 * `npm run eval -- --replug [--replug-k 4] [--replug-temperature 0.1]`: REPLUG's (src/core/replug),
 * the same blocks and passages, k per retrieval. cli/eval.ts parses the arguments and hands over here.
 *
 *   npm run eval -- --model public/models/gpt-wt2 --split valid|test --icralm [--icralm-stride 4] [--icralm-query 32]
 *        [--icralm-separator newline|eot|none] [--datastore <shard | wiki.*.tokens>] [--embedder public/models/retro-wt2]
 *        [--max-windows N | --max-tokens N] [--batch 4] [--no-baseline] [--write-metrics wt2_test_icralm]
 *
 * --max-windows N scores exactly the targets the plain eval scores in its first N windows, and the
 * GPT's perplexity on those targets is printed next to it (one forward per window, cheap).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ModelManifest } from '../src/protocol/manifest';
import type { PerplexityResult } from '../src/protocol/model';
import type { Datastore } from '../src/core/datastore/datastore';
import { evaluatePerplexity, streamWindows } from '../src/core/eval/perplexity';
import { datastorePassagesRetriever, datastoreRetriever, DEFAULT_ICRALM_SETTINGS, evaluateIcRalm, SEPARATOR_KINDS, separatorTokens, type SeparatorKind } from '../src/core/icralm';
import { DEFAULT_REPLUG_SETTINGS, evaluateReplug } from '../src/core/replug';
import type { GptModel } from '../src/core/models';
import { MeanEmbedder } from '../src/core/retrieval/embedder';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import type { RetroTokenizer } from '../src/core/tokenizer';
import { writeManifestMetric } from './metrics';
import { onnxRuntimeName } from './backend';

export interface IcRalmCliOptions {
  model: GptModel;
  modelDir: string;
  tokenizer: RetroTokenizer;
  stream: ArrayLike<number>;
  words: number;
  split: string;
  started: number;
  stride?: number;
  queryLength?: number;
  separator: string;
  maxWindows?: number;
  maxTokens?: number;
  batch: number;
  baseline: boolean;
  /** Model directory whose manifest names the retrieval embedder (default: a sibling model that has one). */
  embedderDir?: string;
  datastorePath: string;
  writeMetrics?: string;
  /** REPLUG instead of In-Context RALM: k passages per retrieval, weights softmax(similarity / τ) */
  replug?: { k?: number; temperature?: number };
  openDatastore: (path: string, tokenizer: RetroTokenizer, embedder: MeanEmbedder, manifest: ModelManifest) => Promise<{ datastore: Datastore; source: string }>;
  progress: (message: string) => void;
  fail: (message: string) => never;
}

/** The retrieval embedder: the GPT reads passages, but RETRO's manifest is the one that ships the embedder. */
function findEmbedderDir(modelDir: string, given: string | undefined, fail: (m: string) => never): string {
  if (given) return given;
  const parent = dirname(modelDir);
  const index = join(parent, 'index.json');
  const ids = existsSync(index) ? ((JSON.parse(readFileSync(index, 'utf8')) as { models?: string[] }).models ?? []) : [];
  for (const id of ids) {
    const manifest = join(parent, id, 'manifest.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as ModelManifest).embedder) return join(parent, id);
  }
  return fail(`no model next to ${basename(modelDir)} ships a retrieval embedder: pass --embedder <model dir>`);
}

export async function runIcRalmEval(o: IcRalmCliOptions): Promise<void> {
  const { model, stream, words, progress, fail } = o;
  const manifest = model.manifest;
  const context = manifest.hyperparameters.context;
  if (o.maxWindows !== undefined && o.maxTokens !== undefined) fail('give --max-windows or --max-tokens, not both');
  if (o.writeMetrics && o.maxTokens !== undefined) fail('--write-metrics needs the whole split (no --max-tokens)');
  if (!SEPARATOR_KINDS.includes(o.separator as SeparatorKind)) fail(`--icralm-separator must be one of ${SEPARATOR_KINDS.join(', ')}`);
  const settings = { stride: o.stride ?? DEFAULT_ICRALM_SETTINGS.stride, queryLength: o.queryLength ?? DEFAULT_ICRALM_SETTINGS.queryLength };

  const embedderDir = findEmbedderDir(o.modelDir, o.embedderDir, fail);
  const embedderFiles = nodeModelFiles(embedderDir);
  const embedderManifest = JSON.parse(await embedderFiles.text('manifest.json')) as ModelManifest;
  const spec = embedderManifest.embedder;
  if (!spec) return fail(`${embedderDir}: manifest has no embedder`);
  if (embedderManifest.tokenizer.id !== manifest.tokenizer.id) fail(`${embedderDir} uses tokenizer ${embedderManifest.tokenizer.id}, the GPT ${manifest.tokenizer.id}`);
  const embedder = MeanEmbedder.fromBytes(await embedderFiles.bytes(spec.file), spec.vocab_size, spec.dim, spec.id);
  const { datastore, source } = await o.openDatastore(o.datastorePath, o.tokenizer, embedder, embedderManifest);
  const eotId = manifest.tokenizer.eot_id;
  const separator = separatorTokens(o.separator as SeparatorKind, (t) => o.tokenizer.encode(t), eotId);

  // --max-windows N: the targets of the plain eval's first N windows (docs/manifest.md protocol).
  let maxTokens = o.maxTokens;
  if (o.maxWindows !== undefined) {
    const windows = streamWindows(stream.length, context, 128, o.maxWindows);
    const last = windows[windows.length - 1];
    maxTokens = last ? last.start + last.length - 1 : 0;
  }
  const total = Math.min(stream.length - 1, maxTokens ?? Infinity);
  const replug = o.replug ? { ...settings, k: o.replug.k ?? DEFAULT_REPLUG_SETTINGS.k, temperature: o.replug.temperature ?? DEFAULT_REPLUG_SETTINGS.temperature } : null;
  const method = replug ? `REPLUG (k = ${replug.k}, τ = ${replug.temperature})` : 'In-Context RALM';
  progress(`${method}: s = ${settings.stride}, l = ${settings.queryLength}, separator ${o.separator} [${separator.join(',')}], ${total} targets, ${Math.ceil(total / settings.stride) * (replug?.k ?? 1)} forwards; datastore ${source} (${datastore.chunkCount} chunks)`);

  const evalStart = performance.now();
  // CPU time as well as wall time: on a shared machine the wall clock also counts waiting for a core.
  const cpuStart = process.cpuUsage();
  let lastReport = 0;
  const onProgress = (scored: number, all: number) => {
    const now = performance.now();
    if (now - lastReport > 10_000 || scored === all) {
      lastReport = now;
      const rate = scored / ((now - evalStart) / 1000);
      progress(`${scored}/${all} tokens, ${rate.toFixed(1)} tokens/s, ~${((all - scored) / rate / 60).toFixed(1)} min left`);
    }
  };
  const limit = maxTokens !== undefined ? { maxTokens } : {};
  const result = replug
    ? await evaluateReplug(model, stream, { settings: replug, separator, retrieve: datastorePassagesRetriever(datastore, { eotId }), ...limit, onProgress })
    : await evaluateIcRalm(model, stream, { settings, separator, retrieve: datastoreRetriever(datastore, { eotId }), batch: o.batch, ...limit, onProgress });
  const evalSeconds = (performance.now() - evalStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const partial = result.scored_tokens < stream.length - 1;
  const scoredWords = partial ? (words * result.scored_tokens) / (stream.length - 1) : words;

  // The plain GPT on the same targets, when they are a whole number of eval windows.
  let gpt: Record<string, number> | undefined;
  if (o.baseline && o.maxTokens === undefined) {
    const t = performance.now();
    const base = await evaluatePerplexity(model, stream, { context, stride: 128, batch: o.batch, ...(o.maxWindows !== undefined ? { maxWindows: o.maxWindows } : {}) });
    if (base.scored_tokens !== result.scored_tokens) fail(`baseline scored ${base.scored_tokens} targets, In-Context RALM ${result.scored_tokens}`);
    gpt = { nll: base.nll, token_ppl: base.token_ppl, word_ppl: Math.exp(base.nll / scoredWords), seconds: (performance.now() - t) / 1000 };
  }

  const datastoreInfo = { source, name: datastore.shard.meta.name, chunks: datastore.chunkCount, documents: datastore.documentCount, embedder: spec.id };
  const out: PerplexityResult & Record<string, unknown> = {
    model: `${manifest.id}+${replug ? 'replug' : 'icralm'}`,
    split: o.split,
    windows: o.maxWindows ?? streamWindows(stream.length, context, 128).length,
    scored_tokens: result.scored_tokens,
    words: Math.round(scoredWords),
    nll: result.nll,
    token_ppl: result.token_ppl,
    word_ppl: Math.exp(result.nll / scoredWords),
    ...(partial ? { word_ppl_estimated: true } : {}),
    settings: { stride: settings.stride, query_length: settings.queryLength, separator: o.separator, separator_ids: separator, ...(replug ? { k: replug.k, temperature: replug.temperature } : {}) },
    ...(gpt ? { gpt } : {}),
    datastore: datastoreInfo,
    blocks: result.blocks,
    ...('forwards' in result ? { forwards: result.forwards, forwards_per_token: result.forwards / Math.max(1, result.scored_tokens), mean_top_weight: result.mean_top_weight } : { retrieved: result.retrieved, mean_history: result.mean_history }),
    forward_seconds: result.forward_seconds,
    retrieval_seconds: result.retrieval_seconds,
    ms_per_token: (evalSeconds * 1000) / Math.max(1, result.scored_tokens),
    cpu_ms_per_token: (cpuSeconds * 1000) / Math.max(1, result.scored_tokens),
    eval_cpu_seconds: cpuSeconds,
    seconds: (performance.now() - o.started) / 1000,
    eval_seconds: evalSeconds,
    backend: model.info.backend.backend,
    batch: o.batch,
  };
  if (o.writeMetrics) {
    if (partial) fail('--write-metrics needs the whole split (no --max-windows or --max-tokens)');
    const onnx = onnxRuntimeName(model.info.backend.backend);
    out.wrote_metrics = writeManifestMetric(o.modelDir, o.writeMetrics, {
      token_ppl: out.token_ppl,
      word_ppl: out.word_ppl,
      stride: settings.stride,
      query_length: settings.queryLength,
      separator: o.separator,
      ...(replug ? { k: replug.k, temperature: replug.temperature, forwards_per_token: out.forwards_per_token } : {}),
      scored_tokens: out.scored_tokens,
      words: out.words,
      datastore: { name: datastoreInfo.name, chunks: datastoreInfo.chunks, documents: datastoreInfo.documents, embedder: spec.id },
      ...(gpt ? { gpt_token_ppl: gpt.token_ppl } : {}),
      measured_by: replug
        ? `npm run eval --replug (${onnx}, int8 graph; top-${replug.k} chunks, flat index)`
        : `npm run eval --icralm (${onnx}, int8 graph; top-1 chunk, flat index)`,
    });
  }
  await model.dispose();
  console.log(JSON.stringify(out));
}
