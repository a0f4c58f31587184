/**
 * Decode speed of each column in the browser, with the built-in datastores: GPT, RETRO (token-aligned
 * retrieval through the kNN-LM keys), and the kNN-LM searching its IVF lists and scanning exactly.
 * Debian's Chromium, the production build, the app's WASM backend. One JSON object on stdout,
 * progress on stderr:
 *
 *   npm run bench:browser-decode [-- --rounds 6 --tokens 48 --port 4394 --decoding greedy|app
 *                                   --ways gpt,retro,knnlm-ivf,knnlm-exact --dists dist,../other/dist]
 *
 * One browser profile: the app starts, the kNN-LM column is turned on (the built-in kNN-LM datastore
 * is copied into IndexedDB and opened), then each round generates `tokens` tokens (greedy, the app's
 * first example prompt) with each way alone, in a rotating order so load on a noisy machine falls on
 * every way alike, through the client the Generate button calls. A way's figure is the median of its
 * rounds' tokens/s (the engine's own: generated tokens over the run's time, prompt included), and the
 * ratios are each way's cost per token against the GPT's. Needs `npm run setup` (the built-in
 * kNN-LM datastore with IVF lists) and a production build (`npx vite build`).
 *
 * --decoding app decodes as a column does by default (nucleus sampling, seed 42, the logits
 * processors) instead of greedily. --ways picks the ways (the kNN-LM ones turn the kNN-LM column on
 * first). --dists compares builds (a build with `?query`, e.g. `dist?threads=1`, opens the page with
 * that query): each build is served and opened in a browser of its own, all
 * at once, and every round runs each way in each build in the rotating order, so the builds share
 * the machine's load; ways are then named "<way> @ <dist>" and ratios are against the first build's
 * GPT.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RetroLabTestHook } from '../src/client/testHook';
import { median } from '../src/core/eval/bench';
import { DEFAULT_SETTINGS } from '../src/features/compare/settings';
import { DEFAULT_REPLUG_SETTINGS } from '../src/core/replug/types';
import type { GenerateRequest, KnnModelState, ModelKey } from '../src/protocol/api';
import type { Page } from '@playwright/test';
import { launchApp, startPreview } from './browser';
import { AppPage } from './pages/AppPage';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    tokens: { type: 'string', default: '48' },
    port: { type: 'string', default: '4394' },
    decoding: { type: 'string', default: 'greedy' },
    ways: { type: 'string', default: 'gpt,retro,knnlm-ivf,knnlm-exact' },
    dists: { type: 'string', default: 'dist' },
  },
});
if (args.decoding !== 'greedy' && args.decoding !== 'app') throw new Error(`--decoding must be greedy or app, not ${args.decoding}`);
const PROMPT = ' = Valkyria Chronicles III = \n Senjō no Valkyria 3 : Unrecorded Chronicles is a tactical role @-@ playing video game';

interface Way {
  name: string;
  model: ModelKey;
  search?: 'exact' | 'ivf';
}
const ALL_WAYS: Way[] = [
  { name: 'gpt', model: 'gpt' },
  { name: 'retro', model: 'retro' },
  { name: 'knnlm-ivf', model: 'knnlm', search: 'ivf' },
  { name: 'knnlm-exact', model: 'knnlm', search: 'exact' },
];
const WAYS = args.ways!.split(',').map((name) => {
  const way = ALL_WAYS.find((w) => w.name === name);
  if (!way) throw new Error(`--ways: ${name} is not one of ${ALL_WAYS.map((w) => w.name).join(', ')}`);
  return way;
});
const DISTS = args.dists!.split(',');

interface Build {
  dist: string;
  page: Page;
  stop: () => Promise<void>;
  knn: KnnModelState | null;
}

/** Serves a build, opens it in a fresh profile with WASM, and loads the kNN-LM column when a way needs it. */
async function openBuild(dist: string, port: number): Promise<Build> {
  // "dist?threads=1": the build in `dist`, opened with that query added to the page's URL.
  const [folder, query] = dist.split('?') as [string, string | undefined];
  const preview = await startPreview(port, folder);
  const profile = mkdtempSync(join(tmpdir(), 'retrolab-decode-'));
  const context = await launchApp({ profileDir: profile });
  const stop = async () => {
    await context.close();
    preview.stop();
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const app = new AppPage(page);
    await page.goto(`${preview.url}?backend=wasm${query ? `&${query}` : ''}`);
    await app.waitUntilReady();
    let knn: Build['knn'] = null;
    if (WAYS.some((w) => w.model === 'knnlm')) {
      await app.openSettings();
      process.stderr.write(`${dist}: app ready; turning the kNN-LM column on (copies its datastore in)\n`);
      await app.knnSwitch.check();
      await app.waitForKnnModel(900_000);
      knn = await page.evaluate(() => (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state().knn.model);
      if (!knn) throw new Error(`${dist}: the kNN-LM column did not load`);
      process.stderr.write(`${dist}: kNN-LM ready: ${knn.entries.toLocaleString('en')} entries, ${knn.index} (${knn.nprobe} of ${knn.lists} lists)\n`);
    }
    return { dist, page, stop, knn };
  } catch (error) {
    await stop();
    throw error;
  }
}

const decoding: GenerateRequest['decoding'] =
  args.decoding === 'app' ? { ...DEFAULT_SETTINGS.decoding, maxTokens: Number(args.tokens) } : { ...DEFAULT_SETTINGS.decoding, strategy: 'greedy', maxTokens: Number(args.tokens) };

const generate = async (build: Build, way: Way): Promise<number> => {
  const request: GenerateRequest = {
    prompt: PROMPT,
    models: [way.model],
    decoding,
    retro: { ...(({ exclusions: _, ...rest }) => rest)(DEFAULT_SETTINGS.retro), retrievalStep: 8, excludeDocIds: [] },
    knn: { ...DEFAULT_SETTINGS.knn, ...(way.search ? { search: way.search } : {}) },
    icralm: { stride: DEFAULT_SETTINGS.icralm.stride, queryLength: DEFAULT_SETTINGS.icralm.queryLength },
    replug: { ...DEFAULT_REPLUG_SETTINGS },
  };
  return build.page.evaluate(async ({ r, key }) => {
    const hook = (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab;
    await hook.client.generate(r);
    const run = hook.state().runs[key];
    if (!run || run.status !== 'done' || !run.tokensPerSecond) throw new Error(`${key}: ${run?.status ?? 'no run'}`);
    return run.tokensPerSecond;
  }, { r: request, key: way.model });
};

const builds: Build[] = [];
try {
  for (let i = 0; i < DISTS.length; i++) builds.push(await openBuild(DISTS[i]!, Number(args.port) + i));
  const label = (build: Build, way: Way) => (builds.length > 1 ? `${way.name} @ ${build.dist}` : way.name);
  const runs = builds.flatMap((build) => WAYS.map((way) => ({ build, way, name: label(build, way) })));
  for (const run of runs) await generate(run.build, run.way); // warm-up: first runs set up kernels and caches
  const rates = new Map<string, number[]>(runs.map((r) => [r.name, []]));
  for (let round = 0; round < Number(args.rounds); round++) {
    for (let i = 0; i < runs.length; i++) {
      const run = runs[(round + i) % runs.length]!;
      rates.get(run.name)!.push(await generate(run.build, run.way));
    }
    process.stderr.write(`round ${round + 1}: ${[...rates].map(([n, xs]) => `${n} ${xs[xs.length - 1]!.toFixed(1)}`).join(', ')}\n`);
  }
  const gpt = median(rates.get(runs[0]!.name)!);
  const ways = Object.fromEntries(
    [...rates].map(([name, xs]) => [name, { tokens_per_second: Number(median(xs).toFixed(1)), cost_vs_gpt: Number((gpt / median(xs)).toFixed(2)), runs: xs.map((x) => Number(x.toFixed(1))) }]),
  );
  const knn = builds[0]!.knn;
  console.log(
    JSON.stringify(
      {
        machine: { cores: cpus().length, load: loadavg().map((l) => Number(l.toFixed(2))) },
        decoding: args.decoding,
        tokens: Number(args.tokens),
        rounds: Number(args.rounds),
        ...(knn ? { knn: { entries: knn.entries, index: knn.index, nprobe: knn.nprobe, lists: knn.lists } } : {}),
        reference: runs[0]!.name,
        ways,
      },
      null,
      1,
    ),
  );
} finally {
  for (const build of builds) await build.stop();
}
