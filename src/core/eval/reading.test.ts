import { describe, expect, it } from 'vitest';
import { clozePrompt, containsAnswer, copiedExactly, copyPrompts, normalizeAnswer, wilsonInterval } from './reading';

describe('cloze and copy tests', () => {
  it('normalises answers as the SQuAD script does', () => {
    expect(normalizeAnswer('The  Normans, of France!')).toBe('normans of france');
    expect(containsAnswer('in the 10th and 11th centuries .', ['10th and 11th centuries'])).toBe(true);
    expect(containsAnswer('France', ['france'])).toBe(true);
    // whole words only: "Franc" is not "France"
    expect(containsAnswer('the Franc was', ['France'])).toBe(false);
  });

  it('cuts the answer sentence just before the answer', () => {
    const paragraph = 'The Normans were a people. They gave their name to Normandy, a region in France. It was settled in the 10th century.';
    const p = clozePrompt({ id: 'q', answers: ['France'], pid: 'dev-0' }, paragraph);
    expect(p?.prompt).toBe('They gave their name to Normandy, a region in');
    // too few words before the answer
    expect(clozePrompt({ id: 'q', answers: ['The Normans'], pid: 'dev-0' }, paragraph)).toBeNull();
    // not in the paragraph
    expect(clozePrompt({ id: 'q', answers: ['Spain'], pid: 'dev-0' }, paragraph)).toBeNull();
  });

  it('Wilson interval contains the rate and narrows with n', () => {
    const [lo, hi] = wilsonInterval(15, 100);
    expect(lo).toBeLessThan(0.15);
    expect(hi).toBeGreaterThan(0.15);
    expect(lo).toBeCloseTo(0.0930, 3);
    expect(hi).toBeCloseTo(0.2328, 3);
    const [lo2, hi2] = wilsonInterval(150, 1000);
    expect(hi2 - lo2).toBeLessThan(hi - lo);
  });

  it('copy prompts are reproducible and cut inside the passage', () => {
    const passages = [Array.from({ length: 100 }, (_, i) => i), Array.from({ length: 10 }, (_, i) => i)];
    const a = copyPrompts(passages, { copyTokens: 4, minPrompt: 16, maxPrompt: 64, seed: 7 });
    expect(copyPrompts(passages, { copyTokens: 4, minPrompt: 16, maxPrompt: 64, seed: 7 })).toEqual(a);
    expect(a).toHaveLength(1); // the 10-token passage is too short
    const p = a[0]!;
    const cut = p.promptIds[p.promptIds.length - 1]! + 1;
    expect(p.expected).toEqual([cut, cut + 1, cut + 2, cut + 3]);
    expect(copiedExactly([cut, cut + 1, cut + 2, cut + 3, 9], p.expected)).toBe(true);
    expect(copiedExactly([cut, cut + 1, 0, cut + 3], p.expected)).toBe(false);
  });
});
