/**
 * FLARE, "Forward-Looking Active REtrieval augmented generation" (Jiang et al. 2023, "Active
 * Retrieval Augmented Generation"): retrieve only when the model is about to be unsure. Plain data
 * only: these types cross the inference worker's boundary.
 *
 * As RetroLab runs it on the frozen GPT (FLARE-direct, the paper's training-free variant):
 *
 * - **Look ahead.** Before each block, the GPT writes the next `lookahead` tokens greedily from the
 *   recent text, with no passage (the paper writes one sentence; a fixed span keeps the eval and the
 *   app on the same blocks, as In-Context RALM's stride does).
 * - **Decide.** If every look-ahead token has probability ≥ θ, the GPT was confident: the block is
 *   written without retrieval (with greedy decoding it is exactly the look-ahead, which is reused, so
 *   a confident block costs nothing extra). If any token is below θ, FLARE retrieves.
 * - **Masked query.** The query is the recent text followed by the look-ahead with its tokens below
 *   β removed (the paper's implicit query: the low-confidence tokens are likely wrong, so they would
 *   mislead the retriever), cut to its last `queryLength` tokens. The paper queries with the
 *   look-ahead sentence alone; RetroLab's retriever is a mean of token embeddings over 64-token rows,
 *   so a query of a few tokens needs the text before it (measured in docs/flare.md).
 * - **Regenerate.** The block is written again with the top passage before the context, exactly as
 *   In-Context RALM reads it ([passage] + separator + recent text, src/core/icralm/plan.ts).
 *
 * So "when to retrieve" is the method: retrievals per 100 tokens is its cost, and each retrieval is
 * traceable to the token whose low probability triggered it.
 */
import type { FlareLookaheadToken, FlareSettings } from '../../protocol/flare';
import type { RetrievedPassage } from '../icralm/types';

export type { FlareLookaheadToken, FlareSettings } from '../../protocol/flare';

export const DEFAULT_FLARE_SETTINGS: Readonly<FlareSettings> = { lookahead: 8, threshold: 0.05, maskBelow: 0.1, queryLength: 32 };

/** The longest look-ahead the app offers (each look-ahead token is a GPT step). */
export const MAX_FLARE_LOOKAHEAD = 32;

/** One decision: the look-ahead the GPT wrote at `position`, and the passage when it triggered a retrieval. */
export interface FlareDecision {
  /** First position (in the model's `sequence`) of the block this decision serves. */
  position: number;
  lookahead: FlareLookaheadToken[];
  /** Indices (into `lookahead`) of the tokens below θ; empty when the GPT was confident. */
  triggers: number[];
  /** The query the retriever got (empty when nothing was retrieved). */
  query: number[];
  /** The top passage; null when the block was written without retrieval (or the datastore had nothing). */
  passage: RetrievedPassage | null;
  retrieved: boolean;
  latencyMs: number;
}

export function validateFlareSettings(settings: FlareSettings, context: number): void {
  const { lookahead, threshold, maskBelow, queryLength } = settings;
  if (!Number.isInteger(lookahead) || lookahead < 1 || lookahead > Math.min(MAX_FLARE_LOOKAHEAD, context - 1)) {
    throw new RangeError(`FLARE look-ahead must be an integer in 1..${Math.min(MAX_FLARE_LOOKAHEAD, context - 1)}, got ${lookahead}`);
  }
  if (!(threshold >= 0 && threshold <= 1)) throw new RangeError(`FLARE θ must be in [0, 1], got ${threshold}`);
  if (!(maskBelow >= 0 && maskBelow <= 1)) throw new RangeError(`FLARE β must be in [0, 1], got ${maskBelow}`);
  if (!Number.isInteger(queryLength) || queryLength < 1) throw new RangeError(`FLARE query length must be a positive integer, got ${queryLength}`);
}
