import { describe, expect, it } from 'vitest';
import { findPromptSources, lastAtOrBefore, promptPieces, PROMPT_PIECE } from './prompt-sources';

/** Three documents of 100 tokens each, ids distinct per document (doc d holds 1000d .. 1000d + 99). */
const stream = Array.from({ length: 300 }, (_, i) => 1000 * Math.floor(i / 100) + (i % 100));
const docAt = (at: number) => Math.floor(at / 100);
const title = (doc: number) => `doc ${doc}`;

describe('the prompt’s documents (leakage control)', () => {
  it('cuts the prompt after its first token into 8-token pieces', () => {
    const ids = Array.from({ length: 20 }, (_, i) => i);
    expect(promptPieces(ids)).toEqual([ids.slice(1, 9), ids.slice(9, 17)]);
    expect(promptPieces(ids.slice(0, PROMPT_PIECE))).toEqual([]);
  });

  it('names the document holding the prompt, whatever its first token', () => {
    const prompt = [7, ...stream.slice(130, 160)];
    expect(findPromptSources(prompt, stream, docAt, title)).toEqual({ known: true, documents: [{ docId: 1, title: 'doc 1' }], pieces: 3 });
  });

  it('needs at least half of the pieces: a prompt mixing two documents names both, a stray match names none', () => {
    const mixed = [0, ...stream.slice(10, 18), ...stream.slice(210, 218)];
    expect(findPromptSources(mixed, stream, docAt, title).documents.map((d) => d.docId)).toEqual([0, 2]);
    const stray = [0, ...stream.slice(10, 18), 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6];
    expect(findPromptSources(stray, stream, docAt, title).documents).toEqual([]);
    expect(findPromptSources([1, 2, 3], stream, docAt, title)).toEqual({ known: true, documents: [], pieces: 0 });
  });

  it('finds the last start at or before a position', () => {
    expect(lastAtOrBefore([0, 5, 9], 4)).toBe(0);
    expect(lastAtOrBefore([0, 5, 9], 5)).toBe(1);
    expect(lastAtOrBefore([0, 5, 9], 100)).toBe(2);
    expect(lastAtOrBefore([3], 1)).toBe(-1);
  });
});
