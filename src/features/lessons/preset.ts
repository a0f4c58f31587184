import { mergeSettings, type CompareSettings } from '../compare/settings';
import type { LessonStep } from './types';

/** A lesson step's settings over the defaults (not over what was set before), with no exclusions. */
export function stepSettings(step: LessonStep): CompareSettings {
  const s = step.settings ?? {};
  return mergeSettings({
    decoding: s.decoding,
    retro: { ...s.retro, exclusions: [] },
    knn: s.knn,
    icralm: { ...s.icralm, enabled: step.columns.icralm },
  });
}
