/**
 * Where a GPT column's time per token goes, layer by layer of the decoding loop (Node, onnxruntime-web
 * WASM, one thread):
 *
 *   npm run bench:loop [-- --model public/models/gpt-wt2 --tokens 96 --rounds 7]
 *
 * Each round decodes `tokens` tokens after a fixed 31-token prompt four ways, one after the other:
 * the decoder graph alone with its cache fed back (`bare`), `GptModel.next` (`next`), and the app's
 * loop `generateStream` greedy (`greedy`) and with the columns' default decoding (`app`: nucleus
 * sampling, <unk> suppressed, repetition penalty, no-repeat 3-grams). Then `sample()` and
 * `topAlternatives()` alone on one step's logits. Prints the median ms per token of each over the
 * rounds as JSON lines (docs/benchmarks.md, "The loop around the model").
 */
import { parseArgs } from 'node:util';
import { GREEDY, defaultGenerationSettings, generateStream, processLogits, sample } from '../src/core/generate';
import { Rng } from '../src/core/generate/rng';
import { ALTERNATIVES_SHOWN } from '../src/core/generate/loop';
import { topAlternatives } from '../src/core/generate/sampler';
import { median } from '../src/core/eval/bench';
import { GptModel } from '../src/core/models';
import { Runtime, type RuntimeSession } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { cacheFeeds, cacheLayout, disposeCache, emptyCache, presentCache } from '../src/core/models/decoder';
import type { GenerationSettings } from '../src/protocol/model';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'public/models/gpt-wt2' },
    tokens: { type: 'string', default: '96' },
    rounds: { type: 'string', default: '7' },
  },
});
const N = Number(args.tokens);
const runtime = await Runtime.create({ prefer: 'wasm', wasmThreads: 1 });
const gpt = await GptModel.load(runtime, nodeModelFiles(args.model!));
const V = gpt.info.vocabSize;
const prompt = Array.from({ length: 31 }, (_, i) => (17 + 389 * i) % V);
if (prompt.length + N + 1 > gpt.info.context) throw new RangeError(`--tokens must be at most ${gpt.info.context - prompt.length - 1}`);
const layout = cacheLayout(gpt.manifest);
// The session GptModel runs, to time the graph without the model class around it.
const decoder = (gpt as unknown as { decoder: RuntimeSession }).decoder;
const app = defaultGenerationSettings(gpt.manifest.tokenizer.unk_id);

async function bare(): Promise<number> {
  let cache = emptyCache(runtime, gpt.manifest, layout);
  const first = await decoder.run({ input_ids: runtime.int64(prompt, [1, prompt.length]), ...cacheFeeds(layout, cache) });
  cache = presentCache(layout, first, prompt.length);
  const t = performance.now();
  for (let i = 0; i < N; i++) {
    const out = await decoder.run({ input_ids: runtime.int64([5 + i], [1, 1]), ...cacheFeeds(layout, cache) });
    disposeCache(cache);
    cache = presentCache(layout, out, cache.length + 1);
    await out.logits!.float32();
    await out.knn_key!.float32();
  }
  disposeCache(cache);
  return (performance.now() - t) / N;
}

async function next(): Promise<number> {
  await gpt.start(prompt);
  const t = performance.now();
  for (let i = 0; i < N; i++) await gpt.next(5 + i);
  return (performance.now() - t) / N;
}

/** generateStream's tokens after the first (the prefill and the first token are not timed). */
async function loop(settings: Omit<GenerationSettings, 'maxNewTokens'>): Promise<number> {
  const stream = generateStream(gpt, prompt, { ...settings, maxNewTokens: N + 1, stopTokenId: null });
  await stream.next();
  const t = performance.now();
  for (let step = await stream.next(); !step.done; step = await stream.next());
  return (performance.now() - t) / N;
}

const times: Record<string, number[]> = { bare: [], next: [], greedy: [], app: [] };
for (let r = 0; r < Number(args.rounds); r++) {
  times.bare!.push(await bare());
  times.next!.push(await next());
  times.greedy!.push(await loop(GREEDY));
  times.app!.push(await loop(app));
}
const { logits } = await gpt.start(prompt);
const processed = processLogits(logits, prompt, app);
const perCall = (f: () => unknown, calls = 300): number => {
  for (let i = 0; i < 30; i++) f();
  const t = performance.now();
  for (let i = 0; i < calls; i++) f();
  return (performance.now() - t) / calls;
};
const rng = new Rng(1);
const r3 = (x: number) => Math.round(x * 1000) / 1000;
for (const [way, xs] of Object.entries(times)) console.log(JSON.stringify({ bench: 'loop', way, ms_per_token: r3(median(xs)), rounds: xs.map(r3), tokens: N }));
console.log(JSON.stringify({ bench: 'loop', way: 'sample (app decoding, one call)', ms_per_token: r3(perCall(() => sample(processed, app, rng))) }));
console.log(JSON.stringify({ bench: 'loop', way: 'topAlternatives (one call)', ms_per_token: r3(perCall(() => topAlternatives(logits, ALTERNATIVES_SHOWN, 3))) }));
await gpt.dispose();
