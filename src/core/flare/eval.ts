/**
 * FLARE perplexity over a token stream. Targets are cut into blocks of `lookahead`; before each block
 * the GPT looks ahead greedily from the text so far (its own tokens, never the reference's: the
 * reference's next tokens would leak into the query), and the decision of types.ts picks the
 * block's input: the text alone (confident) or [passage] + separator + text (triggered). Every target
 * is scored once, with teacher forcing inside its block, by one batched forward per block as In-Context
 * RALM's eval does; the look-ahead adds a prefill and `lookahead − 1` steps per block.
 */
import type { LanguageModel } from '../models/types';
import { blockInput } from '../icralm/plan';
import { scoreBlocks, type BatchForwardModel } from '../icralm/eval';
import type { PassageRetriever } from '../icralm/types';
import { greedyChoice, maskedQuery, triggerTokens } from './plan';
import { DEFAULT_FLARE_SETTINGS, validateFlareSettings, type FlareLookaheadToken, type FlareSettings } from './types';

export interface FlareEvalOptions {
  settings?: Partial<FlareSettings>;
  separator?: readonly number[];
  retrieve: PassageRetriever;
  /** Blocks per scoring forward (default 4). */
  batch?: number;
  /** Score only the first `maxTokens` targets (ids[1..maxTokens]). */
  maxTokens?: number;
  /**
   * One part of a run split over processes: only the blocks whose first target t (ids[t]) has
   * from <= t < to. The blocks keep the whole run's grid, so the parts' sums are the whole run's.
   */
  blocks?: { from: number; to: number };
  onProgress?: (scored: number, total: number) => void;
  signal?: AbortSignal;
}

export interface FlareEvalResult {
  scored_tokens: number;
  nll: number;
  token_ppl: number;
  /** logProbs[i] = log p(ids[i + 1] | its block's input), natural log; NaN for a target another part scores. */
  logProbs: Float64Array;
  blocks: number;
  /** Blocks whose look-ahead had a token below θ, so a passage was retrieved. */
  retrieved: number;
  retrievals_per_100_tokens: number;
  /** GPT forwards per scored token: look-ahead prefills and steps, and the scoring forwards (one per block). */
  forwards_per_token: number;
  /** Look-ahead tokens that equal the reference's token at the same place (how often the GPT "wrote" the text). */
  lookahead_accuracy: number;
  lookahead_seconds: number;
  forward_seconds: number;
  retrieval_seconds: number;
}

/** The GPT for the look-aheads (start/next with a KV cache) and the batched forward for scoring. */
export type FlareEvalModel = LanguageModel & BatchForwardModel;

export async function evaluateFlare(model: FlareEvalModel, ids: ArrayLike<number>, options: FlareEvalOptions): Promise<FlareEvalResult> {
  const context = model.info.context;
  const V = model.info.vocabSize;
  const settings = { ...DEFAULT_FLARE_SETTINGS, ...options.settings };
  validateFlareSettings(settings, context);
  const L = settings.lookahead;
  const separator = options.separator ?? [];
  const batch = Math.max(1, options.batch ?? 4);
  const total = Math.max(0, Math.min(ids.length - 1, options.maxTokens ?? Infinity));
  const logProbs = new Float64Array(total).fill(Number.NaN);
  const from = options.blocks?.from ?? 1;
  const to = options.blocks?.to ?? Infinity;
  const starts: number[] = [];
  for (let b = 1; b <= total; b += L) if (b >= from && b < to) starts.push(b);
  const partTargets = starts.reduce((n, b) => n + Math.min(L, total + 1 - b), 0);

  let nll = 0;
  let scored = 0;
  let retrieved = 0;
  let calls = 0;
  let lookaheadHits = 0;
  let lookaheadTokens = 0;
  let lookMs = 0;
  let forwardMs = 0;
  let retrievalMs = 0;
  for (let g = 0; g < starts.length; g += batch) {
    options.signal?.throwIfAborted();
    const group = starts.slice(g, g + batch);
    // 1. Look ahead from each block's start (no passage) and decide.
    let t = performance.now();
    const decisions: { triggered: boolean; query: number[] }[] = [];
    for (const b of group) {
      const { input } = blockInput(ids, b, null, [], L, context);
      const ahead: FlareLookaheadToken[] = [];
      let out = await model.start(input);
      calls++;
      for (let i = 0; i < L; i++) {
        const choice = greedyChoice(out.logits, (out.rows - 1) * V, V);
        ahead.push(choice);
        if (b + i <= total) {
          lookaheadTokens++;
          if (choice.id === ids[b + i]) lookaheadHits++;
        }
        if (i < L - 1) {
          out = await model.next(choice.id);
          calls++;
        }
      }
      const triggered = triggerTokens(ahead, settings.threshold).length > 0;
      decisions.push({ triggered, query: triggered ? maskedQuery(ids, b, ahead, settings) : [] });
    }
    lookMs += performance.now() - t;
    // 2. Retrieve for the triggered blocks only.
    t = performance.now();
    const asked = decisions.filter((d) => d.triggered);
    const found = asked.length ? await options.retrieve(asked.map((d) => d.query)) : [];
    retrievalMs += performance.now() - t;
    let next = 0;
    const passages = decisions.map((d) => (d.triggered ? (found[next++] ?? null) : null));
    // 3. Score each block's reference tokens with its input (In-Context RALM's block forward).
    t = performance.now();
    const sequences = group.map((b, i) => {
      if (decisions[i]!.triggered) retrieved++;
      return { start: b, end: Math.min(b + L, total + 1), input: blockInput(ids, b, passages[i] ?? null, separator, L, context).input };
    });
    const done = await scoreBlocks(model, ids, sequences, logProbs);
    nll += done.nll;
    scored += done.scored;
    calls += sequences.length;
    forwardMs += performance.now() - t;
    options.onProgress?.(scored, partTargets);
  }
  return {
    scored_tokens: scored,
    nll,
    token_ppl: Math.exp(nll / Math.max(1, scored)),
    logProbs,
    blocks: starts.length,
    retrieved,
    retrievals_per_100_tokens: (100 * retrieved) / Math.max(1, scored),
    forwards_per_token: calls / Math.max(1, scored),
    lookahead_accuracy: lookaheadHits / Math.max(1, lookaheadTokens),
    lookahead_seconds: lookMs / 1000,
    forward_seconds: forwardMs / 1000,
    retrieval_seconds: retrievalMs / 1000,
  };
}
