import { describe, expect, it } from 'vitest';
import {
  DIFFERENCE_SCALE_MAX,
  DIFFERENCE_STOPS,
  LOSS_SCALE_MAX,
  LOSS_STOPS,
  differenceLegend,
  differenceSwatch,
  formatProbability,
  interpolate,
  lossLegend,
  lossSwatch,
  luminance,
} from './colour';

const rgb = (css: string) => css.match(/\d+/g)!.map(Number);

describe('lens colour scales', () => {
  it('interpolates linearly between stops and clamps outside them', () => {
    const stops = [
      { at: 0, rgb: [0, 0, 0] as const },
      { at: 1, rgb: [200, 100, 50] as const },
    ];
    expect(interpolate(stops, 0.5)).toEqual([100, 50, 25]);
    expect(interpolate(stops, -3)).toEqual([0, 0, 0]);
    expect(interpolate(stops, 7)).toEqual([200, 100, 50]);
    expect(interpolate(stops, Number.NaN)).toEqual([0, 0, 0]);
  });

  it('loss colours darken monotonically from 0 to the scale maximum, then stay', () => {
    let previous = Infinity;
    for (let loss = 0; loss <= LOSS_SCALE_MAX; loss += 0.5) {
      const l = luminance(rgb(lossSwatch(loss)!.background) as unknown as [number, number, number]);
      expect(l).toBeLessThan(previous);
      previous = l;
    }
    expect(lossSwatch(LOSS_SCALE_MAX + 5)).toEqual(lossSwatch(LOSS_SCALE_MAX));
    expect(lossSwatch(Infinity)).toEqual(lossSwatch(LOSS_SCALE_MAX));
    expect(lossSwatch(-1)).toEqual(lossSwatch(0));
    expect(lossSwatch(Number.NaN)).toBeNull();
    expect(rgb(lossSwatch(0)!.background)).toEqual([...LOSS_STOPS[0]!.rgb]);
  });

  it('text stays readable: dark on light backgrounds, white on dark ones', () => {
    expect(lossSwatch(0)!.color).toBe('#1c2430');
    expect(lossSwatch(LOSS_SCALE_MAX)!.color).toBe('#ffffff');
  });

  it('the difference scale is diverging: blue where B is better, orange where A is, neutral at 0', () => {
    const better = rgb(differenceSwatch(DIFFERENCE_SCALE_MAX)!.background);
    const worse = rgb(differenceSwatch(-DIFFERENCE_SCALE_MAX)!.background);
    expect(better).toEqual([...DIFFERENCE_STOPS.at(-1)!.rgb]);
    expect(worse).toEqual([...DIFFERENCE_STOPS[0]!.rgb]);
    expect(better[2]!).toBeGreaterThan(better[0]!); // blue
    expect(worse[0]!).toBeGreaterThan(worse[2]!); // orange
    expect(rgb(differenceSwatch(0)!.background)).toEqual([247, 247, 247]);
    expect(differenceSwatch(100)).toEqual(differenceSwatch(DIFFERENCE_SCALE_MAX));
    expect(differenceSwatch(Infinity)).toEqual(differenceSwatch(DIFFERENCE_SCALE_MAX));
    expect(differenceSwatch(Number.NaN)).toBeNull();
  });

  it('legends state the scale in nats and probabilities', () => {
    const loss = lossLegend();
    expect(loss[0]!.label).toBe('0 nats (p = 100%)');
    expect(loss.at(-1)!.label).toBe('≥ 10 nats (p ≤ 4.5e-5)');
    const diff = differenceLegend('GPT', 'RETRO');
    expect(diff.map((d) => d.value)).toEqual([-4, -2, 0, 2, 4]);
    expect(diff[2]!.label).toBe('same loss');
    expect(diff.at(-1)!.label).toContain('RETRO better');
    expect(diff[0]!.label).toContain('GPT better');
  });

  it('formats probabilities for tooltips', () => {
    expect(formatProbability(0.5)).toBe('50%');
    expect(formatProbability(0.034)).toBe('3.4%');
    expect(formatProbability(0.00012)).toBe('1.2e-4');
    expect(formatProbability(0)).toBe('0');
  });
});
