/**
 * Decode speed of each column in the browser, with the built-in datastores: GPT, RETRO (token-aligned
 * retrieval through the kNN-LM keys), and the kNN-LM searching its IVF lists and scanning exactly.
 * Debian's Chromium, the production build, the app's WASM backend. One JSON object on stdout,
 * progress on stderr:
 *
 *   npm run bench:browser-decode [-- --rounds 6 --tokens 48 --port 4394]
 *
 * One browser profile: the app starts, the kNN-LM column is turned on (the built-in kNN-LM datastore
 * is copied into IndexedDB and opened), then each round generates `tokens` tokens (greedy, the app's
 * first example prompt) with each way alone, in a rotating order so load on a noisy machine falls on
 * every way alike, through the client the Generate button calls. A way's figure is the median of its
 * rounds' tokens/s (the engine's own: generated tokens over the run's time, prompt included), and the
 * ratios are each way's cost per token against the GPT's. Needs `npm run setup` (the built-in
 * kNN-LM datastore with IVF lists) and a production build (`npx vite build`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RetroLabTestHook } from '../src/client/testHook';
import { median } from '../src/core/eval/bench';
import { DEFAULT_SETTINGS } from '../src/features/compare/settings';
import { DEFAULT_REPLUG_SETTINGS } from '../src/core/replug/types';
import type { GenerateRequest, ModelKey } from '../src/protocol/api';
import { launchApp, startPreview } from './browser';
import { AppPage } from './pages/AppPage';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    tokens: { type: 'string', default: '48' },
    port: { type: 'string', default: '4394' },
  },
});
const PROMPT = ' = Valkyria Chronicles III = \n Senjō no Valkyria 3 : Unrecorded Chronicles is a tactical role @-@ playing video game';

interface Way {
  name: string;
  model: ModelKey;
  search?: 'exact' | 'ivf';
}
const WAYS: Way[] = [
  { name: 'gpt', model: 'gpt' },
  { name: 'retro', model: 'retro' },
  { name: 'knnlm ivf', model: 'knnlm', search: 'ivf' },
  { name: 'knnlm exact', model: 'knnlm', search: 'exact' },
];

const preview = await startPreview(Number(args.port));
const profile = mkdtempSync(join(tmpdir(), 'retrolab-decode-'));
try {
  const context = await launchApp({ profileDir: profile });
  const page = context.pages()[0] ?? (await context.newPage());
  const app = new AppPage(page);
  await page.goto(`${preview.url}?backend=wasm`);
  await app.waitUntilReady();
  await app.openSettings();
  process.stderr.write('app ready; turning the kNN-LM column on (copies its datastore in)\n');
  await app.knnSwitch.check();
  await app.waitForKnnModel(900_000);
  const knn = await page.evaluate(() => (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab.state().knn.model);
  if (!knn) throw new Error('the kNN-LM column did not load');
  process.stderr.write(`kNN-LM ready: ${knn.entries.toLocaleString('en')} entries, ${knn.index} (${knn.nprobe} of ${knn.lists} lists)\n`);
  const generate = async (way: Way): Promise<number> => {
    const request: GenerateRequest = {
      prompt: PROMPT,
      models: [way.model],
      decoding: { ...DEFAULT_SETTINGS.decoding, strategy: 'greedy', maxTokens: Number(args.tokens) },
      retro: { ...(({ exclusions: _, ...rest }) => rest)(DEFAULT_SETTINGS.retro), retrievalStep: 8, excludeDocIds: [] },
      knn: { ...DEFAULT_SETTINGS.knn, ...(way.search ? { search: way.search } : {}) },
      icralm: { stride: DEFAULT_SETTINGS.icralm.stride, queryLength: DEFAULT_SETTINGS.icralm.queryLength },
      replug: { ...DEFAULT_REPLUG_SETTINGS },
    };
    return page.evaluate(async ({ r, key }) => {
      const hook = (window as unknown as { __retrolab: RetroLabTestHook }).__retrolab;
      await hook.client.generate(r);
      const run = hook.state().runs[key];
      if (!run || run.status !== 'done' || !run.tokensPerSecond) throw new Error(`${key}: ${run?.status ?? 'no run'}`);
      return run.tokensPerSecond;
    }, { r: request, key: way.model });
  };
  for (const way of WAYS) await generate(way); // warm-up: first runs set up kernels and caches
  const rates = new Map<string, number[]>(WAYS.map((w) => [w.name, []]));
  for (let round = 0; round < Number(args.rounds); round++) {
    for (let i = 0; i < WAYS.length; i++) {
      const way = WAYS[(round + i) % WAYS.length]!;
      rates.get(way.name)!.push(await generate(way));
    }
    process.stderr.write(`round ${round + 1}: ${[...rates].map(([n, xs]) => `${n} ${xs[xs.length - 1]!.toFixed(1)}`).join(', ')}\n`);
  }
  const gpt = median(rates.get('gpt')!);
  const ways = Object.fromEntries(
    [...rates].map(([name, xs]) => [name, { tokens_per_second: Number(median(xs).toFixed(1)), cost_vs_gpt: Number((gpt / median(xs)).toFixed(2)), runs: xs.map((x) => Number(x.toFixed(1))) }]),
  );
  console.log(JSON.stringify({ machine: { cores: cpus().length, load: loadavg().map((l) => Number(l.toFixed(2))) }, tokens: Number(args.tokens), rounds: Number(args.rounds), knn: { entries: knn.entries, index: knn.index, nprobe: knn.nprobe, lists: knn.lists }, ways }, null, 1));
  await context.close();
} finally {
  preview.stop();
  rmSync(profile, { recursive: true, force: true });
}
