/**
 * Corpus-scale perplexity on the inference engine's loaded models and the retrieval engine's active
 * datastore: what `npm run eval` runs in Node, by the protocol of docs/manifest.md. The GPT and RETRO
 * go through `evaluatePerplexity` with the lens's neighbour sources (score.ts), kNN-LM through
 * `evaluateKnnLm` (one forward and one search per target, every setting of a sweep mixed from them),
 * In-Context RALM, REPLUG, FLARE and RAG-Sequence through their block evals with passages from the NeighbourServer.
 */
import type { EvalRequest, EvalResult, NeighbourServer } from '../../protocol/api';
import { evaluatePerplexity, selectWindows, streamWindows, type WindowNeighbours } from '../eval/perplexity';
import { alignedWindowNeighbours, windowNeighbours } from '../eval/neighbours';
import { concatenateArticles, tokenizeWikiTextArticles } from '../eval/stream';
import { evaluateFlare } from '../flare';
import { evaluateIcRalm, trimPadding, type PassageRetriever } from '../icralm';
import type { KnnDatastore } from '../knnlm/datastore';
import { evaluateKnnLm } from '../knnlm/eval';
import type { GptModel } from '../models/gpt';
import { evaluateReplug } from '../replug/eval';
import type { PassagesRetriever } from '../replug/types';
import { evaluateRagSequence } from '../ragseq/eval';
import { countWikiTextWords, type RetroTokenizer } from '../tokenizer';
import { serverEvalStore, type LensModel } from './score';

/** The eval protocol's stride (docs/manifest.md): each window scores its last 128 targets. */
export const EVAL_STRIDE = 128;
const DEFAULT_BATCH = 4;

export interface EvalDeps {
  tokenizer: RetroTokenizer;
  gpt: GptModel;
  /** The lens's rows for the GPT and RETRO (RETRO's token-aligned keys included), or why there is none. */
  lensModel: (key: 'gpt' | 'retro') => LensModel | string;
  /** The loaded kNN-LM datastore and its id, or null. */
  knn: { store: KnnDatastore; datastoreId: string } | null;
  server: NeighbourServer | null;
  /** In-Context RALM's separator between passage and text (the app's: a newline) */
  separator: readonly number[];
  eotId: number;
}

export async function evaluateRequest(request: EvalRequest, deps: EvalDeps, onProgress: (done: number, total: number) => void, signal: AbortSignal): Promise<EvalResult> {
  const started = performance.now();
  const articles = tokenizeWikiTextArticles(deps.tokenizer, request.text);
  const ids = concatenateArticles(articles, deps.tokenizer.vocabSize);
  if (ids.length < 2) throw new RangeError('The text has fewer than two tokens: nothing to score.');
  const words = countWikiTextWords(request.text);
  const context = deps.gpt.manifest.hyperparameters.context;
  const allWindows = streamWindows(ids.length, context, EVAL_STRIDE, request.maxWindows);
  const range = request.windows;
  const logProbs = new Float32Array(ids.length - 1).fill(Number.NaN);
  const base = { tokens: ids.length, words, articleLengths: articles.map((a) => a.length), totalWindows: allWindows.length, logProbs };
  const finish = (name: string, windows: number, scoredTokens: number, nll: number, datastoreId: string | null): EvalResult => {
    const partial = scoredTokens < ids.length - 1;
    const scoredWords = partial ? (words * scoredTokens) / (ids.length - 1) : words;
    return {
      ...base,
      model: request.model,
      name,
      windows,
      scoredTokens,
      nll,
      tokenPpl: Math.exp(nll / Math.max(1, scoredTokens)),
      wordPpl: Math.exp(nll / Math.max(1e-9, scoredWords)),
      wordPplEstimated: partial,
      datastoreId,
      seconds: (performance.now() - started) / 1000,
    };
  };

  if (request.model === 'gpt' || request.model === 'retro') {
    const lens = deps.lensModel(request.model);
    if (typeof lens === 'string') throw new Error(lens);
    let neighbours: WindowNeighbours | undefined;
    let datastoreId: string | null = null;
    let served: ReturnType<typeof serverEvalStore> | null = null;
    if (lens.retro && request.retro.retrieval) {
      const { chunk, K, neighbourLen, eotId } = lens.retro;
      const options = { mode: request.retro.random ? ('random' as const) : ('real' as const), chunk, k: Math.max(1, Math.min(request.retro.k, K)), K, neighbourLen, eotId, seed: request.retro.seed ?? 0 };
      const aligned = lens.retro.aligned;
      if (aligned && 'missing' in aligned) throw new Error(aligned.missing);
      if (aligned) {
        neighbours = alignedWindowNeighbours({ ...options, queryModel: aligned.queryModel, stores: [aligned.store] });
        datastoreId = aligned.datastoreId;
      } else {
        if (!deps.server) throw new Error('RETRO needs the retrieval engine, which is not connected.');
        if (options.mode === 'random') throw new Error('Random neighbours are drawn from kNN-LM keys: this RETRO retrieves chunks.');
        served = serverEvalStore(deps.server);
        neighbours = windowNeighbours(served.store, options);
      }
    }
    const totals = await evaluatePerplexity(lens.model, ids, {
      context: lens.context,
      stride: EVAL_STRIDE,
      batch: request.batch ?? DEFAULT_BATCH,
      ...(request.maxWindows !== undefined ? { maxWindows: request.maxWindows } : {}),
      ...(range ? { windowRange: range } : {}),
      ...(neighbours ? { neighbours } : {}),
      tokenLogProbs: logProbs,
      signal,
      onProgress: (done, total) => onProgress(done, total),
    });
    return finish(lens.name, totals.windows, totals.scored_tokens, totals.nll, served ? served.datastoreId() : datastoreId);
  }

  if (request.model === 'knnlm') {
    if (!deps.knn) throw new Error('kNN-LM needs a kNN-LM datastore: load one first (loadKnnFor).');
    const { lambda, k, temperature, skipAbove, lambdaTable, search } = request.knn;
    // The headline with the adaptive kNN-LM's θ and λ table when the request has them (docs/adaptive-knnlm.md),
    // and its index choice, which the run's one search per target follows (exact: the reference).
    const settings = [{ lambda, k, temperature, ...(skipAbove ? { skipAbove } : {}), ...(lambdaTable ? { lambdaTable } : {}), ...(search ? { search } : {}) }, ...(request.knn.sweep ?? [])];
    const totals = await evaluateKnnLm(deps.gpt, deps.knn.store, ids, {
      context,
      stride: EVAL_STRIDE,
      settings,
      ...(request.maxWindows !== undefined ? { maxWindows: request.maxWindows } : {}),
      ...(range ? { windowRange: range } : {}),
      ...(request.knn.pointers !== undefined ? { pointers: request.knn.pointers } : {}),
      ...(request.knn.randomNeighbours ? { random: true } : {}),
      tokenLogProbs: logProbs,
      signal,
      onProgress,
    });
    const head = totals.knnlm[0]!;
    return {
      ...finish('kNN-LM', totals.windows, totals.scored_tokens, head.nll, deps.knn.datastoreId),
      knnlm: {
        gpt: { nll: totals.lm.nll, tokenPpl: totals.lm.token_ppl },
        sweep: totals.knnlm.map((s) => ({ settings: s.settings, nll: s.nll, tokenPpl: s.token_ppl })),
        targetInNeighbours: totals.target_in_neighbours,
        searchesSkipped: totals.searches_skipped,
        searchesSaved: head.skipped,
      },
    };
  }

  if (request.model === 'icralm' || request.model === 'replug' || request.model === 'flare' || request.model === 'ragseq') {
    if (range && request.model !== 'flare') throw new RangeError('In-Context RALM, REPLUG and RAG-Sequence score block by block: a window range applies to FLARE only so far.');
    const server = deps.server;
    if (!server) throw new Error('In-Context RALM, REPLUG, FLARE and RAG-Sequence need the retrieval engine, which is not connected.');
    // --max-windows N: exactly the targets the plain eval scores in its first N windows.
    const last = allWindows.at(-1)!;
    const maxTokens = request.maxWindows !== undefined ? last.start + last.length - 1 : undefined;
    let datastoreId: string | null = null;
    // The retriever and the random-passage control (docs/bm25.md, docs/controls.md): passages drawn at random are seeded by each query.
    const settings = request.model === 'icralm' ? request.icralm : request.model === 'replug' ? request.replug : request.flare;
    const random = settings?.randomNeighbours === true;
    const retriever = (request.model === 'icralm' ? request.icralm.retriever : request.model === 'replug' ? request.replug.retriever : undefined) ?? 'dense';
    const passages: PassagesRetriever = async (query, k) => {
      const result = await server.retrieve([...query], k, [], { random, retriever });
      datastoreId = result.datastoreId;
      return result.tokenIds.map((tokenIds, i) => {
        const view = result.views[i];
        return { tokenIds: trimPadding(tokenIds, deps.eotId), chunkIndex: view?.chunkIndex ?? -1, docId: view?.docId ?? -1, distance: view?.distance ?? 0, ...(view?.score !== undefined ? { score: view.score } : {}) };
      });
    };
    const limit = maxTokens !== undefined ? { maxTokens } : {};
    if (request.model === 'icralm') {
      const retrieve: PassageRetriever = async (queries) => Promise.all(queries.map(async (q) => (await passages(q, 1))[0] ?? null));
      const { strides: sweep, ...settings } = request.icralm;
      if (!sweep?.length) {
        const r = await evaluateIcRalm(deps.gpt, ids, { settings, separator: deps.separator, retrieve, batch: request.batch ?? DEFAULT_BATCH, ...limit, signal, onProgress });
        logProbs.set(Float32Array.from(r.logProbs));
        return { ...finish('In-Context RALM', request.maxWindows ?? allWindows.length, r.scored_tokens, r.nll, datastoreId), passages: { blocks: r.blocks, forwards: r.blocks, retrieved: r.retrieved } };
      }
      // The stride curve: one pass per stride (the headline's first), then the GPT alone on the same
      // targets (the plain eval of the same windows); progress counts targets over all the passes.
      const strides = [...new Set([settings.stride, ...sweep])];
      const targets = maxTokens ?? ids.length - 1;
      const total = targets * (strides.length + 1);
      const points: NonNullable<EvalResult['icralm']>['strides'] = [];
      let head: Awaited<ReturnType<typeof evaluateIcRalm>> | null = null;
      for (const [i, stride] of strides.entries()) {
        const r = await evaluateIcRalm(deps.gpt, ids, { settings: { ...settings, stride }, separator: deps.separator, retrieve, batch: request.batch ?? DEFAULT_BATCH, ...limit, signal, onProgress: (done) => onProgress(i * targets + done, total) });
        points.push({ stride, nll: r.nll, tokenPpl: r.token_ppl, blocks: r.blocks, retrieved: r.retrieved });
        head ??= r;
      }
      const lens = deps.lensModel('gpt');
      if (typeof lens === 'string') throw new Error(lens);
      const gpt = await evaluatePerplexity(lens.model, ids, {
        context: lens.context,
        stride: EVAL_STRIDE,
        batch: request.batch ?? DEFAULT_BATCH,
        ...(request.maxWindows !== undefined ? { maxWindows: request.maxWindows } : {}),
        signal,
        onProgress: (done, of) => onProgress(strides.length * targets + Math.round((targets * done) / Math.max(1, of)), total),
      });
      logProbs.set(Float32Array.from(head!.logProbs));
      return {
        ...finish('In-Context RALM', request.maxWindows ?? allWindows.length, head!.scored_tokens, head!.nll, datastoreId),
        passages: { blocks: head!.blocks, forwards: head!.blocks, retrieved: head!.retrieved },
        icralm: { gpt: { nll: gpt.nll, tokenPpl: gpt.token_ppl }, strides: points },
      };
    }
    if (request.model === 'ragseq') {
      const r = await evaluateRagSequence(deps.gpt, ids, { ...(request.ragSequence ? { settings: request.ragSequence } : {}), separator: deps.separator, retrieve: passages, ...limit, signal, onProgress });
      logProbs.set(Float32Array.from(r.logProbs));
      return {
        ...finish('RAG-Sequence', request.maxWindows ?? allWindows.length, r.scored_tokens, r.nll, datastoreId),
        passages: { blocks: r.blocks, forwards: r.forwards, meanTopWeight: r.mean_top_prior, meanTopPosterior: r.mean_top_posterior },
      };
    }
    if (request.model === 'flare') {
      // Its own GPT sequence for the look-aheads: the engine's GPT may hold a column's KV cache.
      const lm = deps.gpt.fork();
      try {
        const retrieve: PassageRetriever = async (queries) => Promise.all(queries.map(async (q) => (await passages(q, 1))[0] ?? null));
        // A part (--windows a:b): the blocks that start at the targets the plain eval scores in windows a..b-1.
        const firstTarget = (w: number) => (w < allWindows.length ? allWindows[w]!.start + allWindows[w]!.firstScored + 1 : Infinity);
        // selectWindows validates the range; its windows are the ones the part reports.
        const partWindows = range ? selectWindows(allWindows, range).length : (request.maxWindows ?? allWindows.length);
        const blocks = range ? { blocks: { from: firstTarget(range.start), to: firstTarget(range.end) } } : {};
        const r = await evaluateFlare(lm, ids, { ...(request.flare ? { settings: request.flare } : {}), separator: deps.separator, retrieve, batch: request.batch ?? DEFAULT_BATCH, ...limit, ...blocks, signal, onProgress });
        logProbs.set(Float32Array.from(r.logProbs));
        return {
          ...finish('FLARE', partWindows, r.scored_tokens, r.nll, datastoreId),
          passages: { blocks: r.blocks, forwards: Math.round(r.forwards_per_token * r.scored_tokens), retrieved: r.retrieved, lookaheadAccuracy: r.lookahead_accuracy },
        };
      } finally {
        await lm.dispose();
      }
    }
    const r = await evaluateReplug(deps.gpt, ids, { settings: request.replug, separator: deps.separator, retrieve: passages, ...limit, signal, onProgress });
    logProbs.set(Float32Array.from(r.logProbs));
    return { ...finish('REPLUG', request.maxWindows ?? allWindows.length, r.scored_tokens, r.nll, datastoreId), passages: { blocks: r.blocks, forwards: r.forwards, meanTopWeight: r.mean_top_weight } };
  }
  throw new RangeError(`npm run eval does not score ${request.model}.`);
}
