/** A token's text as a label: leading/trailing spaces and newlines made visible. */
export function displayToken(text: string): string {
  if (text === '') return '∅';
  return text.replace(/\n/g, '⏎').replace(/^ /, '␣').replace(/ $/, '␣');
}

/** Probabilities in [0, 1] with three significant digits; tiny ones in exponent form. */
export function formatProbability(p: number): string {
  if (!Number.isFinite(p)) return '–';
  if (p === 0) return '0';
  if (p < 0.001) return p.toExponential(1);
  return p.toFixed(3);
}

/** Sequence position whose distribution produced generated token `index` (the token before it). */
export function explainPosition(prefixLength: number, promptLength: number, index: number): number {
  return prefixLength + promptLength + index - 1;
}
