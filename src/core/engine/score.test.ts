import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShard } from '../datastore/builder';
import { Datastore } from '../datastore/datastore';
import { datastoreEvalStore, windowNeighbours } from '../eval/neighbours';
import { evaluatePerplexity, streamWindows } from '../eval/perplexity';
import { tokenizeWikiTextStream } from '../eval/stream';
import { GptModel } from '../models/gpt';
import { RetroModel } from '../models/retro';
import { DEFAULT_ICRALM_SETTINGS, evaluateIcRalm } from '../icralm';
import { DEFAULT_KNN_SETTINGS } from '../knnlm/types';
import { buildKnnShard } from '../knnlm/build';
import { KnnDatastore } from '../knnlm/datastore';
import { KnnLmModel } from '../knnlm/model';
import { GPT_ID, MODELS_DIR, RETRO_ID } from '../models/test-support';
import { Runtime } from '../runtime';
import { nodeModelFiles } from '../runtime/node-files';
import { countWikiTextWords, type RetroTokenizer } from '../tokenizer';
import { readEmbedder, readTokenizer } from '../datastore/node';
import type { NeighbourServer, ScoreEvent } from '../../protocol/api';
import { LensInputError, checkLensText, icRalmScorer, scoreText, scoredTokensByWindow, serverEvalStore, type LensModel, type ScoreContext } from './score';

/** The lens request's kNN-LM and In-Context RALM settings (the rows here build their own models). */
const SETTINGS = { knn: DEFAULT_KNN_SETTINGS, icralm: DEFAULT_ICRALM_SETTINGS };

const ARTICLES = [
  ' = Alpha River = \n The Alpha River flows north through the valley for 120 miles before it joins the sea near the old harbour town . \n',
  ' = Beta Castle = \n Beta Castle was built in the twelfth century by a local lord and was rebuilt twice after fires in 1402 and 1688 . \n',
  ' = Gamma Song = \n " Gamma Song " is a single by the band Delta , released in 1999 ; it reached number four on the charts . \n',
];
/** Long enough for three windows (context 256, stride 128). */
const TEXT = Array.from({ length: 4 }, () => ARTICLES.join('')).join('');

describe('scoredTokensByWindow', () => {
  it('counts every token but the first once', () => {
    for (const n of [2, 100, 257, 600]) expect(scoredTokensByWindow(streamWindows(n, 256, 128)).at(-1)).toBe(n - 1);
  });
});

describe('checkLensText', () => {
  it('refuses empty and over-long text with a message that states the limit', () => {
    expect(() => checkLensText('  \n ')).toThrow(LensInputError);
    expect(() => checkLensText('x'.repeat(2_000_000))).toThrow(/at most 1,500,000/);
    expect(() => checkLensText('A short text .')).not.toThrow();
  });
});

describe('scoreText on the shipped models', () => {
  let runtime: Runtime;
  let gpt: GptModel;
  let retro: RetroModel;
  let tokenizer: RetroTokenizer;
  let datastore: Datastore;

  beforeAll(async () => {
    runtime = await Runtime.create();
    gpt = await GptModel.load(runtime, nodeModelFiles(join(MODELS_DIR, GPT_ID)));
    retro = await RetroModel.load(runtime, nodeModelFiles(join(MODELS_DIR, RETRO_ID)));
    const dir = join(MODELS_DIR, RETRO_ID);
    tokenizer = readTokenizer(join(dir, 'tokenizer.json'));
    const e = retro.manifest.embedder!;
    const embedder = readEmbedder(join(dir, e.file), e.vocab_size, e.dim, e.id);
    const built = await buildShard(
      ARTICLES.map((text, i) => ({ title: `doc ${i}`, text: text.replace(/[0-9]+/g, (d) => String(Number(d) + 1)) })),
      { name: 'test', tokenizer, embedder, chunkSize: retro.hp.chunk, neighbourLen: retro.hp.neighbour_len },
    );
    datastore = Datastore.fromShard(built.shard, embedder);
  });

  afterAll(async () => {
    await gpt?.dispose();
    await retro?.dispose();
  });

  // The retrieval engine's NeighbourServer, served from the same datastore the Node eval reads.
  const server: Pick<NeighbourServer, 'retrieve'> = {
    async retrieve(ids, k) {
      const found = datastore.retrieve(ids, k);
      return { tokenIds: found.map((n) => Array.from(n.tokenIds)), views: found.map((n) => ({ distance: n.distance }) as never), latencyMs: 0, datastoreId: 'test' };
    },
  };

  function context(extra: Record<string, LensModel> = {}): ScoreContext {
    const models: Record<string, LensModel> = {
      ...extra,
      gpt: { key: 'gpt', name: 'GPT', model: gpt, context: 256 },
      retro: {
        key: 'retro',
        name: 'RETRO',
        model: retro,
        context: 256,
        retro: { chunk: retro.hp.chunk, K: retro.hp.neighbours, neighbourLen: retro.hp.neighbour_len, eotId: retro.manifest.tokenizer.eot_id },
      },
    };
    return {
      tokenizer,
      tokenViews: (ids) => ids.map((id) => ({ id, text: tokenizer.decode([id]) })),
      model: (key) => models[key] ?? `${key} is not loaded`,
      neighbours: serverEvalStore(server),
    };
  }

  it('gives the eval totals for each model, and per-token scores that add up to them', async () => {
    const events: ScoreEvent[] = [];
    const result = await scoreText({ text: TEXT, models: ['gpt', 'retro'], retro: { retrieval: true, k: 2 }, ...SETTINGS }, context(), (e) => void events.push(e), new AbortController().signal);

    const ids = tokenizeWikiTextStream(tokenizer, TEXT);
    const words = countWikiTextWords(TEXT);
    expect(result.tokens.map((t) => t.id)).toEqual(Array.from(ids));
    expect(result.words).toBe(words);
    expect(result.windows).toBe(streamWindows(ids.length, 256, 128).length);
    expect(result.windows).toBeGreaterThan(2);

    const { chunk: C, neighbours: K, neighbour_len: L } = retro.hp;
    const expected = {
      gpt: await evaluatePerplexity(gpt, ids, { context: 256, stride: 128, batch: 1, words }),
      retro: await evaluatePerplexity(retro, ids, {
        context: 256,
        stride: 128,
        batch: 1,
        words,
        neighbours: windowNeighbours(datastoreEvalStore(datastore), { mode: 'real', chunk: C, k: 2, K, neighbourLen: L, eotId: retro.manifest.tokenizer.eot_id }),
      }),
    };
    for (const score of result.scores) {
      const eval_ = expected[score.model as 'gpt' | 'retro'];
      expect(score.nll).toBe(eval_.nll);
      expect(score.tokenPpl).toBe(eval_.token_ppl);
      expect(score.wordPpl).toBe(eval_.word_ppl);
      expect(score.scoredTokens).toBe(ids.length - 1);
      expect(score.logProbs[0]).toBeNaN();
      let sum = 0;
      for (let i = 1; i < score.logProbs.length; i++) {
        expect(score.logProbs[i]).toBeLessThanOrEqual(0);
        sum -= score.logProbs[i]!;
      }
      expect(sum).toBeCloseTo(eval_.nll, 1);
    }
    expect(result.scores[1]!.retrieval).toEqual({ datastoreId: 'test' });
    // Retrieval changes RETRO's scores (the store holds near copies of the text).
    expect(result.scores[1]!.nll).not.toBe((await evaluatePerplexity(retro, ids, { context: 256, stride: 128, batch: 2, neighbours: undefined })).nll);

    const progress = events.filter((e) => e.type === 'progress');
    expect(events[0]).toMatchObject({ type: 'tokenized', tokens: ids.length, words });
    expect(progress.at(-1)).toMatchObject({ done: 2 * (ids.length - 1), total: 2 * (ids.length - 1) });
  });

  it('kNN-LM and In-Context RALM rows: the same numbers as their own evals, scores on the right tokens', async () => {
    // One copy of the articles: In-Context RALM runs one forward per 4 tokens.
    const text = ARTICLES.join('');
    const ids = tokenizeWikiTextStream(tokenizer, text);
    const built = await buildKnnShard([{ title: 'text', text }], { name: 'leak', tokenizer, model: gpt });
    const knn = new KnnLmModel(gpt, KnnDatastore.fromShard(built.shard), { settings: { lambda: 0.25, k: 16, temperature: 1 }, ownsModel: false });
    const separator = tokenizer.encode('\n');
    const icralm = icRalmScorer(gpt, server, retro.manifest.tokenizer.eot_id, separator, DEFAULT_ICRALM_SETTINGS);
    const extra: Record<string, LensModel> = {
      knnlm: { key: 'knnlm', name: 'kNN-LM', model: knn, context: 256 },
      icralm: { key: 'icralm', name: 'In-Context RALM', model: gpt, context: 256, ownScorer: icralm },
    };
    const result = await scoreText({ text, models: ['gpt', 'knnlm', 'icralm'], retro: { retrieval: true, k: 2 }, ...SETTINGS }, context(extra), () => {}, new AbortController().signal);
    const [plain, knnRow, icRow] = result.scores;
    const viaEval = await evaluatePerplexity(knn, ids, { context: 256, stride: 128, batch: 1 });
    expect(knnRow!.nll).toBe(viaEval.nll);
    // The datastore holds this very text, so kNN-LM must beat the GPT by far (and per token mostly).
    expect(knnRow!.tokenPpl).toBeLessThan(plain!.tokenPpl / 3);

    const direct = await evaluateIcRalm(gpt, ids, {
      separator,
      retrieve: async (queries) => Promise.all(queries.map(async (q) => ({ tokenIds: (await server.retrieve([...q], 1, [])).tokenIds[0]!.filter((id) => id !== retro.manifest.tokenizer.eot_id) }))),
    });
    expect(icRow!.nll).toBeCloseTo(direct.nll, 6);
    expect(icRow!.scoredTokens).toBe(ids.length - 1);
    expect(icRow!.logProbs[0]).toBeNaN();
    expect(icRow!.logProbs[1]).toBeCloseTo(direct.logProbs[0]!, 5);
    expect(icRow!.logProbs[ids.length - 1]).toBeCloseTo(direct.logProbs[ids.length - 2]!, 5);
  }, 240_000);

  it('stops with an AbortError, and refuses text it cannot score', async () => {
    const controller = new AbortController();
    const run = scoreText({ text: TEXT, models: ['gpt'], retro: { retrieval: false, k: 2 }, ...SETTINGS }, context(), (e) => {
      if (e.type === 'progress') controller.abort();
    }, controller.signal);
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    const signal = new AbortController().signal;
    await expect(scoreText({ text: '', models: ['gpt'], retro: { retrieval: false, k: 2 }, ...SETTINGS }, context(), () => {}, signal)).rejects.toThrow(/no text/);
    await expect(scoreText({ text: TEXT, models: ['knnlm'], retro: { retrieval: false, k: 2 }, ...SETTINGS }, context(), () => {}, signal)).rejects.toThrow(/not loaded/);
  });
});
