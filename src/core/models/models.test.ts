/**
 * The shipped int8 ONNX models through the runtime (Node, WASM), against PyTorch and against
 * themselves. Models ship with the repo, so missing models fail; only the PyTorch parity checks
 * skip when models/fixtures/<id>.parity.json does not exist.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { GptModel } from './gpt';
import { RetroModel } from './retro';
import {
  GPT_ID,
  MODELS_DIR,
  RETRO_ID,
  fixturePath,
  fixtureSource,
  hashedSource,
  maxDiff,
  maxDiffAtPositions,
  readFixture,
  type ParityFixture,
} from './test-support';

const KV_TOLERANCE = 1e-3;
/** Earlier rows must not move when a later input changes; float noise only. */
const CAUSAL_TOLERANCE = 1e-4;

let runtime: Runtime;
let gpt: GptModel;
let retro: RetroModel;

beforeAll(async () => {
  runtime = await Runtime.create();
  gpt = await GptModel.load(runtime, nodeModelFiles(join(MODELS_DIR, GPT_ID)));
  retro = await RetroModel.load(runtime, nodeModelFiles(join(MODELS_DIR, RETRO_ID)));
});

afterAll(async () => {
  await gpt?.dispose();
  await retro?.dispose();
});

/** Token ids to test with: the fixture's when it exists, else a fixed pseudo-random sequence. */
function testIds(fixture: ParityFixture | null, vocab: number, n = 80): number[] {
  if (fixture && fixture.input_ids.length >= n) return fixture.input_ids.slice(0, n);
  return Array.from({ length: n }, (_, i) => (101 + i * 997) % vocab);
}

function rowsOf(logits: Float32Array, vocab: number, from: number, to: number): Float32Array {
  return logits.subarray(from * vocab, to * vocab);
}

describe.each([
  ['gpt', GPT_ID],
  ['retro', RETRO_ID],
])('PyTorch parity (%s)', (kind, id) => {
  const fixture = readFixture(id);
  it.skipIf(!fixture)(`shipped int8 ONNX matches PyTorch within the fixture's tolerance${fixture ? '' : ` — SKIPPED: ${fixturePath(id)} does not exist`}`, async () => {
    const f = fixture!;
    const model = kind === 'gpt' ? gpt : retro;
    const V = model.info.vocabSize;
    const positions = f.positions ?? f.input_ids.map((_, i) => i);
    let logits: Float32Array;
    if (model instanceof RetroModel) {
      model.setNeighbourSource(fixtureSource(f, model.hp.chunk));
      model.setOptions({ retrieval: true, k: model.hp.neighbours, retrievalStep: model.hp.chunk, leftPad: false, retroPlusPlus: false });
      logits = (await model.start(f.input_ids, { allLogits: true })).logits;
      // The eval's batch path must give the same numbers as the sequence path.
      const batch = await model.forwardBatch([f.input_ids], [Int32Array.from(f.neighbour_ids!.flat(2))]);
      expect(maxDiff(batch, logits)).toBeLessThan(1e-4);
    } else {
      logits = (await model.start(f.input_ids, { allLogits: true })).logits;
    }
    const fp32Tolerance = f.tolerance_int8_vs_fp32_torch ?? f.tolerance_int8;
    expect(fp32Tolerance, 'fixture has no fp32 tolerance').toBeTypeOf('number');
    const fp32Diff = maxDiffAtPositions(logits, V, positions, f.logits_fp32_torch);
    expect(fp32Diff).toBeLessThanOrEqual(fp32Tolerance!);
    if (f.logits_int8_torch && f.tolerance_int8_vs_int8_torch !== undefined) {
      const int8Diff = maxDiffAtPositions(logits, V, positions, f.logits_int8_torch);
      expect(int8Diff).toBeLessThanOrEqual(f.tolerance_int8_vs_int8_torch);
    }
  });
});

describe('GPT', () => {
  it('runs on WASM in Node and says why', () => {
    expect(gpt.info.backend.backend).toBe('wasm');
    expect(gpt.info.backend.reason).toMatch(/Node/);
  });

  it('KV-cache decode token by token equals the full prefill', async () => {
    const V = gpt.info.vocabSize;
    const ids = testIds(readFixture(GPT_ID), V);
    const full = (await gpt.start(ids, { allLogits: true })).logits;
    const first = await gpt.start(ids.slice(0, 3), { allLogits: true });
    let worst = maxDiff(first.logits, rowsOf(full, V, 0, 3));
    for (let t = 3; t < ids.length; t++) {
      const step = await gpt.next(ids[t]!);
      expect(step.rows).toBe(1);
      worst = Math.max(worst, maxDiff(step.logits, rowsOf(full, V, t, t + 1)));
    }
    expect(worst).toBeLessThan(KV_TOLERANCE);
  });

  it('is causal: changing token t leaves earlier logits unchanged and changes logits at t', async () => {
    const V = gpt.info.vocabSize;
    const ids = testIds(readFixture(GPT_ID), V, 48);
    const t = 30;
    const changed = [...ids];
    changed[t] = (ids[t]! + 1234) % V;
    const a = (await gpt.start(ids, { allLogits: true })).logits;
    const b = (await gpt.start(changed, { allLogits: true })).logits;
    expect(maxDiff(rowsOf(a, V, 0, t), rowsOf(b, V, 0, t))).toBeLessThan(CAUSAL_TOLERANCE);
    expect(maxDiff(rowsOf(a, V, t, t + 1), rowsOf(b, V, t, t + 1))).toBeGreaterThan(1e-2);
  });

  it('returns kNN-LM keys of d_model per position', async () => {
    const out = await gpt.start([5, 6, 7, 8], { allLogits: true });
    expect(out.knnKeys?.length).toBe(4 * gpt.manifest.hyperparameters.d_model);
    const last = await gpt.next(9);
    expect(last.knnKeys?.length).toBe(gpt.manifest.hyperparameters.d_model);
  });

  it('batch forward equals the sequence path', async () => {
    const V = gpt.info.vocabSize;
    const a = testIds(null, V, 40);
    const b = a.map((x) => (x * 7 + 3) % V);
    const batch = await gpt.forwardBatch([a, b]);
    const seqB = (await gpt.start(b, { allLogits: true })).logits;
    expect(maxDiff(batch.subarray(40 * V), seqB)).toBeLessThan(1e-4);
  });

  it('restarts the cache on the most recent tokens when the context is full', async () => {
    const V = gpt.info.vocabSize;
    const context = gpt.info.context;
    const ids = testIds(null, V, context + 12);
    await gpt.start(ids.slice(0, context - 4));
    let restartLogits: Float32Array | null = null;
    let restarts = 0;
    for (let t = context - 4; t < ids.length; t++) {
      const out = await gpt.next(ids[t]!);
      if (out.restarted) {
        restarts++;
        restartLogits ??= out.logits.slice();
        if (restarts === 1) expect(t).toBe(context);
      }
    }
    expect(restarts).toBe(1);
    const drop = Math.floor(context / 4);
    const kept = ids.slice(context + 1 - (context - drop), context + 1);
    const fresh = (await gpt.start(kept)).logits;
    expect(maxDiff(restartLogits!, fresh)).toBeLessThan(KV_TOLERANCE);
    expect(gpt.sequence.length).toBe(kept.length);
  });
});

describe('RETRO', () => {
  const fixture = readFixture(RETRO_ID);
  /** Neighbour rows to draw from: the fixture's when present, else token runs of the test ids. */
  const pool = (): number[][] => {
    if (fixture?.neighbour_ids) return fixture.neighbour_ids.flat(1);
    const L = retro.hp.neighbour_len;
    return Array.from({ length: 8 }, (_, r) => Array.from({ length: L }, (_, i) => (r * 131 + i * 17 + 5) % retro.info.vocabSize));
  };
  const standard = () => ({ retrieval: true, k: retro.hp.neighbours, retrievalStep: retro.hp.chunk, leftPad: false, retroPlusPlus: false, excludeDocIds: [] });

  it('KV-cache decode token by token equals the full prefill, retrievals once per chunk', async () => {
    const V = retro.info.vocabSize;
    const C = retro.hp.chunk;
    const ids = testIds(fixture, V, 2 * C + C / 2); // two complete chunks, then half of a third
    const log: number[][] = [];
    retro.setNeighbourSource(hashedSource(pool(), log));
    retro.setOptions(standard());
    const full = await retro.start(ids, { allLogits: true });
    expect(full.retrievals.map((r) => r.chunkIndex)).toEqual([0, 1]);
    expect(full.retrievals.map((r) => r.position)).toEqual([C - 1, 2 * C - 1]);
    expect(full.retrievals[0]!.queryTokenIds).toEqual(ids.slice(0, C));
    const first = await retro.start(ids.slice(0, 5), { allLogits: true });
    let worst = maxDiff(first.logits, rowsOf(full.logits, V, 0, 5));
    const seen: number[] = [];
    for (let t = 5; t < ids.length; t++) {
      const step = await retro.next(ids[t]!);
      seen.push(...step.retrievals.map((r) => r.position));
      worst = Math.max(worst, maxDiff(step.logits, rowsOf(full.logits, V, t, t + 1)));
    }
    expect(worst).toBeLessThan(KV_TOLERANCE);
    expect(seen).toEqual([C - 1, 2 * C - 1]);
  });

  it("changing chunk u's neighbours leaves logits before position (u+1)*C-1 unchanged", async () => {
    const V = retro.info.vocabSize;
    const C = retro.hp.chunk;
    const ids = testIds(fixture, V, 3 * C + 8);
    const rows = pool();
    const base = async (u: number | null) => {
      retro.setNeighbourSource(async (query) => {
        const chunkIndex = ids.findIndex((_, i) => i % C === 0 && ids.slice(i, i + C).join(',') === query.join(',')) / C;
        const other = chunkIndex === u ? 1 : 0;
        return [rows[other % rows.length]!, rows[(other + 2) % rows.length]!];
      });
      retro.setOptions(standard());
      return (await retro.start(ids, { allLogits: true })).logits;
    };
    const reference = await base(null);
    for (const u of [0, 1]) {
      const changed = await base(u);
      const boundary = (u + 1) * C - 1;
      expect(maxDiff(rowsOf(reference, V, 0, boundary), rowsOf(changed, V, 0, boundary))).toBeLessThan(CAUSAL_TOLERANCE);
      expect(maxDiff(rowsOf(reference, V, boundary, boundary + 1), rowsOf(changed, V, boundary, boundary + 1))).toBeGreaterThan(1e-5);
    }
  });

  it('batch forward with pre-encoded chunks equals the one that runs the encoder', async () => {
    const { chunk: C, neighbours: K, neighbour_len: L } = retro.hp;
    const V = retro.info.vocabSize;
    const rows = pool();
    const a = testIds(fixture, V, 2 * C + 5);
    const b = a.map((x) => (x * 3 + 1) % V);
    const ids = [0, 1].map((s) => Int32Array.from([...rows[s]!, ...rows[s + 1]!, ...rows[s + 2]!, ...rows[s]!].slice(0, 2 * K * L)));
    const direct = await retro.forwardBatch([a, b], ids);
    // The retrieving chunks (sequence s, chunk u: tokens u*C..u*C+C-1), which a chunk-agreement RETRO's encoder reads.
    const chunkIds = [a, b].flatMap((seq) => seq.slice(0, 2 * C));
    const encoded = await retro.encode(Int32Array.from([...ids[0]!, ...ids[1]!]), chunkIds);
    expect(encoded.chunks).toBe(4);
    const sets = [0, 1].map((s) => [0, 1].map((u) => retro.chunkOf(encoded, s * 2 + u)));
    const cached = await retro.forwardBatch([a, b], sets);
    expect(maxDiff(direct, cached)).toBeLessThan(1e-4);
    // Chunk order matters: swapping the two chunks of sequence 0 changes its logits after C-1.
    const swapped = await retro.forwardBatch([a, b], [[sets[0]![1]!, sets[0]![0]!], sets[1]!]);
    expect(maxDiff(direct.subarray(C * V, (C + 1) * V), swapped.subarray(C * V, (C + 1) * V))).toBeGreaterThan(1e-5);
  });

  it('is causal in its input tokens', async () => {
    const V = retro.info.vocabSize;
    const ids = testIds(fixture, V, 72);
    retro.setNeighbourSource(hashedSource(pool()));
    retro.setOptions(standard());
    const t = 50;
    const changed = [...ids];
    changed[t] = (ids[t]! + 99) % V;
    const a = (await retro.start(ids, { allLogits: true })).logits;
    const b = (await retro.start(changed, { allLogits: true })).logits;
    expect(maxDiff(rowsOf(a, V, 0, t), rowsOf(b, V, 0, t))).toBeLessThan(CAUSAL_TOLERANCE);
    expect(maxDiff(rowsOf(a, V, t, t + 1), rowsOf(b, V, t, t + 1))).toBeGreaterThan(1e-2);
  });

  it('works with fewer tokens than a chunk, then retrieves when the first chunk completes', async () => {
    const V = retro.info.vocabSize;
    const C = retro.hp.chunk;
    const ids = testIds(fixture, V, C + 4);
    const log: number[][] = [];
    retro.setNeighbourSource(hashedSource(pool(), log));
    retro.setOptions(standard());
    const short = await retro.start(ids.slice(0, 5), { allLogits: true });
    expect(short.rows).toBe(5);
    expect(short.retrievals).toEqual([]);
    expect(short.logits.every(Number.isFinite)).toBe(true);
    // Before the first chunk completes nothing attends, so it equals retrieval off.
    retro.setOptions({ retrieval: false });
    const off = await retro.start(ids.slice(0, 5), { allLogits: true });
    expect(maxDiff(short.logits, off.logits)).toBeLessThan(1e-5);
    retro.setOptions({ retrieval: true });
    await retro.start(ids.slice(0, 5));
    for (let t = 5; t < ids.length; t++) await retro.next(ids[t]!);
    expect(log).toEqual([ids.slice(0, C)]);
  });

  it('retrieval off masks every position: equals the no-retrieval positions and ignores neighbours', async () => {
    const V = retro.info.vocabSize;
    const C = retro.hp.chunk;
    const ids = testIds(fixture, V, 2 * C + 10);
    retro.setNeighbourSource(hashedSource(pool()));
    retro.setOptions(standard());
    const on = (await retro.start(ids, { allLogits: true })).logits;
    retro.setOptions({ retrieval: false });
    retro.setNeighbourSource(null);
    const off = await retro.start(ids, { allLogits: true });
    expect(off.retrievals).toEqual([]);
    expect(maxDiff(rowsOf(on, V, 0, C - 1), rowsOf(off.logits, V, 0, C - 1))).toBeLessThan(1e-5);
    expect(maxDiff(rowsOf(on, V, C - 1, 2 * C), rowsOf(off.logits, V, C - 1, 2 * C))).toBeGreaterThan(1e-5);
    const batchOff = await retro.forwardBatch([ids], null);
    expect(maxDiff(batchOff, off.logits)).toBeLessThan(1e-4);
  });

  it('k=1 repeats the top neighbour, which equals a source that returns it twice', async () => {
    const V = retro.info.vocabSize;
    const ids = testIds(fixture, V, 70);
    const rows = pool();
    retro.setNeighbourSource(async (_q, k) => [rows[0]!, rows[1]!].slice(0, k));
    retro.setOptions({ ...standard(), k: 1 });
    const k1 = (await retro.start(ids, { allLogits: true })).logits;
    retro.setNeighbourSource(async () => [rows[0]!, rows[0]!]);
    retro.setOptions(standard());
    const twice = (await retro.start(ids, { allLogits: true })).logits;
    expect(maxDiff(k1, twice)).toBeLessThan(1e-5);
    expect(() => retro.setOptions({ k: retro.hp.neighbours + 1 })).toThrow(RangeError);
  });

  it('retrieval step s < chunk re-retrieves every s tokens; decode equals prefill', async () => {
    const V = retro.info.vocabSize;
    const C = retro.hp.chunk;
    const s = 8;
    const ids = testIds(fixture, V, 2 * C + 12);
    const log: number[][] = [];
    retro.setNeighbourSource(hashedSource(pool(), log));
    retro.setOptions({ ...standard(), retrievalStep: s });
    const full = await retro.start(ids, { allLogits: true });
    const positions = full.retrievals.map((r) => r.position);
    const expected: number[] = [];
    for (let p = C - 1; p < ids.length; p += s) expected.push(p);
    expect(positions).toEqual(expected);
    expect(full.retrievals[1]!.queryTokenIds).toEqual(ids.slice(C - 1 + s - C + 1, C - 1 + s + 1));
    await retro.start(ids.slice(0, 10));
    let worst = 0;
    for (let t = 10; t < ids.length; t++) {
      const step = await retro.next(ids[t]!);
      worst = Math.max(worst, maxDiff(step.logits, rowsOf(full.logits, V, t, t + 1)));
    }
    expect(worst).toBeLessThan(KV_TOLERANCE);
  });

  it('left padding completes the first chunk with the prompt, so retrieval starts at once', async () => {
    const V = retro.info.vocabSize;
    const C = retro.hp.chunk;
    const prompt = testIds(fixture, V, 5);
    const log: number[][] = [];
    retro.setNeighbourSource(hashedSource(pool(), log));
    retro.setOptions({ ...standard(), leftPad: true });
    const out = await retro.start(prompt);
    expect(retro.sequence.length).toBe(C);
    expect(retro.prefixLength).toBe(C - 5);
    expect(retro.sequence.slice(0, C - 5).every((id) => id === retro.manifest.tokenizer.eot_id)).toBe(true);
    expect(out.retrievals).toHaveLength(1);
    expect(out.retrievals[0]!.queryTokenIds).toEqual(prompt);
  });

  it('RETRO++ puts the top-1 neighbour text before the prompt', async () => {
    const V = retro.info.vocabSize;
    const prompt = testIds(fixture, V, 12);
    const rows = pool();
    retro.setNeighbourSource(async () => [rows[0]!, rows[1]!]);
    retro.setOptions({ ...standard(), retroPlusPlus: true });
    const out = await retro.start(prompt);
    const context = out.retrievals[0]!;
    expect(context.purpose).toBe('context');
    const prefix = retro.sequence.slice(0, retro.prefixLength);
    expect(prefix).toEqual(rows[0]!.slice(0, prefix.length));
    expect(retro.sequence.slice(retro.prefixLength)).toEqual(prompt);
  });

  it('restarts on a chunk-aligned suffix when the context is full', async () => {
    const V = retro.info.vocabSize;
    const C = retro.hp.chunk;
    const context = retro.info.context;
    const ids = testIds(null, V, context + 6);
    retro.setNeighbourSource(hashedSource(pool()));
    retro.setOptions(standard());
    await retro.start(ids.slice(0, context - 2));
    let restartLogits: Float32Array | null = null;
    for (let t = context - 2; t < ids.length; t++) {
      const out = await retro.next(ids[t]!);
      if (out.restarted) {
        expect(t).toBe(context);
        restartLogits = out.logits.slice();
      }
    }
    expect(restartLogits).not.toBeNull();
    const drop = Math.floor(context / 4 / C) * C;
    const kept = ids.slice(drop, context + 1);
    const fresh = (await retro.start(kept)).logits;
    expect(maxDiff(restartLogits!, fresh)).toBeLessThan(KV_TOLERANCE);
  });
});
