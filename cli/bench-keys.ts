/**
 * `npm run bench:keys [-- --rounds 24 --batch 4]`
 *
 * What one kNN-LM key window (256 tokens of WikiText-2 train, the builder's unit) costs on each way
 * the builder can run the GPT, all in one process, interleaved round by round in a rotating order so
 * load on a noisy machine falls on every way alike:
 * - `wasm per window`: onnxruntime-web, `start(ids, { allLogits: true })` per window (the builder
 *   before this bench: whole graph, 8,192-way logits computed and thrown away);
 * - `wasm cut ×B`: onnxruntime-web, `keysBatch` (the knn_key-only cut) on B windows per forward;
 * - `cpu per window`, `cpu cut ×B`: the same on onnxruntime-node (the tools' default backend);
 * - `cpu cut ×B, 2 threads`: intra-op threads = 2;
 * - `cpu pool, 2 workers × 1 thread`: cli/key-pool.ts (what `setup:knn` runs), one window per
 *   forward, the B windows spread over two worker threads with one onnxruntime-node thread each.
 * Prints each way's median ms per window and its speed-up over `wasm per window`, and checks that
 * every way returns the same keys (max |difference|), as one JSON object.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dataDir, REPO_ROOT } from '../src/core/datastore/node';
import { median } from '../src/core/eval/bench';
import { GptModel } from '../src/core/models';
import { Runtime } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { loadTokenizer } from '../src/core/tokenizer';
import { startKeyPool } from './key-pool';

const { values: args } = parseArgs({
  options: {
    gpt: { type: 'string', default: join(REPO_ROOT, 'public/models/gpt-wt2') },
    rounds: { type: 'string', default: '24' },
    batch: { type: 'string', default: '4' },
  },
});


const B = Number(args.batch);
const rounds = Number(args.rounds);
const files = nodeModelFiles(args.gpt!);
const load = async (prefer: 'wasm' | 'cpu', threads: number) => GptModel.load(await Runtime.create({ prefer, wasmThreads: threads }), files);
const [wasm, cpu, cpu2] = [await load('wasm', 1), await load('cpu', 1), await load('cpu', 2)];
const pool = await startKeyPool(args.gpt!, 2);
if (cpu.info.backend.backend !== 'cpu') throw new Error(`onnxruntime-node did not load: ${cpu.info.backend.reason}`);
const tokenizer = loadTokenizer(JSON.parse(await files.text(wasm.manifest.tokenizer.file)) as unknown, { id: wasm.manifest.tokenizer.id });
const T = wasm.manifest.hyperparameters.context;
const ids = tokenizer.encode(readFileSync(join(dataDir(), 'wikitext-2', 'wiki.train.tokens'), 'utf8').slice(0, 2_000_000));

type Way = { name: string; run: (windows: number[][]) => Promise<Float32Array[]> };
const perWindow = (gpt: GptModel) => async (windows: number[][]) => {
  const out: Float32Array[] = [];
  for (const w of windows) out.push(Float32Array.from((await gpt.start(w, { allLogits: true })).knnKeys!));
  return out;
};
const cut = (gpt: GptModel) => async (windows: number[][]) => {
  const all = await gpt.keysBatch(windows);
  const n = all.length / windows.length;
  return windows.map((_, b) => all.slice(b * n, (b + 1) * n));
};
const ways: Way[] = [
  { name: 'wasm per window', run: perWindow(wasm) },
  { name: `wasm cut x${B}`, run: cut(wasm) },
  { name: 'cpu per window', run: perWindow(cpu) },
  { name: `cpu cut x${B}`, run: cut(cpu) },
  { name: `cpu cut x${B}, 2 threads`, run: cut(cpu2) },
  { name: 'cpu pool, 2 workers x 1 thread', run: (windows) => Promise.all(windows.map((w) => pool.keysBatch([w]))) },
];

const times = new Map<string, number[]>(ways.map((w) => [w.name, []]));
let maxDiff = 0;
for (const w of ways) await w.run([ids.slice(0, T)]); // warm-up
for (let r = 0; r < rounds; r++) {
  const windows = Array.from({ length: B }, (_, b) => {
    const start = ((r * B + b) * 7919 * 128) % (ids.length - T);
    return ids.slice(start, start + T);
  });
  let reference: Float32Array[] | null = null;
  for (let k = 0; k < ways.length; k++) {
    const way = ways[(r + k) % ways.length]!;
    const t0 = performance.now();
    const keys = await way.run(windows);
    times.get(way.name)!.push((performance.now() - t0) / B);
    if (!reference) reference = keys;
    else keys.forEach((k2, b) => k2.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - reference![b]![j]!)))));
  }
}
const base = median(times.get('wasm per window')!);
const result = Object.fromEntries(
  [...times].map(([name, xs]) => [name, { ms_per_window: Number(median(xs).toFixed(1)), speedup: Number((base / median(xs)).toFixed(2)) }]),
);
console.log(JSON.stringify({ rounds, batch: B, window_tokens: T, ways: result, max_abs_key_diff: maxDiff }, null, 1));
for (const g of [wasm, cpu, cpu2]) await g.dispose();
await pool.dispose();
