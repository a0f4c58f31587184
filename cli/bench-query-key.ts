/**
 * `npm run bench:query-key [-- --chunks 200 --threads 1]`
 *
 * What token-aligned RETRO pays for its query key once per chunk: the GPT's knn_key after catching
 * up by one chunk (8 tokens) on its KV cache, fed as 8 one-token calls (`next`, before) or as one
 * 8-token call (`extend`, now). Both run on the same GPT from the same held context, alternating
 * which goes first, in one process; prints the medians and their ratio as one JSON object.
 * (Issue 12 measured the key at 36% of a RETRO token with the one-token calls.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dataDir, REPO_ROOT } from '../src/core/datastore/node';
import { median } from '../src/core/eval/bench';
import { queryKey, type QueryGpt } from '../src/core/knnlm/aligned';
import { GptModel } from '../src/core/models';
import { Runtime } from '../src/core/runtime';
import { nodeModelFiles } from '../src/core/runtime/node-files';
import { loadTokenizer } from '../src/core/tokenizer';

const { values: args } = parseArgs({
  options: {
    gpt: { type: 'string', default: join(REPO_ROOT, 'public/models/gpt-wt2') },
    chunks: { type: 'string', default: '200' },
    threads: { type: 'string', default: '1' },
  },
});


const runtime = await Runtime.create({ prefer: 'wasm', wasmThreads: Number(args.threads) });
const files = nodeModelFiles(args.gpt!);
const gpt = await GptModel.load(runtime, files);
const tokenizer = loadTokenizer(JSON.parse(await files.text(gpt.manifest.tokenizer.file)) as unknown, { id: gpt.manifest.tokenizer.id });
const C = 8;
const window = gpt.manifest.hyperparameters.context;
const chunks = Number(args.chunks);
const ids = tokenizer.encode(readFileSync(join(dataDir(), 'wikitext-2', 'wiki.valid.tokens'), 'utf8').slice(0, 400_000));
const stepwise: QueryGpt = { manifest: gpt.manifest, get sequence() { return gpt.sequence; }, start: (t, o) => gpt.start(t, o), next: (t) => gpt.next(t) };
const timings = { next: [] as number[], extend: [] as number[] };
let maxDiff = 0;
for (let i = 0; i < chunks; i++) {
  // A held context of 16..(window - 8) tokens, as RETRO's GPT holds the sequence up to the last chunk.
  const held = C * (2 + (i % Math.floor((window - 2 * C) / C)));
  const start = (i * 997) % (ids.length - window);
  const context = ids.slice(start, start + held + C);
  const keys: Float32Array[] = [];
  for (const method of i % 2 ? (['extend', 'next'] as const) : (['next', 'extend'] as const)) {
    await gpt.start(context.slice(0, held));
    const t0 = performance.now();
    const key = await queryKey(method === 'extend' ? gpt : stepwise, context);
    timings[method].push(performance.now() - t0);
    keys.push(Float32Array.from(key));
  }
  for (let j = 0; j < keys[0]!.length; j++) maxDiff = Math.max(maxDiff, Math.abs(keys[0]![j]! - keys[1]![j]!));
}
const next = median(timings.next);
const extend = median(timings.extend);
console.log(JSON.stringify({
  bench: 'retro-query-key',
  chunk: C,
  chunks,
  threads: Number(args.threads),
  median_ms: { next_8_calls: Number(next.toFixed(2)), extend_1_call: Number(extend.toFixed(2)) },
  ratio_next_over_extend: Number((next / extend).toFixed(2)),
  max_abs_key_difference: maxDiff,
}));
await gpt.dispose();
