import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../compare/settings';
import { LESSONS } from './lessons';
import { stepSettings } from './preset';

describe('the lessons', () => {
  it('cover the map: what, how, when, leakage, own text, quality', () => {
    expect(LESSONS.map((l) => l.topic)).toEqual(['what', 'how', 'when', 'leakage', 'own text', 'quality']);
    expect(new Set(LESSONS.map((l) => l.id)).size).toBe(LESSONS.length);
  });

  it('have every text in English and Chinese, a prompt, and a source for their numbers', () => {
    for (const lesson of LESSONS) {
      expect(lesson.title.en && lesson.title.zh, lesson.id).toBeTruthy();
      expect(lesson.steps.length).toBeGreaterThan(0);
      for (const step of lesson.steps) {
        for (const field of [step.title, step.read, step.notice, step.question, step.source]) {
          expect(field.en.trim(), lesson.id).not.toBe('');
          expect(field.zh, lesson.id).toMatch(/[\u4e00-\u9fff]/);
        }
        expect(step.prompt.trim()).not.toBe('');
      }
    }
  });

  it('ship the texts their datastores are built from', () => {
    for (const step of LESSONS.flatMap((l) => l.steps)) {
      if (step.datastore.kind !== 'text') continue;
      for (const file of step.datastore.files) expect(existsSync(new URL(`../../../public/lessons/${file}`, import.meta.url)), file).toBe(true);
    }
  });

  it('apply over the defaults, not over what was set before', () => {
    const quality = LESSONS.find((l) => l.id === 'quality')!;
    const greedy = stepSettings(quality.steps[0]!);
    expect(greedy.decoding).toEqual({ ...DEFAULT_SETTINGS.decoding, strategy: 'greedy', maxTokens: 48, suppressUnk: false, repetitionPenalty: 1, noRepeatNgramSize: 0 });
    expect(greedy.retro.retrieval).toBe(false);
    expect(stepSettings(quality.steps[1]!).decoding).toEqual(DEFAULT_SETTINGS.decoding);
    const how = stepSettings(LESSONS.find((l) => l.id === 'how')!.steps[0]!);
    expect(how.icralm.enabled).toBe(true);
    expect(how.retro.exclusions).toEqual([]);
  });
});
