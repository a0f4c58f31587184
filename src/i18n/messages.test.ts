import i18next from 'i18next';
import { describe, expect, it } from 'vitest';
import { formatDuration } from '../client/format';
import { ENGLISH_LEGEND, differenceLegend, lossLegend } from '../features/lens/colour';
import { legendWords } from '../features/lens/legend';
import { en } from './en';
import { durationWords } from './format';
import { zh } from './zh';

type Tree = { [key: string]: string | Tree };

function leaves(tree: Tree, prefix = ''): [string, string][] {
  return Object.entries(tree).flatMap(([k, v]) => (typeof v === 'string' ? [[`${prefix}${k}`, v] as [string, string]] : leaves(v, `${prefix}${k}.`)));
}

/** What a translation must keep: its {{placeholders}} and its <n> component tags. */
function slots(text: string): string[] {
  return [...text.matchAll(/\{\{\s*(\w+)\s*\}\}|<\/?(\d+)>/g)].map((m) => m[0].replace(/\s/g, '')).sort();
}

describe('UI messages', () => {
  const english = new Map(leaves(en));
  const chinese = new Map(leaves(zh));

  it('zh has every English key and no other', () => {
    expect([...chinese.keys()].sort()).toEqual([...english.keys()].sort());
  });

  it('every Chinese message keeps the placeholders and tags of its English one', () => {
    const mismatched = [...english].filter(([key, text]) => slots(chinese.get(key) ?? '').join() !== slots(text).join()).map(([key]) => key);
    expect(mismatched).toEqual([]);
  });

  it('no Chinese message is left as its English text, except names and formulas', () => {
    // Same in both languages on purpose: method names, a formula, a placeholder-only template.
    const same = new Set(['settings.topK', 'settings.topP', 'settings.retroPlusPlus', 'progress.amount', 'replug.temperature']);
    const untranslated = [...english].filter(([key, text]) => chinese.get(key) === text && !same.has(key)).map(([key]) => key);
    expect(untranslated).toEqual([]);
  });

  it('the English messages give the same text as the English defaults in code (legend ticks, durations)', async () => {
    const i18n = i18next.createInstance();
    await i18n.init({ resources: { en: { translation: en } }, lng: 'en', interpolation: { escapeValue: false } });
    const words = legendWords(i18n.t);
    expect(lossLegend(undefined, undefined, words).map((e) => e.label)).toEqual(lossLegend(undefined, undefined, ENGLISH_LEGEND).map((e) => e.label));
    expect(differenceLegend('GPT', 'RETRO', undefined, words).map((e) => e.label)).toEqual(differenceLegend('GPT', 'RETRO').map((e) => e.label));
    const duration = durationWords(i18n.t);
    for (const seconds of [0.2, 59, 61, 3725]) expect(formatDuration(seconds, duration)).toBe(formatDuration(seconds));
  });

  it('the Chinese messages fill in their placeholders', async () => {
    const i18n = i18next.createInstance();
    await i18n.init({ resources: { zh: { translation: zh } }, lng: 'zh', interpolation: { escapeValue: false } });
    expect(formatDuration(65, durationWords(i18n.t))).toBe('1 分 05 秒');
    expect(differenceLegend('GPT', 'RETRO', undefined, legendWords(i18n.t)).map((e) => e.label)).toEqual(['GPT 更好：p ×55 或更多', 'GPT 更好：p ×7.4', '损失相同', 'RETRO 更好：p ×7.4', 'RETRO 更好：p ×55 或更多']);
  });
});
