import { describe, expect, it } from 'vitest';
import { displayToken, explainPosition, formatProbability } from './format';

describe('token distribution formatting', () => {
  it('makes spaces and newlines of a token visible', () => {
    expect(displayToken(' American')).toBe('␣American');
    expect(displayToken('\n')).toBe('⏎');
    expect(displayToken('')).toBe('∅');
    expect(displayToken('a b')).toBe('a b');
  });

  it('prints probabilities with three decimals, tiny ones in exponent form', () => {
    expect(formatProbability(0.25)).toBe('0.250');
    expect(formatProbability(1)).toBe('1.000');
    expect(formatProbability(0)).toBe('0');
    expect(formatProbability(5.9e-4)).toBe('5.9e-4');
    expect(formatProbability(Number.NaN)).toBe('–');
  });

  it('maps generated token j to the position whose distribution produced it', () => {
    // prompt of 5 tokens at positions 0..4: the first generated token came from the distribution after position 4.
    expect(explainPosition(0, 5, 0)).toBe(4);
    expect(explainPosition(0, 5, 3)).toBe(7);
    expect(explainPosition(2, 5, 0)).toBe(6);
  });
});
