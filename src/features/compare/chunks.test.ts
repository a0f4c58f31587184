import { describe, expect, it } from 'vitest';
import type { ChunkReport, TokenView } from '../../client';
import { chunkSequence, detokenizeTokens, displayText, plainSegments, sharedTokenMask, tokensInfluencedBy } from './chunks';

const t = (id: number, text: string): TokenView => ({ id, text });
const words = (s: string, firstId = 100): TokenView[] => s.split(/(?= )/).map((w, i) => t(firstId + i, w));

describe('chunkSequence', () => {
  it('cuts padding + prompt + generated into chunks from position 0', () => {
    const pad = [t(1, '<|endoftext|>'), t(1, '<|endoftext|>')];
    const prompt = words('The ship was');
    const generated = words(' launched in 1911', 200);
    const chunks = chunkSequence({ prefix: pad, prompt, generated, paddingId: 1 }, 4);
    expect(chunks.map((c) => [c.index, c.start, c.end, c.complete])).toEqual([
      [0, 0, 4, true],
      [1, 4, 8, true],
    ]);
    expect(chunks[0]!.segments).toEqual([
      { kind: 'padding', text: '', count: 2 },
      { kind: 'prompt', text: 'The ship', count: 2 },
    ]);
    expect(chunks[1]!.segments).toEqual([
      { kind: 'prompt', text: ' was', count: 1 },
      { kind: 'generated', text: ' launched in 1911', count: 3, from: 0 },
    ]);
  });

  it('numbers generated segments by their first generated token, across chunks', () => {
    const chunks = chunkSequence({ prefix: [], prompt: words('a b c'), generated: words(' d e f g h', 200), paddingId: null }, 4);
    expect(chunks.map((c) => c.segments.filter((s) => s.kind === 'generated').map((s) => [s.from, s.count]))).toEqual([[[0, 1]], [[1, 4]]]);
    expect(plainSegments({ prefix: [], prompt: [], generated: words(' x y', 300), paddingId: null }, 7)).toEqual([{ kind: 'generated', text: ' x y', count: 2, from: 7 }]);
  });

  it('marks a trailing partial chunk incomplete', () => {
    const chunks = chunkSequence({ prefix: [], prompt: words('a b c d e'), generated: [], paddingId: null }, 2);
    expect(chunks.map((c) => c.complete)).toEqual([true, true, false]);
    expect(chunks.at(-1)!.segments[0]!.text).toBe(' e');
  });

  it("detokenizes WikiText escapes that span several tokens", () => {
    const prompt = [t(5, 'state'), t(6, ' @'), t(7, '-'), t(8, '@'), t(9, ' of')];
    expect(plainSegments({ prefix: [], prompt, generated: [], paddingId: null })).toEqual([{ kind: 'prompt', text: 'state-of', count: 5 }]);
  });

  it('refuses a non-positive chunk size', () => {
    expect(() => chunkSequence({ prefix: [], prompt: [], generated: [], paddingId: null }, 0)).toThrow(RangeError);
  });
});

describe('displayText', () => {
  it('keeps at most one blank line between paragraphs', () => {
    expect(displayText('end .\n \n \n \n \n = = Life = =\n')).toBe('end .\n\n = = Life = =\n');
    expect(displayText('a\n \nb')).toBe('a\n \nb');
  });
});

describe('detokenizeTokens', () => {
  it('keeps one entry per token and puts the symbol on the token that holds it', () => {
    const tokens = [t(5, 'state'), t(6, ' @'), t(7, '-'), t(8, '@'), t(9, ' of')];
    const out = detokenizeTokens(tokens);
    expect(out.map((x) => x.text)).toEqual(['state', '', '-', '', 'of']);
    expect(out.map((x) => x.text).join('')).toBe('state-of');
    expect(out.map((x) => x.id)).toEqual([5, 6, 7, 8, 9]);
  });
});

describe('tokensInfluencedBy', () => {
  const sequence = words(' a b c d e f g h i j', 0);
  const report = (chunk: number, start: number, end: number): ChunkReport => ({ chunk, start, end, neighbours: [], latencyMs: 0 });

  it('starts at the last token of the query chunk (the causal shift) and prefers generated tokens', () => {
    const r = tokensInfluencedBy(report(0, 0, 4), undefined, sequence, 5);
    expect(r.generated).toBe(true);
    expect(r.tokens.map((x) => x.text)).toEqual([' f', ' g']);
  });

  it('falls back to the prompt tokens that followed when nothing was generated there', () => {
    const r = tokensInfluencedBy(report(0, 0, 4), report(1, 4, 8), sequence, 10);
    expect(r.generated).toBe(false);
    expect(r.tokens.map((x) => x.text)).toEqual([' d', ' e', ' f', ' g']);
  });
});

describe('sharedTokenMask', () => {
  it('highlights shared content words and shared bigrams, not lone function words', () => {
    const neighbour = [t(1, ' the'), t(2, ' lighthouse'), t(3, ' was'), t(4, ' painted'), t(5, ' violet'), t(6, ' ,')];
    const written = [t(1, ' the'), t(7, ' keeper'), t(4, ' painted'), t(5, ' violet'), t(2, ' lighthouse')];
    expect(sharedTokenMask(neighbour, written)).toEqual([false, true, false, true, true, false]);
  });

  it('marks nothing when nothing is shared', () => {
    expect(sharedTokenMask(words(' alpha beta'), words(' gamma delta', 500))).toEqual([false, false]);
  });
});
