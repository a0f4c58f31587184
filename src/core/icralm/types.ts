/**
 * In-Context RALM (Ram et al. 2023, "In-Context Retrieval-Augmented Language Models"): the GPT
 * unchanged, with a retrieved passage placed before its context. Plain data only: these types
 * cross the inference worker's boundary.
 *
 * The protocol, as RetroLab implements it (src/core/icralm/plan.ts computes it, the generation
 * wrapper and the eval both call that one function):
 *
 * - **Blocks.** Predictions are grouped in blocks of `stride` (s) consecutive positions. Before
 *   the first prediction of a block, the last `queryLength` (l) tokens of the text so far are the
 *   query; with fewer than l tokens (the start of a stream, a short prompt), the query is what there
 *   is. So the passage used for a token depends only on tokens before its block: no leak.
 * - **Input.** [passage] + [separator] + the most recent tokens, as many as fit so that the whole
 *   block (s − 1 more tokens fed with the KV cache of one prefill) stays within the GPT's context:
 *   |passage| + |separator| + history + s − 1 ≤ context. With the app's 64-token passages
 *   (chunk + continuation, trailing end-of-text padding removed, the same rows RETRO reads) and
 *   s = 4, every prediction sees at least 188 tokens of its own text.
 * - **Separator.** The GPT was trained on WikiText articles concatenated with no end-of-text
 *   token between them, so an end-of-text token is a symbol it never read. The default is the
 *   WikiText line break (" \n"), which is what sits between paragraphs in the training text: the
 *   passage reads as the previous paragraph. `separator` is the token ids, so 'eot' and nothing
 *   at all can be measured too (cli/eval.ts --icralm-separator).
 * - **Top-1.** One passage per retrieval, the nearest chunk by the retrieval embedder (cosine),
 *   from the same datastore and index RETRO uses, or with `retriever: 'bm25'` the chunk with the
 *   best BM25 score for the query's words (the paper's own retriever; docs/bm25.md). The paper also studies reranking and several
 *   passages; RetroLab keeps the basic method.
 * - **No self-retrieval.** The default datastore is WikiText-2 train and the evaluated text is
 *   valid or test, which share no article; `excludeDocIds` removes documents otherwise.
 */

import type { IcRalmSettings } from '../../protocol/icralm';

export type { IcRalmSettings } from '../../protocol/icralm';

export const DEFAULT_ICRALM_SETTINGS: Readonly<IcRalmSettings> = { stride: 4, queryLength: 32, retriever: 'dense' };

/** A retrieved passage as the model reads it, with what the UI shows about it. */
export interface RetrievedPassage {
  /** Tokens placed before the context (chunk + continuation, without trailing padding). */
  tokenIds: readonly number[];
  chunkIndex?: number;
  docId?: number;
  title?: string;
  /** cosine distance to the query (dense retrieval) */
  distance?: number;
  /** BM25 score (BM25 retrieval; bigger is better); when present it, not `distance`, ranks and weighs the passage */
  score?: number;
  /** The chunk's and its continuation's text (raw WikiText). */
  text?: string;
  continuationText?: string;
}

/**
 * The top passage for each query, in order (null: nothing retrieved, the block runs without a
 * passage). Batched because the eval asks for many blocks at once.
 */
export type PassageRetriever = (queries: readonly (readonly number[])[]) => Promise<(RetrievedPassage | null)[]>;

/** One retrieval made while generating: which passage sat before the context for which positions. */
export interface IcRalmRetrieval {
  /** First position (in the model's `sequence`) predicted with this passage; the block is [position, position + stride). */
  position: number;
  /** Query = sequence[queryStart, position). */
  queryStart: number;
  passage: RetrievedPassage | null;
  /** Tokens of the text (not counting the passage and separator) in the prefill. */
  history: number;
  latencyMs: number;
}

export function validateIcRalmSettings(settings: IcRalmSettings, context: number): void {
  const { stride, queryLength } = settings;
  if (!Number.isInteger(stride) || stride < 1 || stride >= context) throw new RangeError(`In-Context RALM stride must be an integer in 1..${context - 1}, got ${stride}`);
  if (!Number.isInteger(queryLength) || queryLength < 1) throw new RangeError(`In-Context RALM query length must be a positive integer, got ${queryLength}`);
  if (settings.retriever !== undefined && settings.retriever !== 'dense' && settings.retriever !== 'bm25') throw new RangeError(`In-Context RALM retriever must be 'dense' or 'bm25', got ${String(settings.retriever)}`);
}
