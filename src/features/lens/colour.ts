/**
 * Colour scales of the perplexity lens (pure, unit-tested). Loss is in nats (−ln p). The loss scale
 * is fixed rather than fitted to the text, so two models' maps can be compared by eye; the
 * difference scale is diverging and symmetric around "no change".
 */

export type Rgb = readonly [number, number, number];

export interface Swatch {
  background: string;
  /** text colour readable on the background */
  color: string;
}

export interface ColourStop {
  at: number;
  rgb: Rgb;
}

/** Losses at or above this many nats get the darkest colour (p ≤ 4.5e-5). */
export const LOSS_SCALE_MAX = 10;
/** Differences of this many nats or more get the strongest colour (a factor of e^4 ≈ 55 in probability). */
export const DIFFERENCE_SCALE_MAX = 4;

/** Light to dark orange-brown (sequential, readable for common colour-vision deficiencies). */
export const LOSS_STOPS: readonly ColourStop[] = [
  { at: 0, rgb: [255, 247, 236] },
  { at: 0.35, rgb: [253, 187, 132] },
  { at: 0.7, rgb: [227, 74, 51] },
  { at: 1, rgb: [127, 0, 0] },
];

/** Blue where the second model is better (lower loss), orange where it is worse; near white around 0. */
export const DIFFERENCE_STOPS: readonly ColourStop[] = [
  { at: -1, rgb: [179, 88, 6] },
  { at: -0.5, rgb: [253, 184, 99] },
  { at: 0, rgb: [247, 247, 247] },
  { at: 0.5, rgb: [146, 197, 222] },
  { at: 1, rgb: [33, 102, 172] },
];

/** Linear interpolation between sorted stops; t outside the stops is clamped. */
export function interpolate(stops: readonly ColourStop[], t: number): Rgb {
  const first = stops[0]!;
  const last = stops[stops.length - 1]!;
  if (!(t > first.at)) return first.rgb;
  if (t >= last.at) return last.rgb;
  let i = 1;
  while (stops[i]!.at < t) i++;
  const lo = stops[i - 1]!;
  const hi = stops[i]!;
  const f = (t - lo.at) / (hi.at - lo.at);
  return [0, 1, 2].map((c) => Math.round(lo.rgb[c]! + f * (hi.rgb[c]! - lo.rgb[c]!))) as unknown as Rgb;
}

/** WCAG relative luminance of an sRGB colour. */
export function luminance([r, g, b]: Rgb): number {
  const lin = (v: number) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function swatch(rgb: Rgb): Swatch {
  // Dark text unless white contrasts better (contrast ratios against #1c2430 and #fff).
  const l = luminance(rgb);
  const darkText = luminance([28, 36, 48]);
  const onDark = (l + 0.05) / (darkText + 0.05);
  const onWhite = 1.05 / (l + 0.05);
  return { background: `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`, color: onDark >= onWhite ? '#1c2430' : '#ffffff' };
}

/** The colour of a token's loss; null for a token with no score (the text's first token). */
export function lossSwatch(loss: number, max = LOSS_SCALE_MAX): Swatch | null {
  if (!Number.isFinite(loss) && loss !== Infinity) return null;
  return swatch(interpolate(LOSS_STOPS, Math.max(0, loss) / max));
}

/**
 * The colour of loss(A) − loss(B): positive (B gave the token a higher probability) is blue,
 * negative orange. Null where either model has no score.
 */
export function differenceSwatch(delta: number, max = DIFFERENCE_SCALE_MAX): Swatch | null {
  if (Number.isNaN(delta)) return null;
  return swatch(interpolate(DIFFERENCE_STOPS, Math.max(-1, Math.min(1, delta / max))));
}

export interface LegendEntry {
  value: number;
  label: string;
  swatch: Swatch;
}

/** The words of the legends' ticks; the lens passes its UI language's (src/i18n), English otherwise. */
export interface LegendWords {
  /** a loss tick: `value` nats, probability `p`; `last` is the open-ended top tick (≥ value, p ≤) */
  loss: (tick: { value: string; p: string; last: boolean }) => string;
  same: string;
  /** a difference tick: `name` gives the token `ratio` times the probability; `more` on the outermost ticks */
  better: (tick: { name: string; ratio: string; more: boolean }) => string;
}

export const ENGLISH_LEGEND: LegendWords = {
  loss: ({ value, p, last }) => (last ? `≥ ${value} nats (p ≤ ${p})` : `${value} nats (p = ${p})`),
  same: 'same loss',
  better: ({ name, ratio, more }) => `${name} better: p ×${ratio}${more ? ' or more' : ''}`,
};

/** Ticks for the loss legend: nats with the probability they stand for. */
export function lossLegend(max = LOSS_SCALE_MAX, steps = 5, words: LegendWords = ENGLISH_LEGEND): LegendEntry[] {
  return Array.from({ length: steps + 1 }, (_, i) => {
    const value = (max * i) / steps;
    const last = i === steps;
    return { value, label: words.loss({ value: formatNumber(value), p: formatProbability(Math.exp(-value)), last }), swatch: lossSwatch(value, max)! };
  });
}

/** Ticks for the difference legend, from "A better" through "same" to "B better". */
export function differenceLegend(nameA: string, nameB: string, max = DIFFERENCE_SCALE_MAX, words: LegendWords = ENGLISH_LEGEND): LegendEntry[] {
  return [-1, -0.5, 0, 0.5, 1].map((f) => {
    const value = f * max;
    const ratio = formatNumber(Math.exp(Math.abs(value)));
    const label = value === 0 ? words.same : words.better({ name: value > 0 ? nameB : nameA, ratio, more: Math.abs(f) === 1 });
    return { value, label, swatch: differenceSwatch(value, max)! };
  });
}

export function formatProbability(p: number): string {
  if (!Number.isFinite(p)) return '—';
  if (p >= 0.01) return `${(p * 100).toFixed(p >= 0.1 ? 0 : 1)}%`;
  if (p === 0) return '0';
  return p.toExponential(1);
}

function formatNumber(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 1 : 0);
}
