import type { DecodingSettings, RetroSettings } from '../../client';

export interface Exclusion {
  datastoreId: string;
  docId: number;
  title: string;
}

export interface CompareSettings {
  decoding: DecodingSettings;
  retro: Omit<RetroSettings, 'excludeDocIds'> & { exclusions: Exclusion[] };
}

export const DEFAULT_SETTINGS: CompareSettings = {
  decoding: { strategy: 'greedy', temperature: 0.8, topK: 40, topP: 0.95, seed: 42, maxTokens: 48 },
  retro: { retrieval: true, k: 2, retrievalStep: 32, leftPad: true, retroPlusPlus: false, exclusions: [] },
};

const STORAGE_KEY = 'retrolab.compare-settings.v1';

/** Settings survive a reload (a classroom demo should not reset when the page is refreshed). */
export function loadSettings(): CompareSettings {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return DEFAULT_SETTINGS;
    const parsed = JSON.parse(raw) as Partial<CompareSettings>;
    return {
      decoding: { ...DEFAULT_SETTINGS.decoding, ...parsed.decoding },
      retro: { ...DEFAULT_SETTINGS.retro, ...parsed.retro },
    };
  } catch {
    return DEFAULT_SETTINGS;
  }
}

export function saveSettings(settings: CompareSettings): void {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(settings));
  } catch {
    // Private mode or full storage: settings just won't persist.
  }
}
