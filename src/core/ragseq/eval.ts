/**
 * RAG-Sequence perplexity over a token stream: every target after the first scored once, in
 * sequences of `span` targets (In-Context RALM's blocks with stride = span). Per sequence one
 * retrieval of k passages from the `queryLength` tokens before it, and one forward per passage of
 * [passage] + [separator] + history + the sequence's tokens; the targets' probabilities are the
 * per-token decomposition of the sequence marginal (types.ts). Cost: k forwards per `span` tokens.
 */
import { blockQuery } from '../icralm/plan';
import { passageBlockLogProbs } from '../replug/eval';
import type { BatchForwardModel } from '../icralm/eval';
import type { RetrievedPassage } from '../icralm/types';
import { passageWeights, type PassagesRetriever } from '../replug/types';
import { decomposeSequence, DEFAULT_RAG_SEQUENCE_SETTINGS, validateRagSequenceSettings, type RagSequenceSettings } from './types';

export interface RagSequenceBlockScore {
  /** targets ids[start .. end) (positions in `ids`) */
  start: number;
  end: number;
  passages: RetrievedPassage[];
  prior: number[];
  /** p(z | x, y_<i) before each target, then after the last */
  posterior: number[][];
}

export interface RagSequenceEvalOptions {
  settings?: Partial<RagSequenceSettings>;
  separator?: readonly number[];
  retrieve: PassagesRetriever;
  /** Score only the first `maxTokens` targets (ids[1..maxTokens]). */
  maxTokens?: number;
  onProgress?: (scored: number, total: number) => void;
  /** Each sequence's passages and posterior (the lens shows them). */
  onBlock?: (block: RagSequenceBlockScore) => void;
  signal?: AbortSignal;
}

export interface RagSequenceEvalResult {
  scored_tokens: number;
  nll: number;
  token_ppl: number;
  /** logProbs[i] = log p(ids[i + 1] | x, the sequence's tokens before it), natural log */
  logProbs: Float64Array;
  blocks: number;
  forwards: number;
  /** Mean largest prior p(z | x) per sequence, and mean largest posterior after the sequence: how far the text sharpens it. */
  mean_top_prior: number;
  mean_top_posterior: number;
  forward_seconds: number;
  retrieval_seconds: number;
}

export async function evaluateRagSequence(model: BatchForwardModel, ids: ArrayLike<number>, options: RagSequenceEvalOptions): Promise<RagSequenceEvalResult> {
  const context = model.info.context;
  const settings = { ...DEFAULT_RAG_SEQUENCE_SETTINGS, ...options.settings };
  validateRagSequenceSettings(settings);
  const { span, queryLength, k, temperature } = settings;
  const separator = options.separator ?? [];
  const total = Math.max(0, Math.min(ids.length - 1, options.maxTokens ?? Infinity));
  const logProbs = new Float64Array(total);
  let nll = 0;
  let scored = 0;
  let blocks = 0;
  let forwards = 0;
  let topPrior = 0;
  let topPosterior = 0;
  let forwardMs = 0;
  let retrievalMs = 0;
  for (let b = 1; b <= total; b += span) {
    options.signal?.throwIfAborted();
    const end = Math.min(b + span, total + 1);
    let t = performance.now();
    const found = (await options.retrieve(blockQuery(ids, b, queryLength).query, k)).slice(0, k);
    retrievalMs += performance.now() - t;
    const passages: (RetrievedPassage | null)[] = found.length > 0 ? found : [null];
    const prior = found.length > 0 ? passageWeights(found, temperature) : [1];
    t = performance.now();
    // perPassage[z][i] = log p(ids[b + i] | x, z, y_<i)
    const { perPassage, forwards: run } = await passageBlockLogProbs(model, ids, b, end, passages, { separator, stride: span, context });
    forwards += run;
    forwardMs += performance.now() - t;
    const { tokenLogProbs, posterior } = decomposeSequence(prior, perPassage);
    tokenLogProbs.forEach((lp, i) => {
      logProbs[b - 1 + i] = lp;
      nll -= lp;
      scored++;
    });
    topPrior += Math.max(...prior);
    topPosterior += Math.max(...posterior.at(-1)!);
    blocks++;
    options.onBlock?.({ start: b, end, passages: found, prior, posterior });
    options.onProgress?.(scored, total);
  }
  return {
    scored_tokens: scored,
    nll,
    token_ppl: Math.exp(nll / Math.max(1, scored)),
    logProbs,
    blocks,
    forwards,
    mean_top_prior: blocks ? topPrior / blocks : 0,
    mean_top_posterior: blocks ? topPosterior / blocks : 0,
    forward_seconds: forwardMs / 1000,
    retrieval_seconds: retrievalMs / 1000,
  };
}
