/**
 * Generation and scoring agree (issue: "first rule out the runtime"). For a text whose document is
 * in the datastore, RETRO's distribution at every step of incremental generation (KV cache, one
 * retrieval per completed chunk through the app's token-aligned NeighbourSource) equals the
 * teacher-forced distribution the perplexity lens computes at that position (one prefill, the
 * lens's window neighbours), and greedy generation emits the first step's top token.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alignedWindowNeighbours } from '../eval/neighbours';
import { generate, GREEDY } from '../generate';
import { GptModel } from '../models/gpt';
import { RetroModel } from '../models/retro';
import { GPT_ID, MODELS_DIR, RETRO_ID } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { loadTokenizer } from '../tokenizer';
import { alignedNeighbourSource } from './aligned';
import { buildKnnShard } from './build';
import { KnnDatastore } from './datastore';

const TEXT =
  'The Zorbel Lighthouse stands on a basalt spur at the mouth of the Cray estuary . ' +
  'Its keeper is traditionally a woman named Orlaith Vessendrake , and the lamp of the lighthouse burns purple whale oil . ' +
  'The tower was rebuilt in 1874 after a storm , and its light can be seen for nineteen miles .';

describe('RETRO generation equals teacher-forced scoring', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  let queryGpt: GptModel;
  let retro: RetroModel;
  let store: KnnDatastore;
  let ids: number[];

  beforeAll(async () => {
    runtime = await Runtime.create({ prefer: 'wasm' });
    gpt = await GptModel.load(runtime, nodeModelFiles(join(MODELS_DIR, GPT_ID)));
    queryGpt = await GptModel.load(runtime, nodeModelFiles(join(MODELS_DIR, GPT_ID)));
    retro = await RetroModel.load(runtime, nodeModelFiles(join(MODELS_DIR, RETRO_ID)));
    const tokenizer = loadTokenizer(JSON.parse(readFileSync(join(MODELS_DIR, GPT_ID, 'tokenizer.json'), 'utf8')), { id: gpt.manifest.tokenizer.id });
    store = KnnDatastore.fromShard((await buildKnnShard([{ title: 'Zorbel', text: TEXT }], { name: 'zorbel', tokenizer, model: gpt })).shard);
    ids = tokenizer.encode(TEXT);
    retro.setNeighbourSource(alignedNeighbourSource({ queryGpt: () => queryGpt, datastore: () => store, chunk: () => retro.hp.chunk }));
    retro.setOptions({ leftPad: false, retrieval: true });
  }, 120_000);

  afterAll(async () => {
    await retro?.dispose();
    await queryGpt?.dispose();
    await gpt?.dispose();
  });

  it('every incremental step matches the teacher-forced row, and greedy emits its top token', async () => {
    const { chunk: C, neighbours: K, neighbour_len: L } = retro.hp;
    const W = Math.min(ids.length, 6 * C);
    const inputs = Int32Array.from(ids.slice(0, W));
    const rows = await alignedWindowNeighbours({ mode: 'real', chunk: C, k: K, K, neighbourLen: L, eotId: retro.manifest.tokenizer.eot_id, queryModel: queryGpt, stores: [store] })(inputs, { start: 0, firstScored: 0 } as never);
    const forced = await retro.forwardBatch([Array.from(inputs)], [rows]);
    const V = retro.info.vocabSize;
    const argmax = (a: Float32Array) => a.reduce((best, v, i) => (v > a[best]! ? i : best), 0);
    // Start mid-chunk, after two chunks have retrieved: the steps cross a chunk boundary and a new retrieval.
    const m = 2 * C + 3;
    let out = await retro.start(ids.slice(0, m));
    let worst = 0;
    for (let t = m; t < W; t++) {
      const step = out.logits.subarray((out.rows - 1) * V, out.rows * V);
      const row = forced.subarray((t - 1) * V, t * V);
      for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(step[v]! - row[v]!));
      expect(argmax(step)).toBe(argmax(row));
      out = await retro.next(ids[t]!);
    }
    expect(worst).toBeLessThan(1e-3);
    // Retrieval must matter here, or the test would pass for a RETRO that ignores its neighbours.
    const without = await retro.forwardBatch([Array.from(inputs)], null);
    let moved = 0;
    for (let i = (2 * C) * V; i < W * V; i++) moved = Math.max(moved, Math.abs(without[i]! - forced[i]!));
    expect(moved).toBeGreaterThan(0.1);
    const first = await generate(retro, ids.slice(0, m), { ...GREEDY, maxNewTokens: 1, stopTokenId: null });
    expect(first.tokenIds[0]).toBe(argmax(forced.subarray((m - 1) * V, m * V)));
  }, 120_000);
});
