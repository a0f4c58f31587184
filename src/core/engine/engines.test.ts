/**
 * The two engines linked in one thread, as the CLIs link them and as the workers link them over
 * MessagePorts: the shipped GPT and RETRO (WASM, Node), a built-in datastore built here from
 * WikiText-2 valid with the shipped tokenizer and embedder, served from a folder laid out like
 * public/, and IndexedDB from fake-indexeddb (an in-memory implementation of the same API).
 */
import 'fake-indexeddb/auto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatastoreInfo, GenerateRequest, GenerationEvent, Progress, RetrievalState, ScoreRequest } from '../../protocol/api';
import { buildShard } from '../datastore/builder';
import { dataDir, loadModelFiles, REPO_ROOT } from '../datastore/node';
import { parseDocuments } from '../datastore/parse';
import { DatastoreStore } from '../datastore/store';
import { DEFAULT_ICRALM_SETTINGS } from '../icralm/types';
import { DEFAULT_REPLUG_SETTINGS } from '../replug/types';
import { DEFAULT_KNN_SETTINGS } from '../knnlm/types';
import { InferenceEngine } from './inference';
import { nodeFolder } from './node-folder';
import { RetrievalEngine } from './retrieval';

const LONG = 300_000;
const BASE = 'http://retrolab.test/';

const valid = readFileSync(join(dataDir(), 'wikitext-2', 'wiki.valid.tokens'), 'utf8');
/** Two slices of WikiText-2 valid: the built-in datastore's text, and a "dropped file" built in the engine. */
const BUILT_IN_TEXT = valid.slice(0, 20_000);
const DROPPED_TEXT = valid.slice(20_000, 26_000);

function request(overrides: Partial<GenerateRequest>): GenerateRequest {
  return {
    prompt: ' = Robert Boulter = \n Robert Boulter is an English film , television and theatre actor .',
    models: ['gpt'],
    decoding: { strategy: 'greedy', temperature: 1, topK: 0, topP: 1, seed: 1, maxTokens: 12, suppressUnk: true, repetitionPenalty: 1, noRepeatNgramSize: 0 },
    retro: { retrieval: true, k: 2, retrievalStep: 8, leftPad: true, retroPlusPlus: false, excludeDocIds: [] },
    knn: { ...DEFAULT_KNN_SETTINGS },
    icralm: { ...DEFAULT_ICRALM_SETTINGS },
    replug: { ...DEFAULT_REPLUG_SETTINGS },
    ...overrides,
  };
}

describe('InferenceEngine + RetrievalEngine in one thread', () => {
  let dir: string;
  let retrieval: RetrievalEngine;
  let inference: InferenceEngine;
  let initial: RetrievalState;
  const retrievalProgress: Progress[] = [];
  const inferenceProgress: Progress[] = [];
  let dropped: DatastoreInfo;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retrolab-engines-'));
    symlinkSync(join(REPO_ROOT, 'public', 'models'), join(dir, 'models'));
    mkdirSync(join(dir, 'datastores'));
    const files = loadModelFiles({});
    const { bytes, shard } = await buildShard(parseDocuments(new TextEncoder().encode(BUILT_IN_TEXT), 'valid.tokens', 'wikitext'), {
      name: 'Valid sample',
      tokenizer: files.tokenizer,
      embedder: files.embedder,
      chunkSize: files.chunkSize,
      neighbourLen: files.neighbourLen,
    });
    writeFileSync(join(dir, 'datastores', 'valid-sample.rlds'), bytes);
    const entry = { id: 'valid-sample', name: 'Valid sample', file: 'valid-sample.rlds', bytes: bytes.length, embedder_fingerprint: shard.meta.embedder.fingerprint };
    writeFileSync(join(dir, 'datastores', 'index.json'), JSON.stringify({ format_version: 1, datastores: [entry] }));

    retrieval = new RetrievalEngine({ folder: nodeFolder(dir), openStore: () => DatastoreStore.open(`engines-test-${process.pid}`) });
    inference = new InferenceEngine({ folder: nodeFolder(dir) });
    inference.connect(retrieval.neighbourServer);
    retrieval.useKeyBuilder(inference.keyBuilder);
    initial = await retrieval.init(BASE, (p) => void retrievalProgress.push(p));
    await inference.init(BASE, 'wasm', (p) => void inferenceProgress.push(p));
  }, LONG);

  afterAll(async () => {
    await inference?.dispose();
    retrieval?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('copies the built-in datastore in on first launch and makes it active, reporting each step by kind', () => {
    expect(initial.datastores.map((d) => d.id)).toEqual(['valid-sample']);
    expect(initial.activeId).toBe('valid-sample');
    const copied = retrievalProgress.filter((p) => p.kind === 'datastore-copy');
    expect(copied.at(-1)).toMatchObject({ datastoreId: 'valid-sample', finished: true, done: initial.datastores[0]!.bytes });
    expect(retrievalProgress.some((p) => p.kind === 'datastore-open' && p.finished)).toBe(true);
    const loaded = new Set(inferenceProgress.flatMap((p) => (p.kind === 'model' && p.finished && p.file.endsWith('.onnx') ? [p.model] : [])));
    expect([...loaded].sort()).toEqual(['gpt', 'retro']);
  });

  it('answers neighbour queries from the active datastore', async () => {
    const { neighbours } = await retrieval.retrieveText(BUILT_IN_TEXT.slice(3000, 3400), 2);
    expect(neighbours).toHaveLength(2);
    expect(BUILT_IN_TEXT).toContain(neighbours[0]!.title.trim());
  });

  it('builds a dropped file with kNN-LM keys made by the inference engine’s GPT, then loads them for kNN-LM', async () => {
    const progress: Progress[] = [];
    const result = await retrieval.build({ name: 'Dropped', files: [new File([DROPPED_TEXT], 'dropped.txt')], knnKeys: true }, (p) => void progress.push(p));
    dropped = result.built;
    expect(result.datastores.map((d) => d.id)).toContain(dropped.id);
    expect(dropped.knnlm?.entries).toBeGreaterThan(1000);
    const phases = new Set(progress.map((p) => p.phase));
    expect(phases).toContain('Embedding');
    expect(phases).toContain('kNN-LM keys (running the GPT)');
    expect(progress.every((p) => p.kind === 'build')).toBe(true);
    await retrieval.setActive(dropped.id);
    const knn = await inference.loadKnnFor('knnlm', () => undefined);
    expect(knn).toMatchObject({ datastoreId: dropped.id, entries: dropped.knnlm!.entries });
  }, LONG);

  it('generates every column; token-aligned RETRO’s neighbours come from the active datastore’s keys', async () => {
    const events: GenerationEvent[] = [];
    await inference.generate(request({ models: ['gpt', 'retro', 'knnlm'] }), (e) => void events.push(e));
    for (const model of ['gpt', 'retro', 'knnlm'] as const) {
      const done = events.find((e) => e.type === 'done' && e.model === model);
      expect(done).toMatchObject({ generated: 12, stopped: false });
      const written = events.flatMap((e) => (e.type === 'tokens' && e.model === model ? e.tokens : []));
      expect(written).toHaveLength(12);
    }
    const chunks = events.flatMap((e) => (e.type === 'chunk' && e.model === 'retro' ? [e.report] : []));
    expect(chunks.length).toBeGreaterThan(0);
    const neighbours = chunks.flatMap((c) => c.neighbours);
    expect(neighbours.length).toBeGreaterThan(0);
    // A .txt file is one document titled with the file's name.
    for (const n of neighbours) expect(n.title).toBe('dropped.txt');
  }, LONG);

  it('REPLUG mixes k passages of the active datastore: each retrieval reports k passages and their weights, each token its per-passage shares', async () => {
    const events: GenerationEvent[] = [];
    await inference.generate(request({ models: ['replug'], replug: { ...DEFAULT_REPLUG_SETTINGS, k: 3, stride: 4 } }), (e) => void events.push(e));
    const written = events.flatMap((e) => (e.type === 'tokens' && e.model === 'replug' ? e.tokens : []));
    expect(written).toHaveLength(12);
    const reports = events.flatMap((e) => (e.type === 'chunk' && e.model === 'replug' ? [e.report] : []));
    // One retrieval per block of 4 predictions: 12 tokens, 3 blocks.
    expect(reports).toHaveLength(3);
    for (const r of reports) {
      expect(r.neighbours).toHaveLength(3);
      expect(r.weights).toHaveLength(3);
      expect(r.weights!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      // Nearer passages weigh more.
      expect([...r.weights!].sort((a, b) => b - a)).toEqual(r.weights);
    }
    for (const t of written) {
      expect(t.passages).toHaveLength(3);
      // The written token's mixture probability is the weighted sum of the passages' runs.
      expect(t.passages!.reduce((s, p) => s + p.weight * p.probability, 0)).toBeCloseTo(t.probability!, 4);
    }
  }, LONG);

  it('scores the lens’s kNN-LM row with the request’s λ, k, T, whatever a Compare run set before', async () => {
    const text = valid.slice(40_000, 42_000);
    const lens = (knn: ScoreRequest['knn']): ScoreRequest => ({ text, models: ['knnlm'], retro: { retrieval: false, k: 2 }, knn, icralm: DEFAULT_ICRALM_SETTINGS });
    const a = { lambda: 0.5, k: 64, temperature: 10 };
    const first = (await inference.score(lens(a), () => undefined)).scores[0]!.nll;
    // A Compare run with other settings on the same shared kNN-LM model.
    await inference.generate(request({ models: ['knnlm'], knn: { lambda: 0.9, k: 8, temperature: 1 } }), () => undefined);
    const again = (await inference.score(lens(a), () => undefined)).scores[0]!.nll;
    expect(again).toBe(first);
    const other = (await inference.score(lens({ lambda: 0.9, k: 8, temperature: 1 }), () => undefined)).scores[0]!.nll;
    expect(other).not.toBe(first);
  }, LONG);

  it('evaluates a whole text through the engine as the lens scores it; window parts add up to the run', async () => {
    const text = valid.slice(30_000, 34_000);
    const base = { text, retro: { retrieval: false, k: 2 }, knn: { ...DEFAULT_KNN_SETTINGS }, icralm: DEFAULT_ICRALM_SETTINGS, replug: DEFAULT_REPLUG_SETTINGS };
    const lens = (await inference.score({ ...base, models: ['gpt'] }, () => undefined)).scores[0]!;
    const whole = await inference.evaluate({ ...base, model: 'gpt' }, () => undefined);
    expect(whole.scoredTokens).toBe(lens.scoredTokens);
    expect(Math.abs(whole.nll / lens.nll - 1)).toBeLessThan(1e-6);
    expect(whole.totalWindows).toBeGreaterThan(2);
    const head = await inference.evaluate({ ...base, model: 'gpt', maxWindows: 3 }, () => undefined);
    const parts = await Promise.all([{ start: 0, end: 1 }, { start: 1, end: 3 }].map((windows) => inference.evaluate({ ...base, model: 'gpt', maxWindows: 3, windows }, () => undefined)).map((p) => p.catch((e: unknown) => e)));
    // One run at a time holds the GPT: the second of two concurrent calls is refused, not interleaved.
    expect(parts.filter((p) => p instanceof Error)).toHaveLength(1);
    const first = await inference.evaluate({ ...base, model: 'gpt', maxWindows: 3, windows: { start: 0, end: 1 } }, () => undefined);
    const rest = await inference.evaluate({ ...base, model: 'gpt', maxWindows: 3, windows: { start: 1, end: 3 } }, () => undefined);
    expect(first.windows + rest.windows).toBe(head.windows);
    expect(first.scoredTokens + rest.scoredTokens).toBe(head.scoredTokens);
    expect(Math.abs((first.nll + rest.nll) / head.nll - 1)).toBeLessThan(1e-9);
    expect(head.wordPplEstimated).toBe(true);
  }, LONG);

  it('In-Context RALM’s stride curve: each stride is its own eval on the same targets, with the GPT alone', async () => {
    const text = valid.slice(30_000, 31_500);
    const base = { text, retro: { retrieval: false, k: 2 }, knn: { ...DEFAULT_KNN_SETTINGS }, replug: DEFAULT_REPLUG_SETTINGS, maxWindows: 1 };
    const progress: [number, number][] = [];
    const curve = await inference.evaluate({ ...base, model: 'icralm', icralm: { ...DEFAULT_ICRALM_SETTINGS, stride: 8, strides: [4, 8, 32] } }, (done, total) => void progress.push([done, total]));
    expect(curve.icralm!.strides.map((p) => p.stride)).toEqual([8, 4, 32]);
    const gpt = await inference.evaluate({ ...base, model: 'gpt', icralm: DEFAULT_ICRALM_SETTINGS }, () => undefined);
    expect(curve.icralm!.gpt.nll).toBe(gpt.nll);
    for (const point of curve.icralm!.strides) {
      const alone = await inference.evaluate({ ...base, model: 'icralm', icralm: { ...DEFAULT_ICRALM_SETTINGS, stride: point.stride } }, () => undefined);
      expect(point.nll).toBe(alone.nll);
      expect(alone.scoredTokens).toBe(gpt.scoredTokens);
      expect(point.blocks).toBe(Math.ceil(alone.scoredTokens / point.stride));
    }
    // The headline is the request's stride; progress runs over the four passes to its total.
    expect(curve.nll).toBe(curve.icralm!.strides[0]!.nll);
    expect(progress.at(-1)![0]).toBe(progress.at(-1)![1]);
    expect(progress.at(-1)![1]).toBe(4 * gpt.scoredTokens);
    expect(new Set(curve.icralm!.strides.map((p) => p.nll)).size).toBe(3);
  }, LONG);

  it('RAG-Sequence: the lens row is the eval’s number with a posterior per token; thorough decoding chooses the best marginal', async () => {
    const text = valid.slice(30_000, 31_500);
    const ragSequence = { k: 2, temperature: 0.1, span: 16, queryLength: 32 };
    const base = { text, retro: { retrieval: false, k: 2 }, knn: { ...DEFAULT_KNN_SETTINGS }, icralm: DEFAULT_ICRALM_SETTINGS, replug: DEFAULT_REPLUG_SETTINGS, ragSequence };
    const lens = (await inference.score({ ...base, models: ['ragseq'] }, () => undefined)).scores[0]!;
    const whole = await inference.evaluate({ ...base, model: 'ragseq' }, () => undefined);
    expect(whole.scoredTokens).toBe(lens.scoredTokens);
    expect(Math.abs(whole.nll / lens.nll - 1)).toBeLessThan(1e-6);
    expect(whole.passages!.forwards).toBe(2 * whole.passages!.blocks);
    const blocks = lens.ragSequence!.blocks;
    expect(blocks).toHaveLength(whole.passages!.blocks);
    for (const b of blocks) {
      expect(b.passages).toHaveLength(2);
      expect(b.posterior).toHaveLength(b.end - b.start + 1);
      for (const row of b.posterior) expect(row[0]! + row[1]!).toBeCloseTo(1, 9);
    }
    const decoded = await inference.ragSequenceDecode({ prompt: text.slice(0, 300), settings: { k: 2, temperature: 0.1, queryLength: 32 }, maxTokens: 4 }, () => undefined);
    expect(decoded.passages).toHaveLength(2);
    expect(decoded.candidates[decoded.chosen]!.logMarginal).toBe(Math.max(...decoded.candidates.map((c) => c.logMarginal)));
    expect(decoded.candidates.flatMap((c) => c.fromPassages).sort()).toEqual([0, 1]);
  }, LONG);

  it('Stop ends the running column at a token boundary and keeps what was written', async () => {
    const events: GenerationEvent[] = [];
    let stoppedAt = 0;
    await inference.generate(request({ models: ['gpt', 'retro'], decoding: { ...request({}).decoding, maxTokens: 240 } }), (e) => {
      events.push(e);
      if (e.type === 'tokens' && stoppedAt === 0) {
        stoppedAt = performance.now();
        inference.stop();
      }
    });
    const gptDone = events.find((e) => e.type === 'done' && e.model === 'gpt');
    expect(gptDone).toMatchObject({ stopped: true });
    const written = events.flatMap((e) => (e.type === 'tokens' && e.model === 'gpt' ? e.tokens : []));
    expect(gptDone?.type === 'done' && gptDone.generated).toBe(written.length);
    expect(written.length).toBeLessThan(240);
    // The column not yet started is not run at all.
    expect(events.find((e) => e.type === 'done' && e.model === 'retro')).toMatchObject({ generated: 0, stopped: true });
  }, LONG);

  it('exports a datastore; importing one already stored stores nothing; after a delete it imports again', async () => {
    const file = await retrieval.exportFile(dropped.id);
    const before = (await retrieval.state()).datastores.length;
    await expect(retrieval.importFile(file)).rejects.toThrow(/already stored as “Dropped”: nothing was imported/);
    expect((await retrieval.state()).datastores).toHaveLength(before);
    const afterRemove = await retrieval.remove(dropped.id);
    expect(afterRemove.datastores.map((d) => d.id)).not.toContain(dropped.id);
    // The active one was deleted: another stored datastore takes its place.
    expect(afterRemove.activeId).toBe('valid-sample');
    const { imported } = await retrieval.importFile(file);
    expect(imported).toMatchObject({ name: 'Dropped', origin: 'imported', chunks: dropped.chunks, knnlm: dropped.knnlm });
  }, LONG);

  it('adds kNN-LM keys to a stored datastore that had none; the engines then serve them to RETRO and kNN-LM', async () => {
    const { built } = await retrieval.build({ name: 'Later keys', files: [new File([DROPPED_TEXT.slice(0, 3000)], 'later.txt')] }, () => undefined);
    expect(built.knnlm).toBeUndefined();
    const chosen = await retrieval.setActive(built.id);
    // Another text: kNN-LM may read the built-in keys, RETRO must not; here there are none built in.
    expect(chosen.knn.retro).toBeNull();
    expect(await inference.loadKnnFor('retro', () => undefined)).toBeNull();
    const { updated, knn } = await retrieval.addKnnKeys(built.id, () => undefined);
    expect(updated).toMatchObject({ id: built.id, chunks: built.chunks, documents: built.documents });
    expect(updated.knnlm!.entries).toBeGreaterThan(500);
    expect(knn).toEqual({ knnlm: expect.objectContaining({ id: built.id }), retro: expect.objectContaining({ id: built.id }) });
    expect(await inference.loadKnnFor('retro', () => undefined)).toMatchObject({ datastoreId: built.id, entries: updated.knnlm!.entries });
    // Asked again, nothing reloads: the same state comes back.
    expect(await inference.loadKnnFor('knnlm', () => undefined)).toMatchObject({ datastoreId: built.id });
  }, LONG);
});
