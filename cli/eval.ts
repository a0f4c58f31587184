/**
 * `npm run eval`: perplexity of the shipped models on a WikiText-2 split, by the protocol of
 * docs/manifest.md, run by the app's own engines in Node (cli/engines-node.ts): the models the
 * browser loads, the datastores it stores, the neighbours and passages it retrieves, and
 * `InferenceEngine.evaluate` (src/core/engine/evaluate.ts). Studies beyond what the app does
 * (leakage, other query models or datastore files) are `npm run eval:study` (cli/eval-study.ts).
 *
 *   npm run eval -- --model public/models/gpt-wt2 --split test
 *   npm run eval -- --model public/models/retro-wt2 --split test [--neighbours real|random|none] [--k 2] [--seed 0]
 *        (token-aligned RETRO reads the kNN-LM keys of the active datastore, as in the app)
 *   npm run eval -- --model public/models/gpt-wt2 --split test --knnlm [--lambda 0.25] [--k 1024] [--temperature 1]
 *        [--sweep-lambda 0.1,0.25] [--sweep-temperature 1,10] [--sweep-k 64,1024] [--pointers N]
 *        [--skip-above θ] [--adaptive-lambda] [--knn-search ivf|exact]   (adaptive kNN-LM, docs/adaptive-knnlm.md, as the app's switches;
 *        fitting tables and several θ at once: npm run eval:study)
 *        [--sweep-fraction 0.01,0.03,0.1,0.3,1]   (the headline λ, k, T on the datastore's first entries: the data-size curve, docs/curves.md)
 *   npm run eval -- --model public/models/gpt-wt2 --split test --icralm [--icralm-stride 4] [--icralm-query 32]
 *        [--sweep-stride 4,8,16,32,64]   (one pass per stride on the same targets, the GPT alone on them: the stride curve, docs/curves.md)
 *   npm run eval -- --model public/models/gpt-wt2 --split test --replug [--replug-k 4] [--replug-temperature 0.1]
 *        [--icralm-stride 4] [--icralm-query 32]
 *   npm run eval -- --model public/models/gpt-wt2 --split test --rag-sequence [--replug-k 4] [--replug-temperature 0.1]
 *        [--rag-span 32] [--icralm-query 32]   (RAG-Sequence over sequences of --rag-span tokens, docs/rag-sequence.md)
 *   npm run eval -- --model public/models/gpt-wt2 --split test --flare [--flare-lookahead 8] [--flare-threshold θ]
 *        [--flare-mask β] [--icralm-query 32]   (FLARE, docs/flare.md)
 *        (In-Context RALM, REPLUG: --retriever dense|bm25, the passages' retriever, dense by default; docs/bm25.md)
 *   --knnlm, --icralm, --replug, --flare take --neighbours real|random too: random is the random-neighbour control
 *        (k entries or passages drawn at random, seeded by each query; docs/controls.md)
 *   options: --datastore <built-in id | file.rlds | wiki.*.tokens> (default: the app's first built-in, WikiText-2 train)
 *            --knn-datastore public/datastores/wikitext-2-train.knn-pca64.rlds (accepted: the built-in keys, which the engines load anyway)
 *            --max-windows N  --windows a:b (a part, for npm run eval:merge; the plain eval, kNN-LM, FLARE)  --batch B (4)  --threads T (1)
 *            --backend cpu|wasm  (cpu: onnxruntime-node, ~3x faster than the app's wasm kernels, logits within ~1e-5)
 *            --write-metrics <key>  (full runs only: writes {token_ppl, word_ppl, ...} into manifest.json)
 *            --token-logprobs <file.f32>  (each target's log-probability, for npm run eval:paired)
 *            --no-baseline  (In-Context RALM, REPLUG, FLARE, RAG-Sequence: skip the GPT on the same targets)
 *
 * Prints one JSON object on stdout; progress goes to stderr.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { EvalRequest, EvalResult, KnnLmSettings, ModelKey, RetrieverKind } from '../src/protocol/api';
import { DEFAULT_ICRALM_SETTINGS } from '../src/core/icralm/types';
import { DEFAULT_KNN_SETTINGS } from '../src/core/knnlm/types';
import { DEFAULT_LAMBDA_TABLE } from '../src/core/knnlm/adaptive';
import { DEFAULT_REPLUG_SETTINGS } from '../src/core/replug/types';
import { DEFAULT_RAG_SEQUENCE_SETTINGS } from '../src/core/ragseq/types';
import { DEFAULT_FLARE_SETTINGS } from '../src/core/flare/types';
import { EVAL_STRIDE } from '../src/core/engine/evaluate';
import { dataDir, progressLines, REPO_ROOT } from './datastore-node';
import { onnxRuntimeName, parseBackend } from './backend';
import { startEngines, type NodeEngines } from './engines-node';
import { writeManifestMetric } from './metrics';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    split: { type: 'string', default: 'test' },
    data: { type: 'string', default: join(dataDir(), 'wikitext-2') },
    neighbours: { type: 'string' },
    datastore: { type: 'string' },
    k: { type: 'string' },
    seed: { type: 'string', default: '0' },
    'max-windows': { type: 'string' },
    windows: { type: 'string' },
    batch: { type: 'string', default: '4' },
    threads: { type: 'string', default: '1' },
    backend: { type: 'string', default: 'cpu' },
    'write-metrics': { type: 'string' },
    'token-logprobs': { type: 'string' },
    knnlm: { type: 'boolean', default: false },
    lambda: { type: 'string' },
    temperature: { type: 'string' },
    'sweep-lambda': { type: 'string' },
    'sweep-temperature': { type: 'string' },
    'sweep-k': { type: 'string' },
    'sweep-fraction': { type: 'string' },
    'sweep-stride': { type: 'string' },
    pointers: { type: 'string' },
    'skip-above': { type: 'string' },
    'adaptive-lambda': { type: 'boolean', default: false },
    'knn-search': { type: 'string' },
    icralm: { type: 'boolean', default: false },
    replug: { type: 'boolean', default: false },
    'rag-sequence': { type: 'boolean', default: false },
    'rag-span': { type: 'string' },
    flare: { type: 'boolean', default: false },
    'flare-lookahead': { type: 'string' },
    'flare-threshold': { type: 'string' },
    'flare-mask': { type: 'string' },
    'replug-k': { type: 'string' },
    'replug-temperature': { type: 'string' },
    'icralm-stride': { type: 'string' },
    'icralm-query': { type: 'string' },
    retriever: { type: 'string', default: 'dense' },
    'no-baseline': { type: 'boolean', default: false },
    'knn-datastore': { type: 'string' },
  },
});

function fail(message: string): never {
  console.error(`eval: ${message}`);
  process.exit(2);
}

function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

function numbers(name: string, value: string | undefined): number[] {
  if (value === undefined) return [];
  const list = value.split(',').map((v) => Number(v.trim()));
  if (list.some((v) => !Number.isFinite(v) || v < 0)) fail(`--${name} must be a number or a comma-separated list, got ${value}`);
  return list;
}

const progress = (message: string) => process.stderr.write(`${message}\n`);

/** A line on stderr at most every `everyMs`: targets or windows done, rate, time left. */
function progressReporter(unit: string, everyMs: number): (done: number, total: number) => void {
  const started = performance.now();
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (now - last < everyMs && done !== total) return;
    last = now;
    const rate = done / Math.max(1e-3, (now - started) / 1000);
    progress(`${done}/${total} ${unit}, ${rate.toFixed(2)} ${unit}/s, ~${((total - done) / rate / 60).toFixed(1)} min left`);
  };
}

/** The model directory's manifest id, and which column of the app it is. */
function evaluatedModel(engines: NodeEngines, dir: string): { key: ModelKey; id: string } {
  const id = (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { id: string }).id;
  const loaded = engines.ready.models.find((m) => m.id === id);
  if (!loaded) fail(`${dir} (${id}) is not one of the app's models (public/models/index.json): ${engines.ready.models.map((m) => m.id).join(', ')}; evaluate others with npm run eval:study`);
  const method = args.knnlm ? 'knnlm' : args.icralm ? 'icralm' : args.replug ? 'replug' : args.flare ? 'flare' : args['rag-sequence'] ? 'ragseq' : null;
  if ([args.knnlm, args.icralm, args.replug, args.flare, args['rag-sequence']].filter(Boolean).length > 1) fail('give one of --knnlm, --icralm, --replug, --flare, --rag-sequence');
  if (method && loaded.key !== 'gpt') fail(`--${method} wraps the GPT; ${id} is ${loaded.architecture}`);
  return { key: method ?? loaded.key, id };
}

/** --datastore: a built-in id, a shard file (imported) or a WikiText file (built as the app builds); made active. */
async function chooseDatastore(engines: NodeEngines): Promise<string | null> {
  const given = args.datastore;
  const { retrieval } = engines;
  if (!given) return engines.state.activeId;
  if (engines.state.datastores.some((d) => d.id === given)) return (await retrieval.setActive(given)).activeId;
  if (!existsSync(given)) fail(`--datastore ${given} is neither a stored datastore (${engines.state.datastores.map((d) => d.id).join(', ')}) nor a file`);
  const file = new File([readFileSync(given)], basename(given));
  if (given.endsWith('.rlds')) {
    const { imported } = await retrieval.importFile(file);
    return (await retrieval.setActive(imported.id)).activeId;
  }
  progress(`building a datastore from ${given} (as the app builds one) ...`);
  const { built } = await retrieval.build({ name: basename(given), files: [file], format: given.endsWith('.tokens') ? 'wikitext' : undefined }, progressLines(progress, 10_000));
  return (await retrieval.setActive(built.id)).activeId;
}

async function main(): Promise<void> {
  if (!args.model) fail('usage: npm run eval -- --model public/models/<id> [--split test|valid] [--knnlm | --icralm | --replug | --flare] [--max-windows N]');
  if (args.neighbours === 'leakage') fail('--neighbours leakage is a study: npm run eval:study -- --neighbours leakage');
  // The keys are the app's (the built-in kNN-LM datastore); other key files are a study's.
  if (args['knn-datastore'] && resolve(args['knn-datastore']) !== resolve(REPO_ROOT, 'public', 'datastores', 'wikitext-2-train.knn-pca64.rlds')) {
    fail(`--knn-datastore ${args['knn-datastore']}: npm run eval reads the app's kNN-LM keys (the built-in ones, or those of --datastore); other files: npm run eval:study`);
  }
  const maxWindows = int('max-windows', args['max-windows']);
  const range = windowRange();
  if (args['write-metrics'] && (maxWindows !== undefined || range)) fail('--write-metrics needs a full run: merge parts with npm run eval:merge');
  const splitPath = join(resolve(args.data!), `wiki.${args.split}.tokens`);
  if (!existsSync(splitPath)) fail(`${splitPath} does not exist (set --data or RETROLAB_DATA)`);
  const text = readFileSync(splitPath, 'utf8');

  const started = performance.now();
  const engines = await startEngines({ threads: int('threads', args.threads) || 1, backend: parseBackend(args.backend), onProgress: (p) => p.finished && p.kind !== 'model' && progress(`${p.label}: done`) });
  try {
    const modelDir = resolve(args.model);
    const { key, id } = evaluatedModel(engines, modelDir);
    // kNN-LM, In-Context RALM and REPLUG retrieve too: `random` is their random-neighbour control (docs/controls.md).
    const retrieves = key === 'knnlm' || key === 'icralm' || key === 'replug' || key === 'flare';
    const neighbours = key === 'retro' || retrieves ? (args.neighbours ?? 'real') : 'none';
    if (!['real', 'random', 'none'].includes(neighbours)) fail(`--neighbours must be real, random or none, got ${neighbours}`);
    if (retrieves && neighbours === 'none') fail(`--neighbours none: ${key} without retrieval is the GPT (run the GPT)`);
    if (key === 'gpt' && args.neighbours && args.neighbours !== 'none') fail(`${id} is a GPT: it takes no neighbours (add --knnlm, --icralm or --replug for a retrieval method)`);
    const random = neighbours === 'random';
    const datastoreId = key === 'gpt' || (key === 'retro' && neighbours === 'none') ? null : await chooseDatastore(engines);
    // The engines choose the keys, as in the app (RetrievalState.knn): the active datastore's own, or the built-in ones.
    if (key === 'knnlm') {
      const loaded = await engines.inference.loadKnnFor('knnlm', progressLines(progress, 10_000));
      if (!loaded) fail('kNN-LM needs kNN-LM keys: npm run setup:knn builds the built-in ones');
      loadedKnnIndex = loaded.index;
      loadedKnnEntries = loaded.entries;
    }
    const tokenAligned = engines.ready.models.some((m) => m.key === 'retro' && m.tokenAligned);
    if (key === 'retro' && neighbours !== 'none' && tokenAligned && !(await engines.inference.loadKnnFor('retro', progressLines(progress, 10_000)))) {
      fail(`RETRO retrieves with the kNN-LM keys of the active datastore “${datastoreId}”, which has none: npm run setup:knn builds those of WikiText-2 train`);
    }
    const knn: EvalRequest['knn'] = {
      lambda: Number(args.lambda ?? DEFAULT_KNN_SETTINGS.lambda),
      k: key === 'knnlm' ? (int('k', args.k) ?? DEFAULT_KNN_SETTINGS.k) : DEFAULT_KNN_SETTINGS.k,
      temperature: Number(args.temperature ?? DEFAULT_KNN_SETTINGS.temperature),
      ...(args.pointers !== undefined ? { pointers: int('pointers', args.pointers)! } : {}),
      ...(args['skip-above'] !== undefined ? { skipAbove: Number(args['skip-above']) } : {}),
      ...(args['adaptive-lambda'] ? { lambdaTable: { ...DEFAULT_LAMBDA_TABLE } } : {}),
      ...(args['knn-search'] !== undefined ? { search: args['knn-search'] as 'exact' | 'ivf' } : {}),
      ...(key === 'knnlm' && random ? { randomNeighbours: true } : {}),
    };
    if (knn.search !== undefined && knn.search !== 'exact' && knn.search !== 'ivf') fail(`--knn-search takes ivf or exact, got ${args['knn-search']}`);
    if (knn.skipAbove !== undefined && !(knn.skipAbove > 0 && knn.skipAbove <= 1)) fail(`--skip-above takes a threshold in (0, 1], got ${args['skip-above']}`);
    knn.sweep = sweep(knn);
    const retriever: RetrieverKind = args.retriever === 'bm25' ? 'bm25' : args.retriever === 'dense' ? 'dense' : fail(`--retriever takes dense or bm25, got ${args.retriever}`);
    const passageSettings = {
      stride: int('icralm-stride', args['icralm-stride']) ?? DEFAULT_ICRALM_SETTINGS.stride,
      queryLength: int('icralm-query', args['icralm-query']) ?? DEFAULT_ICRALM_SETTINGS.queryLength,
      retriever,
      ...(random && (key === 'icralm' || key === 'replug' || key === 'flare') ? { randomNeighbours: true } : {}),
    };
    const strides = numbers('sweep-stride', args['sweep-stride']);
    if (strides.length && key !== 'icralm') fail('--sweep-stride is In-Context RALM’s: add --icralm');
    if (args['sweep-fraction'] !== undefined && key !== 'knnlm') fail('--sweep-fraction is kNN-LM’s: add --knnlm');
    const retroK = int('k', args.k) ?? engines.ready.models.find((m) => m.key === 'retro')?.neighbours ?? 2;
    const request: EvalRequest = {
      text,
      model: key,
      retro: { retrieval: neighbours !== 'none', k: retroK, random: neighbours === 'random', seed: int('seed', args.seed)! },
      knn,
      icralm: { ...passageSettings, ...(strides.length ? { strides } : {}) },
      replug: {
        ...passageSettings,
        k: int('replug-k', args['replug-k']) ?? DEFAULT_REPLUG_SETTINGS.k,
        temperature: args['replug-temperature'] !== undefined ? Number(args['replug-temperature']) : DEFAULT_REPLUG_SETTINGS.temperature,
      },
      ragSequence: {
        k: int('replug-k', args['replug-k']) ?? DEFAULT_RAG_SEQUENCE_SETTINGS.k,
        temperature: args['replug-temperature'] !== undefined ? Number(args['replug-temperature']) : DEFAULT_RAG_SEQUENCE_SETTINGS.temperature,
        span: int('rag-span', args['rag-span']) ?? DEFAULT_RAG_SEQUENCE_SETTINGS.span,
        queryLength: passageSettings.queryLength,
      },
      flare: {
        lookahead: int('flare-lookahead', args['flare-lookahead']) ?? DEFAULT_FLARE_SETTINGS.lookahead,
        threshold: args['flare-threshold'] !== undefined ? Number(args['flare-threshold']) : DEFAULT_FLARE_SETTINGS.threshold,
        maskBelow: args['flare-mask'] !== undefined ? Number(args['flare-mask']) : DEFAULT_FLARE_SETTINGS.maskBelow,
        queryLength: int('icralm-query', args['icralm-query']) ?? DEFAULT_FLARE_SETTINGS.queryLength,
        ...(random && key === 'flare' ? { randomNeighbours: true } : {}),
      },
      batch: int('batch', args.batch) || 4,
      ...(maxWindows !== undefined ? { maxWindows } : {}),
      ...(range ? { windows: range } : {}),
    };
    const passages = key === 'icralm' || key === 'replug' || key === 'flare' || key === 'ragseq';
    // BM25's index is built on its first search: built here, so its time is reported apart from the eval's.
    let bm25BuildSeconds: number | undefined;
    if (passages && retriever === 'bm25') {
      const t0 = performance.now();
      await engines.retrieval.retrieveText('index', 1, [], 'bm25', (p) => {
        if (p.finished) console.error(`${p.label}: ${p.done} chunks`);
      });
      bm25BuildSeconds = (performance.now() - t0) / 1000;
    }
    const evalStarted = performance.now();
    const result = await engines.inference.evaluate(request, progressReporter(passages ? 'tokens' : 'windows', 10_000));
    const evalSeconds = (performance.now() - evalStarted) / 1000;
    // A stride sweep scored the GPT on the same targets already.
    const baseline = passages && !args['no-baseline'] && !result.icralm ? await engines.inference.evaluate({ ...request, model: 'gpt' }, () => undefined) : null;
    const out = report(result, id, neighbours, request, baseline, (performance.now() - started) / 1000, evalSeconds, engines.ready.backend.backend, range);
    if (bm25BuildSeconds !== undefined) out.bm25_build_seconds = bm25BuildSeconds;
    if (args['write-metrics']) out.wrote_metrics = writeManifestMetric(modelDir, args['write-metrics'], metrics(out, result, key, request));
    if (args['token-logprobs']) {
      const file = resolve(args['token-logprobs']);
      writeFileSync(file, new Uint8Array(result.logProbs.buffer, result.logProbs.byteOffset, result.logProbs.byteLength));
      // The articles let eval:paired resample whole articles; the rest lets it refuse unlike runs.
      writeFileSync(`${file}.json`, JSON.stringify({
        model: out.model, split: args.split, ...(key === 'retro' ? { neighbours, k: retroK } : {}), context: engines.ready.models[0]!.context, stride: EVAL_STRIDE,
        windows: result.windows, token_ppl: result.tokenPpl, article_lengths: result.articleLengths,
      }));
      out.token_logprobs = file;
    }
    console.log(JSON.stringify(out));
  } finally {
    await engines.dispose();
  }
}

function windowRange(): { start: number; end: number } | undefined {
  if (!args.windows) return undefined;
  const m = /^(\d+):(\d+)$/.exec(args.windows);
  if (!m) fail(`--windows takes start:end (window indices, end excluded), got ${args.windows}`);
  return { start: Number(m[1]), end: Number(m[2]) };
}

/** The headline and every combination of --sweep-lambda, --sweep-temperature, --sweep-k (the headline's value where one is not given). */
function sweep(head: KnnLmSettings): KnnLmSettings[] {
  const lambdas = numbers('sweep-lambda', args['sweep-lambda']);
  const temperatures = numbers('sweep-temperature', args['sweep-temperature']);
  const ks = numbers('sweep-k', args['sweep-k']);
  // The data-size curve: the headline's λ, k, T on each prefix (fraction 1 is the headline itself).
  const fractions = numbers('sweep-fraction', args['sweep-fraction'])
    .filter((f) => f !== 1)
    .map((fraction) => ({ lambda: head.lambda, k: head.k, temperature: head.temperature, fraction }));
  if (!lambdas.length && !temperatures.length && !ks.length) return fractions;
  const out: KnnLmSettings[] = [...fractions];
  for (const lambda of lambdas.length ? lambdas : [head.lambda]) {
    for (const temperature of temperatures.length ? temperatures : [head.temperature]) {
      for (const k of ks.length ? ks : [head.k]) {
        // An adaptive headline (θ, λ table) differs from the plain setting with its λ, k and T: that one is kept.
        const adaptiveHead = Boolean(head.skipAbove || head.lambdaTable);
        const same = (s: KnnLmSettings) => s.lambda === lambda && s.k === k && s.temperature === temperature;
        if ((adaptiveHead || !same(head)) && !out.some(same)) out.push({ lambda, k, temperature });
      }
    }
  }
  return out;
}

/** The JSON line: the fields npm run eval:merge, eval:paired and the docs read. */
function report(
  r: EvalResult,
  id: string,
  neighbours: string,
  request: EvalRequest,
  baseline: EvalResult | null,
  seconds: number,
  evalSeconds: number,
  backend: string,
  range: { start: number; end: number } | undefined,
): Record<string, unknown> {
  const scoredWords = (r.words * r.scoredTokens) / (r.tokens - 1);
  const words = r.wordPplEstimated ? scoredWords : r.words;
  const key = request.model;
  return {
    model: key === 'knnlm' || key === 'icralm' || key === 'replug' || key === 'flare' || key === 'ragseq' ? `${id}+${key === 'ragseq' ? 'rag_sequence' : key}` : id,
    split: args.split,
    ...(key === 'retro' ? { neighbours, k: request.retro.k, ...(neighbours === 'random' ? { seed: request.retro.seed } : {}) } : {}),
    ...(key === 'knnlm' || key === 'icralm' || key === 'replug' || key === 'flare' ? { neighbours } : {}),
    windows: r.windows,
    ...(range ? { window_range: range, total_windows: r.totalWindows, split_tokens: r.tokens, split_words: r.words } : {}),
    scored_tokens: r.scoredTokens,
    words: Math.round(words),
    nll: r.nll,
    token_ppl: r.tokenPpl,
    word_ppl: r.wordPpl,
    ...(r.wordPplEstimated ? { word_ppl_estimated: true } : {}),
    ...(key === 'knnlm' && r.knnlm
      ? {
          settings: {
            lambda: request.knn.lambda,
            k: request.knn.k,
            temperature: request.knn.temperature,
            ...(request.knn.skipAbove ? { skip_above: request.knn.skipAbove } : {}),
            ...(request.knn.lambdaTable ? { lambda_table: request.knn.lambdaTable } : {}),
            search: knnSearch(request),
          },
          gpt: { nll: r.knnlm.gpt.nll, token_ppl: r.knnlm.gpt.tokenPpl, word_ppl: Math.exp(r.knnlm.gpt.nll / words) },
          sweep: r.knnlm.sweep.map((s) => ({ ...s.settings, nll: s.nll, token_ppl: s.tokenPpl, word_ppl: Math.exp(s.nll / words) })),
          target_in_neighbours: r.knnlm.targetInNeighbours,
          ...(r.knnlm.sweep.some((s) => s.settings.fraction !== undefined)
            ? {
                fraction_curve: r.knnlm.sweep
                  .filter((s, i) => i === 0 || s.settings.fraction !== undefined)
                  .map((s) => ({ fraction: s.settings.fraction ?? 1, entries: loadedKnnEntries === null ? null : Math.ceil((s.settings.fraction ?? 1) * loadedKnnEntries), token_ppl: s.tokenPpl, word_ppl: Math.exp(s.nll / words) }))
                  .sort((a, b) => a.fraction - b.fraction),
              }
            : {}),
          ...(request.knn.skipAbove ? { adaptive: { skip_above: request.knn.skipAbove, searches_saved: r.knnlm.searchesSaved, fraction_saved: r.knnlm.searchesSaved / Math.max(1, r.scoredTokens) } } : {}),
          ...(request.knn.pointers !== undefined
            ? { retomaton: { min_pointers: request.knn.pointers, searches_skipped: r.knnlm.searchesSkipped, fraction_skipped: r.knnlm.searchesSkipped / Math.max(1, r.scoredTokens) } }
            : {}),
        }
      : {}),
    ...(key === 'icralm' ? { settings: { stride: request.icralm.stride, query_length: request.icralm.queryLength, separator: 'newline', retriever: request.icralm.retriever ?? 'dense' } } : {}),
    ...(key === 'replug' ? { settings: { stride: request.replug.stride, query_length: request.replug.queryLength, separator: 'newline', k: request.replug.k, temperature: request.replug.temperature, retriever: request.replug.retriever ?? 'dense' } } : {}),
    ...(key === 'ragseq' && request.ragSequence ? { settings: { span: request.ragSequence.span, query_length: request.ragSequence.queryLength, separator: 'newline', k: request.ragSequence.k, temperature: request.ragSequence.temperature } } : {}),
    ...(key === 'flare' && request.flare
      ? { settings: { lookahead: request.flare.lookahead, threshold: request.flare.threshold, mask_below: request.flare.maskBelow, query_length: request.flare.queryLength, separator: 'newline' } }
      : {}),
    ...(key === 'flare' && r.passages?.retrieved !== undefined
      ? { retrievals_per_100_tokens: (100 * r.passages.retrieved) / Math.max(1, r.scoredTokens), lookahead_accuracy: r.passages.lookaheadAccuracy }
      : {}),
    ...(r.passages ? { blocks: r.passages.blocks, forwards: r.passages.forwards, forwards_per_token: r.passages.forwards / Math.max(1, r.scoredTokens), ...(r.passages.meanTopWeight !== undefined ? { mean_top_weight: r.passages.meanTopWeight } : {}), ...(r.passages.meanTopPosterior !== undefined ? { mean_top_posterior: r.passages.meanTopPosterior } : {}), ...(r.passages.retrieved !== undefined ? { retrieved: r.passages.retrieved } : {}) } : {}),
    ...(baseline ? { gpt: { nll: baseline.nll, token_ppl: baseline.tokenPpl, word_ppl: Math.exp(baseline.nll / words) } } : {}),
    ...(r.icralm
      ? {
          gpt: { nll: r.icralm.gpt.nll, token_ppl: r.icralm.gpt.tokenPpl, word_ppl: Math.exp(r.icralm.gpt.nll / words) },
          stride_curve: r.icralm.strides.map((p) => ({ stride: p.stride, blocks: p.blocks, retrieved: p.retrieved, token_ppl: p.tokenPpl, word_ppl: Math.exp(p.nll / words) })).sort((a, b) => a.stride - b.stride),
        }
      : {}),
    datastore: r.datastoreId,
    seconds,
    eval_seconds: evalSeconds,
    backend,
    batch: request.batch,
    stride: EVAL_STRIDE,
    measured_by: `npm run eval (the app’s engines in Node: ${onnxRuntimeName(backend)}, int8 graphs dequantized at load)`,
  };
}

/** The index the kNN-LM searched: the request's choice, else the loaded datastore's default (IVF when it has lists). */
let loadedKnnIndex: 'exact' | 'ivf' | null = null;
/** Entries of the loaded kNN-LM datastore (a fraction's prefix is ⌈fraction · entries⌉ of them). */
let loadedKnnEntries: number | null = null;
function knnSearch(request: EvalRequest): string {
  return request.knn.search ?? loadedKnnIndex ?? 'exact';
}

/** What --write-metrics stores in the manifest. */
function metrics(out: Record<string, unknown>, r: EvalResult, key: ModelKey, request: EvalRequest): Record<string, unknown> {
  return {
    token_ppl: r.tokenPpl,
    word_ppl: r.wordPpl,
    scored_tokens: r.scoredTokens,
    words: out.words,
    windows: r.windows,
    ...(key === 'retro' ? { neighbours: out.neighbours, k: request.retro.k } : {}),
    ...(key !== 'retro' && out.neighbours === 'random' ? { neighbours: 'random' } : {}),
    ...(key === 'knnlm'
      ? {
          ...(out.settings as object),
          datastore: r.datastoreId,
          // What the adaptive rule and RetoMaton's pointers saved, and the plain settings of the same pass.
          ...(out.adaptive ? { adaptive: out.adaptive } : {}),
          ...(out.retomaton ? { retomaton: out.retomaton } : {}),
          searches_per_token: r.knnlm ? 1 - (r.knnlm.searchesSaved + r.knnlm.searchesSkipped) / Math.max(1, r.scoredTokens) : 1,
          ...(Array.isArray(out.sweep) && out.sweep.length > 1 ? { sweep: out.sweep.slice(1) } : {}),
          gpt_token_ppl: r.knnlm?.gpt.tokenPpl,
        }
      : {}),
    ...(key === 'flare' ? { retrievals_per_100_tokens: out.retrievals_per_100_tokens } : {}),
    ...(key === 'icralm' || key === 'replug' || key === 'flare' || key === 'ragseq' ? { ...(out.settings as object), forwards_per_token: out.forwards_per_token, datastore: r.datastoreId, ...(out.gpt ? { gpt_token_ppl: (out.gpt as { token_ppl: number }).token_ppl } : {}) } : {}),
    measured_by: out.measured_by,
  };
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  process.exit(1);
});
