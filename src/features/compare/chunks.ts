/**
 * Pure helpers that turn a run's tokens into what the output columns draw: RETRO's sequence cut
 * into chunks from position 0 (padding and RETRO++ context included, as the model sees it), and
 * which neighbour tokens reappear in what the model wrote next.
 */
import { detokenizeWikiText, type ChunkReport, type TokenView } from '../../client';

export type SegmentKind = 'padding' | 'prefix' | 'prompt' | 'generated';

export interface Segment {
  kind: SegmentKind;
  /** for padding: how many padding tokens the segment stands for */
  text: string;
  count: number;
  /** generated segments: the index, among the generated tokens, of the segment's first token */
  from?: number;
}

export interface ChunkView {
  index: number;
  /** token positions [start, end) */
  start: number;
  end: number;
  complete: boolean;
  segments: Segment[];
}

interface Tagged {
  kind: SegmentKind;
  token: TokenView;
  /** generated tokens: index among the run's generated tokens */
  generatedIndex?: number;
}

function tag(prefix: TokenView[], prompt: TokenView[], generated: TokenView[], paddingId: number | null, generatedFrom = 0): Tagged[] {
  return [
    ...prefix.map((token) => ({ kind: token.id === paddingId ? ('padding' as const) : ('prefix' as const), token })),
    ...prompt.map((token) => ({ kind: 'prompt' as const, token })),
    ...generated.map((token, i) => ({ kind: 'generated' as const, token, generatedIndex: generatedFrom + i })),
  ];
}

/** Display form: WikiText escapes undone, and runs of blank lines (WikiText's " \n \n") kept to one. */
export function displayText(text: string): string {
  return detokenizeWikiText(text).replace(/(?:[ \t]*\n){3,}/g, '\n\n');
}

/**
 * Consecutive tokens of one kind become one segment, detokenized as a whole (WikiText's " @-@ "
 * spans tokens); a run of padding becomes one segment that only counts its tokens.
 */
function segmentsOf(tokens: Tagged[]): Segment[] {
  const segments: Segment[] = [];
  let kind: SegmentKind | null = null;
  let text = '';
  let count = 0;
  let from: number | undefined;
  const close = () => {
    if (kind !== null) segments.push({ kind, text: kind === 'padding' ? '' : displayText(text), count, ...(from !== undefined ? { from } : {}) });
  };
  for (const t of tokens) {
    if (t.kind !== kind) {
      close();
      kind = t.kind;
      text = '';
      count = 0;
      from = t.generatedIndex;
    }
    text += t.token.text;
    count += 1;
  }
  close();
  return segments;
}

export interface Sequence {
  prefix: TokenView[];
  prompt: TokenView[];
  generated: TokenView[];
  paddingId: number | null;
}

/** `generatedFrom`: the index of `generated[0]` among the run's generated tokens (a slice of a run). */
export function plainSegments({ prefix, prompt, generated, paddingId }: Sequence, generatedFrom = 0): Segment[] {
  return segmentsOf(tag(prefix, prompt, generated, paddingId, generatedFrom));
}

export function chunkSequence({ prefix, prompt, generated, paddingId }: Sequence, chunk: number): ChunkView[] {
  if (!Number.isInteger(chunk) || chunk <= 0) throw new RangeError(`chunk must be a positive integer, got ${chunk}`);
  const all = tag(prefix, prompt, generated, paddingId);
  const chunks: ChunkView[] = [];
  for (let start = 0; start < all.length; start += chunk) {
    const end = Math.min(start + chunk, all.length);
    chunks.push({
      index: start / chunk,
      start,
      end,
      complete: end - start === chunk,
      segments: segmentsOf(all.slice(start, end)),
    });
  }
  return chunks;
}

/**
 * The tokens whose predictions used this retrieval: from the last token of the query chunk
 * (RETRO's causal shift) up to where the next retrieval takes over.
 */
export function tokensInfluencedBy(
  report: ChunkReport,
  next: ChunkReport | undefined,
  sequence: TokenView[],
  firstGenerated: number,
): { tokens: TokenView[]; generated: boolean } {
  const from = report.end - 1;
  const span = report.end - report.start;
  const to = Math.min(sequence.length, next ? next.end - 1 : from + span);
  const generatedFrom = Math.max(from, firstGenerated);
  if (generatedFrom < to) return { tokens: sequence.slice(generatedFrom, to), generated: true };
  return { tokens: sequence.slice(from, to), generated: false };
}

const MIN_CONTENT_LENGTH = 4;

/**
 * Marks neighbour tokens that reappear in `written`: shared bigrams and single shared tokens that
 * carry content (a few letters or digits), so " the" and ", the" do not light up everything.
 */
export function sharedTokenMask(neighbour: TokenView[], written: TokenView[]): boolean[] {
  const ids = new Set(written.map((t) => t.id));
  const bigrams = new Set<string>();
  for (let i = 0; i + 1 < written.length; i++) bigrams.add(`${written[i]!.id},${written[i + 1]!.id}`);
  const mask = neighbour.map((t) => ids.has(t.id) && t.text.replace(/[^\p{L}\p{N}]/gu, '').length >= MIN_CONTENT_LENGTH);
  for (let i = 0; i + 1 < neighbour.length; i++) {
    const a = neighbour[i]!;
    const b = neighbour[i + 1]!;
    const content = (a.text + b.text).replace(/[^\p{L}\p{N}]/gu, '').length;
    if (content >= MIN_CONTENT_LENGTH + 1 && bigrams.has(`${a.id},${b.id}`)) {
      mask[i] = true;
      mask[i + 1] = true;
    }
  }
  return mask;
}

const WIKITEXT_ESCAPE = / @([-,.])@ /g;

/**
 * detokenizeWikiText for a token list, keeping one entry per token so highlights still line up:
 * an escape like " @-@ " spread over several tokens becomes "-" on the token holding the symbol
 * and "" on the others.
 */
export function detokenizeTokens(tokens: TokenView[]): TokenView[] {
  const raw = tokens.map((t) => t.text).join('');
  const keep = new Uint8Array(raw.length).fill(1);
  for (const match of raw.matchAll(WIKITEXT_ESCAPE)) {
    const at = match.index;
    for (let i = at; i < at + match[0].length; i++) keep[i] = 0;
    keep[at + 2] = 1; // the symbol itself
  }
  let offset = 0;
  return tokens.map((t) => {
    let text = '';
    for (let i = 0; i < t.text.length; i++) if (keep[offset + i]) text += t.text[i];
    offset += t.text.length;
    return { id: t.id, text };
  });
}
