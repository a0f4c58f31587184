/**
 * Decode speed of the shipped models on Node (onnxruntime-web WASM), one JSON object per line:
 *   npm run bench [-- --threads 1 --tokens 128 --runs 4 --datastore <shard file>]
 *
 * Lines: GPT decode; RETRO decode with neighbours from a fixed in-memory source (model cost only);
 * RETRO with retrieval off; RETRO with a real datastore when one is given or cached by `npm run
 * eval`; the RETRO/GPT per-token cost ratio; kNN-LM decode and its per-query search latency when a
 * kNN-LM datastore exists (--knn-datastore, default the one `npm run setup:knn` builds). Browser numbers: the inference worker can call
 * decodeBench (src/core/eval/bench.ts) on its loaded models and report the same shape.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Datastore } from '../src/core/datastore/datastore';
import { decodeBench, type DecodeBenchResult } from '../src/core/eval/bench';
import { GptModel, RetroModel, type NeighbourSource } from '../src/core/models';
import { MeanEmbedder } from '../src/core/retrieval/embedder';
import { Runtime } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { loadTokenizer } from '../src/core/tokenizer';
import { KnnDatastore, KnnLmModel, DEFAULT_KNN_SETTINGS } from '../src/core/knnlm';
import { alignedNeighbourIds, queryKey, searchAligned, type QueryGpt } from '../src/core/knnlm/aligned';
import { isTokenAligned } from '../src/protocol/manifest';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    gpt: { type: 'string', default: join(REPO_ROOT, 'public/models/gpt-wt2') },
    retro: { type: 'string', default: join(REPO_ROOT, 'public/models/retro-wt2') },
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string', default: '128' },
    runs: { type: 'string', default: '4' },
    datastore: { type: 'string' },
    'knn-datastore': { type: 'string', default: join(REPO_ROOT, 'public/datastores/wikitext-2-train.knn-pca64.rlds') },
    'knn-k': { type: 'string', default: String(DEFAULT_KNN_SETTINGS.k) },
  },
});

const PROMPT = ' = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 : Unrecorded Chronicles is a tactical role';
const emit = (line: object) => console.log(JSON.stringify(line));

/** A shard given on the command line, else the one `npm run eval` cached for this embedder. */
function findShard(fingerprint: string): string | null {
  if (args.datastore) return resolve(args.datastore);
  const dir = join(REPO_ROOT, '.cache', 'eval');
  if (!existsSync(dir)) return null;
  const hit = readdirSync(dir).find((f) => f.includes(fingerprint) && f.endsWith('.shard'));
  return hit ? join(dir, hit) : null;
}

async function main(): Promise<void> {
  const threads = Number(args.threads);
  const newTokens = Number(args.tokens);
  const runs = Number(args.runs);
  const runtime = await Runtime.create({ prefer: 'wasm', wasmThreads: threads });
  const gptFiles = nodeModelFiles(args.gpt!);
  const retroFiles = nodeModelFiles(args.retro!);
  const gpt = await GptModel.load(runtime, gptFiles);
  const retro = await RetroModel.load(runtime, retroFiles);
  const tokenizer = loadTokenizer(JSON.parse(await gptFiles.text(gpt.manifest.tokenizer.file)), { id: gpt.manifest.tokenizer.id });
  const prompt = tokenizer.encode(PROMPT);

  // Configurations run round-robin and each reports its fastest run, so background load hits
  // them alike and the ratios hold even on a busy machine.
  const L = retro.hp.neighbour_len;
  const fixedRows = [prompt.concat(prompt).concat(prompt).slice(0, L), prompt.slice().reverse().concat(prompt).concat(prompt).slice(0, L)];
  // Fixed neighbours cost no search time, so that line is the model's own per-token cost.
  const fixed: NeighbourSource = async (_query, k) => fixedRows.slice(0, k).map((tokenIds) => ({ tokenIds }));

  const m = retro.manifest;
  if (!m.embedder) throw new Error(`${m.id}: manifest has no embedder`);
  const embedder = MeanEmbedder.fromBytes(await retroFiles.bytes(m.embedder.file), m.embedder.vocab_size, m.embedder.dim, m.embedder.id);
  const shard = findShard(embedder.fingerprint);
  const datastore = shard && existsSync(shard) ? await Datastore.open(new Uint8Array(readFileSync(shard)), embedder) : null;
  let searches = 0;
  let searchMs = 0;
  const searched: NeighbourSource = async (query, k, options) => {
    const t = performance.now();
    const found = datastore!.retrieve(query, k, { excludeDocIds: [...(options.excludeDocIds ?? [])] });
    searchMs += performance.now() - t;
    searches++;
    return found;
  };

  const configs: { name: string; run: () => Promise<DecodeBenchResult> }[] = [
    { name: 'gpt', run: () => decodeBench(gpt, prompt, { newTokens, runs: 1 }) },
    {
      name: 'retro',
      run: () => {
        retro.setNeighbourSource(fixed);
        retro.setOptions({ retrieval: true });
        return decodeBench(retro, prompt, { newTokens, runs: 1, neighbours: 'fixed (no search cost)' });
      },
    },
    {
      name: 'off',
      run: () => {
        retro.setOptions({ retrieval: false });
        return decodeBench(retro, prompt, { newTokens, runs: 1, neighbours: 'off' });
      },
    },
  ];
  const knnFile = args['knn-datastore']!;
  const knnStore = existsSync(knnFile) ? KnnDatastore.open(new Uint8Array(readFileSync(knnFile))) : null;
  if (isTokenAligned(m) && knnStore) {
    // What the app does per completed chunk: the GPT reads RETRO's new tokens (queryKey: decode
    // steps on its cache, or a prefill), its key at the chunk's last token is searched among the kNN-LM keys.
    // 'real-stepwise' is the same with the key fed as one-token calls (before GptModel.extend), so
    // one run shows what the one-call key saves per RETRO token.
    const stepwiseGpt: QueryGpt = { manifest: gpt.manifest, get sequence() { return gpt.sequence; }, start: (t, o) => gpt.start(t, o), next: (t) => gpt.next(t) };
    const alignedWith = (queryGpt: QueryGpt): NeighbourSource => async (query, k, options) => {
      const t = performance.now();
      const key = await queryKey(queryGpt, options.context ?? query);
      const found = searchAligned([knnStore], key, k).map((match) => ({ tokenIds: alignedNeighbourIds(knnStore.section.values, match.entry, retro.hp.chunk) }));
      if (queryGpt === gpt) {
        searchMs += performance.now() - t;
        searches++;
      }
      return found;
    };
    const aligned = alignedWith(gpt);
    const stepwise = alignedWith(stepwiseGpt);
    configs.push({
      name: 'real-stepwise',
      run: () => {
        retro.setNeighbourSource(stepwise);
        retro.setOptions({ retrieval: true });
        return decodeBench(retro, prompt, { newTokens, runs: 1, neighbours: `token-aligned, query key by one-token calls: GPT key + search of ${knnStore.size} kNN-LM keys` });
      },
    });
    configs.push({
      name: 'real',
      run: () => {
        retro.setNeighbourSource(aligned);
        retro.setOptions({ retrieval: true });
        return decodeBench(retro, prompt, { newTokens, runs: 1, neighbours: `token-aligned: GPT key + search of ${knnStore.size} kNN-LM keys` });
      },
    });
  } else if (datastore) {
    configs.push({
      name: 'real',
      run: () => {
        retro.setNeighbourSource(searched);
        retro.setOptions({ retrieval: true });
        return decodeBench(retro, prompt, { newTokens, runs: 1, neighbours: `datastore ${datastore.chunkCount} chunks (flat index)` });
      },
    });
  }
  const knnK = Number(args['knn-k']);
  let knn: KnnLmModel | null = null;
  if (knnStore) {
    const store = knnStore;
    // Shares the GPT's session: the configurations run one after another, never interleaved.
    knn = new KnnLmModel(gpt, store, { ownsModel: false, settings: { k: knnK } });
    const model = knn;
    configs.push({ name: 'knnlm', run: () => decodeBench(model, prompt, { newTokens, runs: 1, neighbours: `kNN-LM datastore ${store.size} entries, k=${knnK}` }) });
  }
  const best = new Map<string, DecodeBenchResult>();
  for (let r = 0; r < runs; r++) {
    for (const c of configs) {
      const result = await c.run();
      const previous = best.get(c.name);
      if (!previous || result.decode_ms < previous.decode_ms) best.set(c.name, result);
    }
  }
  const gptResult = best.get('gpt')!;
  const retroResult = best.get('retro')!;
  const offResult = best.get('off')!;
  const realResult = best.get('real') ?? null;
  for (const result of [gptResult, retroResult, offResult]) emit({ ...result, runs });
  // Token-aligned: the GPT's query key (queryKey) and the key search together.
  if (realResult) emit({ ...realResult, runs, search_ms_per_retrieval: Math.round((searchMs / Math.max(1, searches)) * 100) / 100 });
  const stepwiseResult = best.get('real-stepwise');
  if (stepwiseResult) emit({ ...stepwiseResult, runs });
  else emit({ bench: 'decode', model: m.id, neighbours: 'datastore', skipped: 'no shard: pass --datastore or run `npm run eval -- --model public/models/retro-wt2 --max-windows 1` once to cache one' });

  emit({
    bench: 'retro_vs_gpt',
    backend: gptResult.backend,
    threads,
    retro_per_token_cost_vs_gpt: Math.round((retroResult.ms_per_token / gptResult.ms_per_token) * 100) / 100,
    retro_retrieval_off_vs_gpt: Math.round((offResult.ms_per_token / gptResult.ms_per_token) * 100) / 100,
    ...(realResult ? { retro_with_search_vs_gpt: Math.round((realResult.ms_per_token / gptResult.ms_per_token) * 100) / 100 } : {}),
    ...(stepwiseResult ? { retro_with_search_stepwise_key_vs_gpt: Math.round((stepwiseResult.ms_per_token / gptResult.ms_per_token) * 100) / 100 } : {}),
  });
  const knnResult = best.get('knnlm');
  if (knn && knnResult) {
    emit({ ...knnResult, runs });
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
    const at = (p: number) => Math.round(times[Math.min(times.length - 1, Math.floor(p * times.length))]! * 100) / 100;
    emit({
      bench: 'knn_search',
      entries: knn.datastore.size,
      dim: knn.datastore.meta.dim,
      encoding: knn.datastore.meta.encoding,
      k: knnK,
      backend: knn.datastore.index.backend,
      queries: times.length,
      median_ms: at(0.5),
      p95_ms: at(0.95),
      knnlm_per_token_cost_vs_gpt: Math.round((knnResult.ms_per_token / gptResult.ms_per_token) * 100) / 100,
    });
  } else {
    emit({ bench: 'decode', model: `${gpt.manifest.id}+knnlm`, skipped: `no kNN-LM datastore at ${knnFile}: run npm run setup:knn or pass --knn-datastore` });
  }
  emit({ bench: 'browser', status: 'not measured here', how: 'call decodeBench(model, promptIds) from src/core/eval/bench.ts in the inference worker and report its JSON' });
  await gpt.dispose();
  await retro.dispose();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  process.exit(1);
});
