/**
 * The leakage control's search (docs/controls.md): which documents of a datastore a prompt comes
 * from. The prompt's tokens after its first (whose BPE tokens depend on the text before it: " The"
 * inside a document, "The" at a prompt's start) are cut into 8-token pieces, each searched for
 * exactly in the datastore's token stream; a document holding at least half of the pieces is a
 * source. One linear scan of the stream (about 2.4 million tokens for WikiText-2 train), a few tens
 * of milliseconds, so it runs per request and needs no index.
 */
import type { PromptSource, PromptSources } from '../../protocol/api';

/** Tokens per piece: long enough that a shared phrase ("the United States of") rarely makes a false source. */
export const PROMPT_PIECE = 8;
/** At most this many pieces are searched (spread over a long prompt). */
const MAX_PIECES = 16;

/** The prompt's pieces: non-overlapping PROMPT_PIECE-token runs after its first token, at most MAX_PIECES, evenly spread. */
export function promptPieces(promptIds: ArrayLike<number>): number[][] {
  const starts: number[] = [];
  for (let s = 1; s + PROMPT_PIECE <= promptIds.length; s += PROMPT_PIECE) starts.push(s);
  const step = Math.max(1, starts.length / MAX_PIECES);
  const picked: number[] = [];
  for (let i = 0; i < starts.length && picked.length < MAX_PIECES; i += step) picked.push(starts[Math.floor(i)]!);
  return picked.map((s) => Array.from({ length: PROMPT_PIECE }, (_, j) => promptIds[s + j]!));
}

/**
 * Documents of `stream` holding at least half of the prompt's pieces (at least one), most pieces
 * first. `docAt(position)` names the document of a stream position, `title(docId)` its title.
 */
export function findPromptSources(promptIds: ArrayLike<number>, stream: ArrayLike<number>, docAt: (position: number) => number, title: (docId: number) => string): PromptSources {
  const pieces = promptPieces(promptIds);
  if (pieces.length === 0) return { known: true, documents: [], pieces: 0 };
  const byFirst = new Map<number, number[]>();
  pieces.forEach((p, i) => byFirst.set(p[0]!, [...(byFirst.get(p[0]!) ?? []), i]));
  const found = new Map<number, Set<number>>();
  const end = stream.length - PROMPT_PIECE;
  for (let at = 0; at <= end; at++) {
    const candidates = byFirst.get(stream[at]!);
    if (!candidates) continue;
    for (const i of candidates) {
      const piece = pieces[i]!;
      let j = 1;
      while (j < PROMPT_PIECE && stream[at + j] === piece[j]) j++;
      if (j < PROMPT_PIECE) continue;
      const doc = docAt(at);
      if (doc < 0) continue;
      let set = found.get(doc);
      if (!set) found.set(doc, (set = new Set()));
      set.add(i);
    }
  }
  const need = Math.max(1, Math.ceil(pieces.length / 2));
  const documents: (PromptSource & { count: number })[] = [];
  for (const [docId, set] of found) if (set.size >= need) documents.push({ docId, title: title(docId), count: set.size });
  documents.sort((a, b) => b.count - a.count || a.docId - b.docId);
  return { known: true, documents: documents.map(({ docId, title }) => ({ docId, title })), pieces: pieces.length };
}

/** Index of the last of `starts` (non-decreasing) that is <= `value`; -1 when none. */
export function lastAtOrBefore(starts: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  if (hi < 0 || starts[0]! > value) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
