/**
 * The perplexity lens's scoring, run by the inference engine: the text becomes the eval's token
 * stream and every model goes through `evaluatePerplexity` (src/core/eval), so the lens's numbers
 * are `npm run eval`'s numbers for the same text; the eval only hands back each token's
 * log-probability as well. RETRO's neighbours come from the retrieval engine's active datastore,
 * per chunk of each window, exactly as `windowNeighbours` feeds them from a datastore in Node.
 */
import { evaluatePerplexity, streamWindows, type BatchScorer, type Window, type WindowNeighbours } from '../eval/perplexity';
import { alignedWindowNeighbours, windowNeighbours, type EvalStore, type ScoredRow } from '../eval/neighbours';
import type { KeyModel } from '../knnlm/build';
import type { KnnDatastore } from '../knnlm/datastore';
import { tokenizeWikiTextStream } from '../eval/stream';
import type { RetroModel } from '../models/retro';
import { evaluateIcRalm, trimPadding, type BatchForwardModel, type PassageRetriever } from '../icralm';
import { evaluateRagSequence } from '../ragseq/eval';
import type { RagSequenceBlock, RagSequenceSettings } from '../../protocol/ragseq';
import type { PassagesRetriever } from '../replug/types';
import { countWikiTextWords, type RetroTokenizer } from '../tokenizer';
import {
  type IcRalmSettings,
  LENS_MAX_CHARS,
  LENS_MAX_TOKENS,
  type ModelKey,
  type ModelScore,
  type NeighbourServer,
  type ScoreCallback,
  type ScoreRequest,
  type ScoreResult,
  type TokenView,
} from '../../protocol/api';

/** Same as `npm run eval`'s default stride. */
export const LENS_STRIDE = 128;
/** One window per forward: Stop is seen between forwards, so it answers within one window's time. */
const LENS_BATCH = 1;
const PROGRESS_EVERY_MS = 150;

/**
 * A model scored by its own protocol instead of the eval's windows (In-Context RALM's blocks):
 * log p of ids[j + 1] at logProbs[j], every target once.
 */
export type OwnScorer = (
  ids: ArrayLike<number>,
  options: { signal: AbortSignal; onProgress: (scoredTokens: number) => void },
) => Promise<{ nll: number; scoredTokens: number; logProbs: ArrayLike<number>; ragSequence?: ModelScore['ragSequence'] }>;

export interface LensModel {
  key: ModelKey;
  name: string;
  model: BatchScorer | RetroModel;
  context: number;
  retro?: {
    chunk: number;
    K: number;
    neighbourLen: number;
    eotId: number;
    /**
     * Token-aligned RETRO: the query GPT and the loaded kNN-LM datastore it searches, or why there is
     * none. Absent for chunk retrieval (the retrieval engine's active datastore).
     */
    aligned?: { queryModel: KeyModel; store: KnnDatastore; datastoreId: string } | { missing: string };
  };
  ownScorer?: OwnScorer;
}

export interface ScoreContext {
  tokenizer: RetroTokenizer;
  tokenViews: (ids: readonly number[]) => TokenView[];
  /** The models the request names, or a reason one is not available. */
  model: (key: ModelKey) => LensModel | string;
  /** The retrieval engine's active datastore; null when none is active or the engine is not connected. */
  neighbours: { store: EvalStore; datastoreId: () => string | null } | null;
}

export class LensInputError extends Error {
  override name = 'LensInputError';
}

/** The text check the UI also shows before sending: empty and over-long texts are refused. */
export function checkLensText(text: string): void {
  if (text.trim() === '') throw new LensInputError('There is no text to score: paste some text, pick a file or choose WikiText-2 test.');
  if (text.length > LENS_MAX_CHARS) {
    throw new LensInputError(
      `The text has ${text.length.toLocaleString('en')} characters; the lens scores at most ${LENS_MAX_CHARS.toLocaleString('en')} (about the WikiText-2 test set).`,
    );
  }
}

/** An EvalStore over the retrieval engine's NeighbourServer (no document excluded, as in the eval). */
export function serverEvalStore(server: Pick<NeighbourServer, 'retrieve'>): { store: EvalStore; datastoreId: () => string | null } {
  let datastoreId: string | null = null;
  const store: EvalStore = {
    async nearest(query, k) {
      const result = await server.retrieve(Array.from(query), k, []);
      datastoreId = result.datastoreId;
      return result.tokenIds.map((tokenIds, i): ScoredRow => ({ tokenIds, distance: result.views[i]?.distance ?? 0 }));
    },
    random() {
      throw new Error('The lens retrieves real neighbours only.');
    },
  };
  return { store, datastoreId: () => datastoreId };
}

/**
 * In-Context RALM scored by its own eval (src/core/icralm/eval.ts: a passage before every block of
 * `stride` tokens), with the request's s and l and passages from the active datastore.
 */
export function icRalmScorer(gpt: BatchForwardModel, server: Pick<NeighbourServer, 'retrieve'>, eotId: number, separator: readonly number[], settings: IcRalmSettings): OwnScorer {
  const retrieve: PassageRetriever = async (queries) => {
    const passages = [];
    for (const query of queries) {
      const ids = (await server.retrieve([...query], 1, [], { random: settings.randomNeighbours === true, retriever: settings.retriever ?? 'dense' })).tokenIds[0];
      passages.push(ids ? { tokenIds: trimPadding(ids, eotId) } : null);
    }
    return passages;
  };
  return async (ids, { signal, onProgress }) => {
    const result = await evaluateIcRalm(gpt, ids, { settings, separator, retrieve, signal, onProgress: (scored) => onProgress(scored) });
    return { nll: result.nll, scoredTokens: result.scored_tokens, logProbs: result.logProbs };
  };
}

/**
 * RAG-Sequence scored by its own eval (src/core/ragseq/eval.ts: sequences of `span` tokens, k
 * passages each), keeping every sequence's passages, prior and posterior for the lens to show.
 */
export function ragSequenceScorer(gpt: BatchForwardModel, server: Pick<NeighbourServer, 'retrieve'>, eotId: number, separator: readonly number[], settings?: RagSequenceSettings): OwnScorer {
  return async (ids, { signal, onProgress }) => {
    let views: { title: string; text: string; distance: number }[] = [];
    const retrieve: PassagesRetriever = async (query, k) => {
      const result = await server.retrieve([...query], k, []);
      views = result.views.slice(0, k).map((v) => ({ title: v.title, text: `${v.text} ${v.continuationText}`.trim(), distance: v.distance }));
      return result.tokenIds.slice(0, k).map((tokenIds, i) => ({ tokenIds: trimPadding(tokenIds, eotId), distance: result.views[i]?.distance ?? 1 }));
    };
    const blocks: RagSequenceBlock[] = [];
    const result = await evaluateRagSequence(gpt, ids, {
      ...(settings ? { settings } : {}),
      separator,
      retrieve,
      signal,
      onProgress: (scored) => onProgress(scored),
      // Target ids[j] is the lens's token j, so a sequence's positions are the lens's.
      onBlock: (b) => blocks.push({ start: b.start, end: b.end, passages: views, prior: b.prior, posterior: b.posterior }),
    });
    return { nll: result.nll, scoredTokens: result.scored_tokens, logProbs: result.logProbs, ragSequence: { blocks } };
  };
}

/** Tokens the eval scores up to and including each window: progress in tokens, not windows. */
export function scoredTokensByWindow(windows: readonly Window[]): number[] {
  let total = 0;
  return windows.map((w) => (total += w.length - 1 - w.firstScored));
}

export async function scoreText(request: ScoreRequest, context: ScoreContext, onEvent: ScoreCallback, signal: AbortSignal): Promise<ScoreResult> {
  checkLensText(request.text);
  if (request.models.length === 0) throw new LensInputError('Choose at least one model to score.');
  const lensModels = request.models.map((key) => {
    const m = context.model(key);
    if (typeof m === 'string') throw new LensInputError(m);
    return m;
  });
  const ids = tokenizeWikiTextStream(context.tokenizer, request.text);
  if (ids.length < 2) throw new LensInputError('The text is a single token: the lens needs at least two tokens (each token is scored given the ones before it).');
  if (ids.length > LENS_MAX_TOKENS) {
    throw new LensInputError(`The text has ${ids.length.toLocaleString('en')} tokens; the lens scores at most ${LENS_MAX_TOKENS.toLocaleString('en')}.`);
  }
  const words = countWikiTextWords(request.text);
  const tokens = context.tokenViews(Array.from(ids));
  // Window plans per model (the contexts could differ); progress counts scored tokens over all models.
  const plans = lensModels.map((m) => scoredTokensByWindow(streamWindows(ids.length, m.context, LENS_STRIDE)));
  const windows = plans.find((_, i) => !lensModels[i]!.ownScorer)?.length ?? 0;
  const total = plans.reduce((n, p) => n + (p.at(-1) ?? 0), 0);
  void onEvent({ type: 'tokenized', tokens: ids.length, words, windows });

  const started = performance.now();
  let before = 0;
  const scores: ModelScore[] = [];
  for (const [index, lens] of lensModels.entries()) {
    if (signal.aborted) throw Object.assign(new Error('The perplexity run was stopped.'), { name: 'AbortError' });
    const plan = plans[index]!;
    const logProbs = new Float32Array(ids.length).fill(Number.NaN);
    const modelStarted = performance.now();
    let lastEvent = 0;
    const aligned = lens.retro?.aligned;
    if (aligned && 'missing' in aligned && request.retro.retrieval && lens.retro) throw new Error(aligned.missing);
    const alignedSource = aligned && 'store' in aligned ? aligned : null;
    const useNeighbours = lens.retro && request.retro.retrieval && (alignedSource ?? context.neighbours);
    const report = (done: number, final: boolean) => {
      const now = performance.now();
      if (now - lastEvent < PROGRESS_EVERY_MS && !final) return;
      lastEvent = now;
      const rate = done / Math.max(1e-3, (now - started) / 1000);
      void onEvent({ type: 'progress', model: lens.key, done, total, etaSeconds: done > 0 ? (total - done) / rate : null });
    };
    if (lens.ownScorer) {
      const own = await lens.ownScorer(ids, { signal, onProgress: (scored) => report(before + scored, scored === ids.length - 1) });
      for (let j = 0; j < ids.length - 1; j++) logProbs[j + 1] = own.logProbs[j]!;
      before += ids.length - 1;
      scores.push({
        model: lens.key,
        name: lens.name,
        logProbs,
        nll: own.nll,
        scoredTokens: own.scoredTokens,
        tokenPpl: Math.exp(own.nll / Math.max(1, own.scoredTokens)),
        wordPpl: Math.exp(own.nll / Math.max(1, words)),
        ...(own.ragSequence ? { ragSequence: own.ragSequence } : {}),
        seconds: (performance.now() - modelStarted) / 1000,
      });
      continue;
    }
    const totals = await evaluatePerplexity(lens.model, ids, {
      context: lens.context,
      stride: LENS_STRIDE,
      batch: LENS_BATCH,
      words,
      signal,
      // Index j holds the score of token j + 1 in the eval's layout; the lens shows it on token j + 1.
      tokenLogProbs: logProbs.subarray(1),
      ...(useNeighbours ? { neighbours: lensNeighbours(lens.retro!, request.retro.k, alignedSource, context) } : {}),
      onProgress: (doneWindows, totalWindows) => report(before + plan[doneWindows - 1]!, doneWindows === totalWindows),
    });
    before += plan.at(-1) ?? 0;
    scores.push({
      model: lens.key,
      name: lens.name,
      logProbs,
      nll: totals.nll,
      scoredTokens: totals.scored_tokens,
      tokenPpl: totals.token_ppl,
      wordPpl: totals.word_ppl ?? Math.exp(totals.nll / Math.max(1, words)),
      ...(lens.retro ? { retrieval: { datastoreId: useNeighbours ? (alignedSource ? alignedSource.datastoreId : context.neighbours!.datastoreId()) : null } } : {}),
      seconds: (performance.now() - modelStarted) / 1000,
    });
  }
  return { tokens, words, windows, scores };
}

/** RETRO's neighbours for the lens windows: token-aligned from the loaded kNN-LM keys, else chunks from the retrieval engine. */
function lensNeighbours(
  retro: NonNullable<LensModel['retro']>,
  k: number,
  aligned: { queryModel: KeyModel; store: KnnDatastore } | null,
  context: ScoreContext,
): WindowNeighbours {
  const options = { mode: 'real' as const, chunk: retro.chunk, k: Math.max(1, Math.min(k, retro.K)), K: retro.K, neighbourLen: retro.neighbourLen, eotId: retro.eotId };
  return aligned
    ? alignedWindowNeighbours({ ...options, queryModel: aligned.queryModel, stores: [aligned.store] })
    : windowNeighbours(context.neighbours!.store, options);
}
