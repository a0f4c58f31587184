/**
 * Where each In-Context RALM block retrieves and what the GPT reads for it (the protocol in
 * types.ts). The generation wrapper and the eval both build their inputs here, so they agree
 * token for token.
 */
import type { RetrievedPassage } from './types';

/** The query for the block whose first prediction is position `position`: ids[start, position). */
export function blockQuery(ids: ArrayLike<number>, position: number, queryLength: number): { start: number; query: number[] } {
  const start = Math.max(0, position - queryLength);
  return { start, query: Array.from({ length: position - start }, (_, i) => ids[start + i]!) };
}

export interface BlockInput {
  /** passage + separator + ids[position − history, position) */
  input: number[];
  /** Tokens of the text in `input`. */
  history: number;
  /** Tokens before the text: passage + separator. */
  prefix: number;
}

/**
 * The prefill for a block of `stride` predictions starting at `position` (≥ 1): it ends with
 * ids[position − 1] and leaves room for the block's other stride − 1 tokens. A passage so long
 * that no history would fit (strides near the context) keeps its last tokens, next to the text.
 */
export function blockInput(
  ids: ArrayLike<number>,
  position: number,
  passage: RetrievedPassage | null,
  separator: readonly number[],
  stride: number,
  context: number,
): BlockInput {
  if (position < 1 || position > ids.length) throw new RangeError(`block position ${position} outside 1..${ids.length}`);
  const room = context - (stride - 1);
  if (room < 1) throw new RangeError(`stride ${stride} leaves no room in a context of ${context}`);
  let before: number[] = [];
  if (passage && passage.tokenIds.length > 0) {
    before = [...passage.tokenIds, ...separator];
    if (before.length > room - 1) before = before.slice(before.length - (room - 1));
  }
  const history = Math.min(position, room - before.length);
  const input = before;
  for (let i = position - history; i < position; i++) input.push(ids[i]!);
  return { input, history, prefix: input.length - history };
}

/** Passage tokens as the model reads them: the trailing end-of-text padding of a short row removed. */
export function trimPadding(tokenIds: ArrayLike<number>, eotId: number): number[] {
  let end = tokenIds.length;
  while (end > 0 && tokenIds[end - 1] === eotId) end--;
  return Array.from({ length: end }, (_, i) => tokenIds[i]!);
}

export type SeparatorKind = 'newline' | 'eot' | 'none';

export const SEPARATOR_KINDS: readonly SeparatorKind[] = ['newline', 'eot', 'none'];

/** The separator's token ids (types.ts explains the default, 'newline': WikiText's line break " \n"). */
export function separatorTokens(kind: SeparatorKind, encode: (text: string) => number[], eotId: number): number[] {
  if (kind === 'eot') return [eotId];
  if (kind === 'none') return [];
  return encode(' \n');
}
