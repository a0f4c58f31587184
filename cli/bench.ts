/**
 * Decode speed of the shipped models on Node (onnxruntime-web WASM), measured interleaved:
 *   npm run bench [-- --threads 1 --tokens 128 --runs 4 --block 8 --datastore <shard file> --knn-datastore <file> --stepwise
 *                    --gpt-baseline <model dir> --retro-baseline <model dir> --transformers --gpt-only
 *                    --decoding greedy|app --baseline-src <checkout>]
 *
 * --gpt-baseline adds another graph of the GPT (e.g. a copy of the one shipped before) as
 * 'gpt-baseline'; --retro-baseline another graph of the RETRO as 'retro-baseline', with the same fixed
 * neighbours as 'retro'; --transformers adds the shipped GPT run by transformers.js ('transformers.js',
 * cli/transformers-js-gpt.ts); --gpt-only leaves out the RETRO and kNN-LM configurations.
 * --decoding app decodes as the app's columns do by default (nucleus sampling and the logits
 * processors) instead of greedily; --baseline-src adds 'gpt-before', the GPT run by another
 * checkout's code and graph (its sampler and loop too), e.g. a worktree of the commit before a change.
 *
 * Method (docs/benchmarks.md, "Interleaved decode"). Every configuration is its own model object
 * decoding its own greedy sequence: GPT; RETRO with retrieval off; RETRO with fixed neighbours
 * (model cost only); RETRO with real token-aligned retrieval (the app's alignedNeighbourSource:
 * the GPT's one-call query key and the search of the kNN-LM keys, by the shard's IVF lists as the app
 * searches when it has them), 'real-exact' with the exact scan instead, and with --stepwise the key by
 * one-token calls ('real-stepwise'), when the kNN-LM datastore exists (else 'real' searches a chunk
 * datastore given or cached by `npm run eval`, if any); kNN-LM ('knnlm': IVF when the shard has
 * lists, 'knnlm-exact': the exact scan), when its datastore exists.
 * Query keys and the kNN-LM come from GPT objects of their own, so no configuration disturbs
 * another's KV cache. Each round advances every configuration by one token, in an order rotated by
 * one each round, through generateStream (the app's loop: `next()` and the sampling), and times
 * each step. --runs segments of --tokens rounds each (after one untimed warm-up block); every
 * sequence restarts from the prompt, untimed, at each segment's start, before reaching the context.
 *
 * Statistics (interleavedStats in src/core/eval/bench.ts) are over blocks of --block rounds
 * (default RETRO's chunk: one block holds exactly one retrieval, which a per-token median would
 * skip): per configuration the median ms per token with p10/p90, tokens/s from the median, and the
 * cost vs GPT as the median over blocks of (its block time / GPT's time in the same rounds), with an
 * order-statistic ~95% interval. Background load slows every configuration of a round alike, so the
 * ratios hold on a busy machine; the absolute times do not. Each step's CPU time (process.cpuUsage,
 * one WASM thread) is reported beside it (cpu_*): another process taking the core stretches wall
 * time, hardly CPU time, so the CPU-time ratios are the steadier cross-check under heavy load.
 * vs_gpt_total_time is the ratio of total wall times over the same blocks: under heavy load a short
 * step's median escapes preemption more often than a long step's does, so the median ratio of a long
 * step drifts up with the load where the total-time ratio does not on average.
 *
 * stdout: one JSON line per configuration, a `retro_vs_gpt` summary, then the kNN search latency
 * (`knn_search`); stderr: progress and a markdown table. Browser numbers: the inference worker can
 * call decodeBench or interleavedDecode (src/core/eval/bench.ts) on its loaded models.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Datastore } from '../src/core/datastore/datastore';
import { interleavedDecode, interleavedStats, type InterleavedConfig } from '../src/core/eval/bench';
import { GREEDY, defaultGenerationSettings, generateStream } from '../src/core/generate';
import type { GenerationSettings } from '../src/protocol/model';
import { GptModel, RetroModel, type LanguageModel, type NeighbourSource } from '../src/core/models';
import { MeanEmbedder } from '../src/core/retrieval/embedder';
import { Runtime } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { loadTokenizer } from '../src/core/tokenizer';
import { KnnDatastore, KnnLmModel, DEFAULT_KNN_SETTINGS } from '../src/core/knnlm';
import { alignedNeighbourSource, type QueryGpt } from '../src/core/knnlm/aligned';
import { openKnnFile } from '../src/core/datastore/node';
import { isTokenAligned } from '../src/protocol/manifest';
import { TransformersJsGpt } from './transformers-js-gpt';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    gpt: { type: 'string', default: join(REPO_ROOT, 'public/models/gpt-wt2') },
    retro: { type: 'string', default: join(REPO_ROOT, 'public/models/retro-wt2') },
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '4' },
    block: { type: 'string' },
    datastore: { type: 'string' },
    'knn-datastore': { type: 'string', default: join(REPO_ROOT, 'public/datastores/wikitext-2-train.knn-pca64.rlds') },
    'knn-k': { type: 'string', default: String(DEFAULT_KNN_SETTINGS.k) },
    stepwise: { type: 'boolean', default: false },
    'gpt-baseline': { type: 'string' },
    'retro-baseline': { type: 'string' },
    transformers: { type: 'boolean', default: false },
    'gpt-only': { type: 'boolean', default: false },
    decoding: { type: 'string', default: 'greedy' },
    'baseline-src': { type: 'string' },
  },
});

const PROMPT = ' = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 : Unrecorded Chronicles is a tactical role';
const emit = (line: object) => console.log(JSON.stringify(line));
const log = (text: string) => process.stderr.write(`${text}\n`);
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** A shard given on the command line, else the one `npm run eval` cached for this embedder. */
function findShard(fingerprint: string): string | null {
  if (args.datastore) return resolve(args.datastore);
  const dir = join(REPO_ROOT, '.cache', 'eval');
  if (!existsSync(dir)) return null;
  const hit = readdirSync(dir).find((f) => f.includes(fingerprint) && f.endsWith('.shard'));
  return hit ? join(dir, hit) : null;
}

interface Config extends InterleavedConfig {
  neighbours: string;
  /** retrieval latencies (query key + search) seen by this configuration's source */
  latencies?: number[];
}

/**
 * greedy (the default; the figures before 2026-12-07 were all greedy), or the app's own decoding
 * (the compare view's defaults: nucleus sampling with <unk> suppressed, repetition penalty and
 * no-repeat 3-grams, seed 42), which a class sees and whose sampling costs time of its own.
 */
function decodingSettings(name: string, unkId: number): Omit<GenerationSettings, 'maxNewTokens'> {
  if (name === 'greedy') return GREEDY;
  if (name === 'app') return defaultGenerationSettings(unkId);
  throw new Error(`--decoding must be greedy or app, not ${name}`);
}

/**
 * Loads the GPT through another checkout's own modules (its src/, resolved from there, so its
 * runtime, model class, sampler and loop run as they did then): "before" figures measured in the
 * same process, token by token beside today's. The checkout needs node_modules (a link to this
 * one's is enough, so both share one onnxruntime-web).
 */
async function baselineGpt(root: string, threads: number): Promise<{ model: LanguageModel; stream: typeof generateStream }> {
  const from = (path: string) => import(pathToFileURL(join(root, path)).href);
  const [runtimeModule, modelsModule, filesModule, loopModule] = await Promise.all([
    from('src/core/runtime/index.ts'),
    from('src/core/models/index.ts'),
    from('src/core/runtime/node-files.ts'),
    from('src/core/generate/loop.ts'),
  ]);
  const runtime = await runtimeModule.Runtime.create({ prefer: 'wasm', wasmThreads: threads });
  const model = (await modelsModule.GptModel.load(runtime, filesModule.nodeModelFiles(join(root, 'public/models/gpt-wt2')))) as LanguageModel;
  return { model, stream: loopModule.generateStream as typeof generateStream };
}

/** Whether the rounds now running are timed: retrieval latencies are kept only then (not in prefills or the warm-up). */
let timing = false;

async function main(): Promise<void> {
  const threads = Number(args.threads);
  const runs = Number(args.runs);
  const runtime = await Runtime.create({ prefer: 'wasm', wasmThreads: threads });
  const gptFiles = nodeModelFiles(args.gpt!);
  const retroFiles = nodeModelFiles(args.retro!);
  const loadGpt = () => GptModel.load(runtime, gptFiles);
  const loadRetro = async (configure: (retro: RetroModel) => void) => {
    const retro = await RetroModel.load(runtime, retroFiles);
    configure(retro);
    return retro;
  };
  const gpt = await loadGpt();
  const tokenizer = loadTokenizer(JSON.parse(await gptFiles.text(gpt.manifest.tokenizer.file)), { id: gpt.manifest.tokenizer.id });
  const prompt = tokenizer.encode(PROMPT);
  const owned: LanguageModel[] = [gpt];

  const off = await loadRetro((r) => r.setOptions({ retrieval: false }));
  const m = off.manifest;
  const hp = off.hp;
  const block = Number(args.block ?? hp.chunk);
  // Whole blocks per segment, so no block straddles a restart.
  const tokens = Math.floor(Number(args.tokens) / block) * block;
  const context = Math.min(gpt.info.context, off.info.context);
  if (tokens < block || prompt.length + tokens + 1 > context) {
    throw new RangeError(`--tokens must give 1..${Math.floor((context - prompt.length - 1) / block)} blocks of ${block} (prompt ${prompt.length} + tokens + 1 <= context ${context})`);
  }

  // Fixed neighbours cost no search time, so that line is the model's own per-token cost.
  const L = hp.neighbour_len;
  const fixedRows = [prompt.concat(prompt).concat(prompt).slice(0, L), prompt.slice().reverse().concat(prompt).concat(prompt).slice(0, L)];
  const fixed: NeighbourSource = async (_query, k) => fixedRows.slice(0, k).map((tokenIds) => ({ tokenIds }));
  const retroFixed = await loadRetro((r) => {
    r.setNeighbourSource(fixed);
    r.setOptions({ retrieval: true });
  });
  owned.push(off, retroFixed);
  const configs: Config[] = [{ name: 'gpt', model: gpt, promptIds: prompt, neighbours: 'none' }];
  if (args['baseline-src']) {
    // The GPT as another checkout of RetroLab runs it: its runtime, model code, shipped graph and decoding loop.
    const before = await baselineGpt(resolve(args['baseline-src']), threads);
    owned.push(before.model);
    configs.push({ name: 'gpt-before', model: before.model, promptIds: prompt, stream: before.stream, neighbours: `none (${args['baseline-src']}: its code and graph)` });
  }
  if (args['gpt-baseline']) {
    // Another graph of the GPT (e.g. the one shipped before), same runtime and loop: its cost vs gpt.
    const baseline = await GptModel.load(runtime, nodeModelFiles(resolve(args['gpt-baseline'])));
    owned.push(baseline);
    configs.push({ name: 'gpt-baseline', model: baseline, promptIds: prompt, neighbours: `none (${args['gpt-baseline']})` });
  }
  if (args.transformers) {
    const hf = await TransformersJsGpt.load(resolve(args.gpt!), gpt.manifest, threads);
    owned.push(hf);
    configs.push({ name: 'transformers.js', model: hf, promptIds: prompt, neighbours: `none (transformers.js forward, onnxruntime-node CPU, ${threads} intra-op thread(s))` });
  }
  if (!args['gpt-only']) {
    configs.push(
      { name: 'off', model: off, promptIds: prompt, neighbours: 'off' },
      { name: 'retro', model: retroFixed, promptIds: prompt, neighbours: 'fixed (no search cost)' },
    );
    if (args['retro-baseline']) {
      // Another graph of the RETRO (e.g. the one shipped before), same neighbours and loop: its cost vs retro.
      const baseline = await RetroModel.load(runtime, nodeModelFiles(resolve(args['retro-baseline'])));
      baseline.setNeighbourSource(fixed);
      baseline.setOptions({ retrieval: true });
      owned.push(baseline);
      configs.push({ name: 'retro-baseline', model: baseline, promptIds: prompt, neighbours: `fixed (no search cost; ${args['retro-baseline']})` });
    }
  }

  const knnFile = args['knn-datastore']!;
  // As the app opens it (KnnHost): IVF lists when the shard has them; a second copy searches exactly, the reference.
  const knnStore = existsSync(knnFile) ? await openKnnFile(knnFile, { index: 'ivf' }) : null;
  const knnExact = knnStore?.defaultIndex === 'ivf' ? await openKnnFile(knnFile) : null;
  const searchName = (store: KnnDatastore) => (store.defaultIndex === 'ivf' ? `IVF, ${store.nprobe} of ${store.section.ivf!.offsets.length - 1} lists` : 'exact');
  if (args['gpt-only']) {
    // GPT configurations only
  } else if (isTokenAligned(m) && knnStore) {
    // What the app does per completed chunk (alignedNeighbourSource): a GPT reads RETRO's new
    // tokens (queryKey: one `extend` call on its cache), its key at the chunk's last token is
    // searched among the kNN-LM keys. 'real-stepwise' feeds the key as one-token calls (before
    // GptModel.extend). Each has a GPT of its own, holding that RETRO's context.
    const realConfig = async (name: string, stepwise: boolean, neighbours: string, store: KnnDatastore): Promise<Config> => {
      const keyGpt = await loadGpt();
      owned.push(keyGpt);
      const queryGpt: QueryGpt = stepwise ? { manifest: keyGpt.manifest, get sequence() { return keyGpt.sequence; }, start: (t, o) => keyGpt.start(t, o), next: (t) => keyGpt.next(t) } : keyGpt;
      const latencies: number[] = [];
      const source = alignedNeighbourSource({
        queryGpt: () => queryGpt,
        datastore: () => store,
        chunk: () => hp.chunk,
        onRetrieved: (_q, _kept, ms) => {
          if (timing) latencies.push(ms);
        },
      });
      const model = await loadRetro((r) => {
        r.setNeighbourSource(source);
        r.setOptions({ retrieval: true });
      });
      owned.push(model);
      return { name, model, promptIds: prompt, neighbours, latencies };
    };
    configs.push(await realConfig('real', false, `token-aligned: GPT key (one call) + search (${searchName(knnStore)}) of ${knnStore.size} kNN-LM keys`, knnStore));
    if (knnExact) configs.push(await realConfig('real-exact', false, `token-aligned: GPT key (one call) + exact search of ${knnStore.size} kNN-LM keys`, knnExact));
    if (args.stepwise) configs.push(await realConfig('real-stepwise', true, `token-aligned, query key by one-token calls: GPT key + search of ${knnStore.size} kNN-LM keys`, knnStore));
  } else {
    const embedder = m.embedder ? MeanEmbedder.fromBytes(await retroFiles.bytes(m.embedder.file), m.embedder.vocab_size, m.embedder.dim, m.embedder.id) : null;
    const shard = embedder ? findShard(embedder.fingerprint) : null;
    const datastore = embedder && shard && existsSync(shard) ? await Datastore.open(new Uint8Array(readFileSync(shard)), embedder) : null;
    if (datastore) {
      const latencies: number[] = [];
      const searched: NeighbourSource = async (query, k, options) => {
        const t = performance.now();
        const found = datastore.retrieve(query, k, { excludeDocIds: [...(options.excludeDocIds ?? [])] });
        if (timing) latencies.push(performance.now() - t);
        return found;
      };
      const model = await loadRetro((r) => {
        r.setNeighbourSource(searched);
        r.setOptions({ retrieval: true });
      });
      owned.push(model);
      configs.push({ name: 'real', model, promptIds: prompt, neighbours: `datastore ${datastore.chunkCount} chunks (flat index)`, latencies });
    } else {
      emit({ bench: 'decode', model: m.id, neighbours: 'datastore', skipped: `no kNN-LM datastore at ${knnFile} and no chunk shard: run npm run setup:knn, or pass --datastore` });
    }
  }
  const knnK = Number(args['knn-k']);
  let knn: KnnLmModel | null = null;
  if (knnStore && !args['gpt-only']) {
    knn = new KnnLmModel(await loadGpt(), knnStore, { ownsModel: true, settings: { k: knnK } });
    owned.push(knn);
    configs.push({ name: 'knnlm', model: knn, promptIds: prompt, neighbours: `kNN-LM datastore ${knnStore.size} entries, k=${knnK}, ${searchName(knnStore)}` });
    if (knnExact) {
      const exact = new KnnLmModel(await loadGpt(), knnExact, { ownsModel: true, settings: { k: knnK } });
      owned.push(exact);
      configs.push({ name: 'knnlm-exact', model: exact, promptIds: prompt, neighbours: `kNN-LM datastore ${knnStore.size} entries, k=${knnK}, exact` });
    }
  } else if (!args['gpt-only']) {
    emit({ bench: 'decode', model: `${gpt.manifest.id}+knnlm`, skipped: `no kNN-LM datastore at ${knnFile}: run npm run setup:knn or pass --knn-datastore` });
  }

  const loadBefore = loadavg()[0]!;
  const t0 = performance.now();
  const decoding = decodingSettings(args.decoding!, gpt.manifest.tokenizer.unk_id);
  log(`decoding: ${args.decoding} ${JSON.stringify(decoding)}`);
  const { wall, cpu } = await interleavedDecode(configs, {
    decoding,
    cpuClock: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    },
    segmentTokens: tokens,
    segments: runs,
    warmupRounds: block,
    onSegment: (s) => {
      timing = false;
      log(`segment ${s + 1}/${runs}: ${tokens} rounds of ${configs.map((c) => c.name).join(', ')}`);
    },
    onRestarted: (recorded) => {
      timing = recorded;
    },
  });
  timing = false;
  const wallS = (performance.now() - t0) / 1000;
  const loadAfter = loadavg()[0]!;
  const stats = interleavedStats(wall, 'gpt', block);
  const cpuStats = interleavedStats(cpu!, 'gpt', block);
  const rounds = tokens * runs;
  for (const c of configs) {
    const s = stats[c.name]!;
    const info = c.model.info;
    const lat = c.latencies && c.latencies.length > 0 ? [...c.latencies].sort((a, b) => a - b) : null;
    emit({
      bench: 'decode-interleaved',
      config: c.name,
      model: info.id,
      architecture: info.architecture,
      backend: info.backend.backend,
      threads,
      neighbours: c.neighbours,
      prompt_tokens: prompt.length,
      rounds,
      block,
      blocks: s.blocks,
      ms_per_token: r3(s.ms_per_token),
      p10_ms_per_token: r3(s.p10_ms_per_token),
      p90_ms_per_token: r3(s.p90_ms_per_token),
      tokens_per_second: r2(s.tokens_per_second),
      step_median_ms: r3(s.step_median_ms),
      vs_gpt: r3(s.vs_baseline),
      vs_gpt_ci95: s.vs_baseline_ci95.map(r3),
      vs_gpt_total_time: r3(s.vs_baseline_total),
      cpu_ms_per_token: r3(cpuStats[c.name]!.ms_per_token),
      cpu_vs_gpt: r3(cpuStats[c.name]!.vs_baseline),
      cpu_vs_gpt_ci95: cpuStats[c.name]!.vs_baseline_ci95.map(r3),
      ...(lat ? { retrievals: lat.length, search_ms_per_retrieval: r2(lat[Math.floor(lat.length / 2)]!) } : {}),
    });
  }
  const ratio = (name: string) => (stats[name] ? r3(stats[name].vs_baseline) : undefined);
  // The old RETRO graph against the new one directly: the same per-block ratios with 'retro' as the reference.
  const againstRetro = stats['retro-baseline'] ? { wall: interleavedStats(wall, 'retro', block)['retro-baseline']!, cpu: interleavedStats(cpu!, 'retro', block)['retro-baseline']! } : null;
  emit({
    bench: 'retro_vs_gpt',
    method: 'interleaved',
    backend: gpt.info.backend.backend,
    threads,
    rounds,
    block,
    wall_s: r2(wallS),
    load_avg_1m: [r2(loadBefore), r2(loadAfter)],
    retro_per_token_cost_vs_gpt: ratio('retro'),
    retro_retrieval_off_vs_gpt: ratio('off'),
    retro_baseline_vs_gpt: ratio('retro-baseline'),
    ...(againstRetro
      ? {
          retro_baseline_vs_retro: r3(againstRetro.wall.vs_baseline),
          retro_baseline_vs_retro_ci95: againstRetro.wall.vs_baseline_ci95.map(r3),
          retro_baseline_vs_retro_cpu: r3(againstRetro.cpu.vs_baseline),
          retro_baseline_vs_retro_cpu_ci95: againstRetro.cpu.vs_baseline_ci95.map(r3),
        }
      : {}),
    retro_with_search_vs_gpt: ratio('real'),
    retro_with_search_stepwise_key_vs_gpt: ratio('real-stepwise'),
    knnlm_per_token_cost_vs_gpt: ratio('knnlm'),
    knnlm_exact_vs_gpt: ratio('knnlm-exact'),
    retro_with_exact_search_vs_gpt: ratio('real-exact'),
     total_time_vs_gpt: Object.fromEntries(configs.map((c) => [c.name, r3(stats[c.name]!.vs_baseline_total)])),
    cpu_time_vs_gpt: Object.fromEntries(configs.map((c) => [c.name, r3(cpuStats[c.name]!.vs_baseline)])),
  });
  log(`\n${rounds} rounds, blocks of ${block}, ${wallS.toFixed(1)} s, load average ${loadBefore.toFixed(2)} -> ${loadAfter.toFixed(2)}`);
  log('| config | ms/token median (p10-p90) | tokens/s | vs GPT, median of per-block ratios (95% CI) | CPU ms/token | CPU time vs GPT (95% CI) |');
  log('|---|---|---|---|---|---|');
  for (const c of configs) {
    const s = stats[c.name]!;
    const u = cpuStats[c.name]!;
    const ci = (x: [number, number]) => `${x[0].toFixed(3)}-${x[1].toFixed(3)}`;
    log(`| ${c.name} | ${s.ms_per_token.toFixed(2)} (${s.p10_ms_per_token.toFixed(2)}-${s.p90_ms_per_token.toFixed(2)}) | ${s.tokens_per_second.toFixed(1)} | ${s.vs_baseline.toFixed(3)} (${ci(s.vs_baseline_ci95)}) | ${u.ms_per_token.toFixed(2)} | ${u.vs_baseline.toFixed(3)} (${ci(u.vs_baseline_ci95)}) |`);
  }

  if (knn) {
    // Per-query latency on real keys: the GPT's knn_key at every position of a longer text.
    const text = tokenizer.encode(PROMPT.repeat(8)).slice(0, gpt.info.context);
    const out = await gpt.start(text, { allLogits: true });
    const dim = gpt.manifest.hyperparameters.d_model;
    const times: number[] = [];
    for (let r = 0; r < out.rows; r++) {
      const t = performance.now();
      knn.datastore.search(out.knnKeys!.subarray(r * dim, (r + 1) * dim), knnK);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const at = (p: number) => r2(times[Math.min(times.length - 1, Math.floor(p * times.length))]!);
    emit({
      bench: 'knn_search',
      entries: knn.datastore.size,
      dim: knn.datastore.meta.dim,
      encoding: knn.datastore.meta.encoding,
      k: knnK,
      search: searchName(knn.datastore),
      ...(knn.datastore.defaultIndex === 'exact' ? { backend: knn.datastore.index.backend } : {}),
      queries: times.length,
      median_ms: at(0.5),
      p95_ms: at(0.95),
    });
  }
  emit({ bench: 'browser', status: 'not measured here', how: 'call decodeBench or interleavedDecode from src/core/eval/bench.ts in the inference worker and report its JSON' });
  for (const model of owned) await model.dispose();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  process.exit(1);
});
