import { describe, expect, it } from 'vitest';
import type { ChunkReport, TokenView } from '../../client';
import { passageItems, tokensServedBy } from './blocks';

const tokens = (texts: string[], from = 0): TokenView[] => texts.map((text, i) => ({ id: 10 + from + i, text }));
const report = (chunk: number, start: number, end: number): ChunkReport => ({ chunk, start, end, neighbours: [], latencyMs: 1 });

describe('In-Context RALM column text', () => {
  it('puts a mark where each passage started serving, between prompt and generated text', () => {
    const prompt = tokens([' The', ' ship', ' was']);
    const generated = tokens([' launched', ' in', ' 1900', ' and', ' sank'], 3);
    const items = passageItems({ prefix: [], prompt, generated, paddingId: null, chunks: [report(1, 1, 5), report(0, 0, 3)] });
    expect(items.map((i) => (i.kind === 'mark' ? `[${i.report.chunk}]` : i.segments.map((s) => `${s.kind}:${s.text}`).join('|')))).toEqual([
      'prompt: The ship was',
      '[0]',
      'generated: launched in',
      '[1]',
      'generated: 1900 and sank',
    ]);
    // Each generated piece knows which generated token it starts at (the token buttons' indices).
    expect(items.flatMap((i) => (i.kind === 'text' ? i.segments.filter((s) => s.kind === 'generated').map((s) => s.from) : []))).toEqual([0, 2]);
  });

  it('keeps a retrieval made for a token that was never written (stopped) as a final mark', () => {
    const items = passageItems({ prefix: [], prompt: tokens([' a']), generated: [], paddingId: null, chunks: [report(0, 0, 1), report(1, 0, 5)] });
    expect(items.map((i) => i.kind)).toEqual(['text', 'mark', 'mark']);
  });

  it('knows which tokens a passage served', () => {
    const sequence = tokens(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(tokensServedBy(report(0, 0, 2), report(1, 0, 4), sequence, 2).map((t) => t.text)).toEqual(['c', 'd']);
    expect(tokensServedBy(report(1, 0, 4), undefined, sequence, 4).map((t) => t.text)).toEqual(['e', 'f', 'g']);
  });
});
