/**
 * The In-Context RALM column's text: the run's tokens cut where a passage was placed before the
 * context (each retrieval's `end`, the first position predicted with it), so a mark can sit there.
 */
import type { ChunkReport, RunState, TokenView } from '../../client';
import { plainSegments, type Segment } from '../compare/chunks';

export type PassageItem = { kind: 'text'; segments: Segment[] } | { kind: 'mark'; report: ChunkReport };

export function passageItems(run: Pick<RunState, 'prefix' | 'prompt' | 'generated' | 'paddingId' | 'chunks'>): PassageItem[] {
  const sequence: { token: TokenView; generated: boolean }[] = [
    ...run.prefix.map((token) => ({ token, generated: false })),
    ...run.prompt.map((token) => ({ token, generated: false })),
    ...run.generated.map((token) => ({ token, generated: true })),
  ];
  const firstGenerated = run.prefix.length + run.prompt.length;
  const reports = [...run.chunks].sort((a, b) => a.end - b.end || a.chunk - b.chunk);
  const items: PassageItem[] = [];
  const text = (from: number, to: number) => {
    if (to <= from) return;
    const slice = sequence.slice(from, to);
    const prompt = slice.filter((t) => !t.generated).map((t) => t.token);
    const generated = slice.filter((t) => t.generated).map((t) => t.token);
    const generatedFrom = Math.max(0, from - firstGenerated);
    items.push({ kind: 'text', segments: plainSegments({ prefix: [], prompt, generated, paddingId: run.paddingId }, generatedFrom) });
  };
  let at = 0;
  for (const report of reports) {
    const end = Math.min(Math.max(report.end, at), sequence.length);
    text(at, end);
    at = end;
    items.push({ kind: 'mark', report });
  }
  text(at, sequence.length);
  return items;
}

/** The tokens a passage served: the block from its `end` up to the next retrieval. */
export function tokensServedBy(report: ChunkReport, next: ChunkReport | undefined, sequence: TokenView[], stride: number): TokenView[] {
  const to = next ? next.end : report.end + stride;
  return sequence.slice(report.end, Math.min(to, sequence.length));
}
