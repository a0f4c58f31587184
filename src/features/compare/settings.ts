import { DEFAULT_ICRALM_SETTINGS, DEFAULT_KNN_SETTINGS, type DecodingSettings, type KnnLmSettings, type RetroSettings } from '../../client';
import type { IcRalmColumnSettings } from '../icralm/IcRalmControls';
import { DEFAULT_REPLUG_COLUMN, type ReplugColumnSettings } from '../replug/ReplugControls';
import { DEFAULT_FLARE_COLUMN, type FlareColumnSettings } from '../flare/FlareControls';
import { DEFAULT_PROCESSORS, DEFAULT_SAMPLING, DEFAULT_SEED } from '../../client';

export interface Exclusion {
  datastoreId: string;
  docId: number;
  title: string;
}

export interface CompareSettings {
  decoding: DecodingSettings;
  /** retrievalStep null: the model's chunk size (the setting its metrics were measured with) */
  retro: Omit<RetroSettings, 'excludeDocIds' | 'retrievalStep'> & { retrievalStep: number | null; exclusions: Exclusion[] };
  /** λ, k, T of the kNN-LM column (its on/off switch lives in the client: it loads a datastore) */
  knn: KnnLmSettings;
  /** The In-Context RALM column: off by default, s and l */
  icralm: IcRalmColumnSettings;
  /** The REPLUG column: off by default, k, τ, s and l */
  replug: ReplugColumnSettings;
  /** The FLARE column: off by default, look-ahead, θ, β and l */
  flare: FlareColumnSettings;
  /** Controls that apply to every retrieval column (docs/controls.md); each column's random switch is in its own section. */
  experiments: ExperimentSettings;
}

export interface ExperimentSettings {
  /** The leakage control: GenerateRequest.excludePromptDocument */
  excludePromptDocument: boolean;
}

export const DEFAULT_SETTINGS: CompareSettings = {
  decoding: { strategy: 'sample', ...DEFAULT_SAMPLING, seed: DEFAULT_SEED, maxTokens: 48, ...DEFAULT_PROCESSORS },
  retro: { retrieval: true, k: 2, retrievalStep: null, leftPad: true, retroPlusPlus: false, randomNeighbours: false, exclusions: [] },
  // randomNeighbours is listed so that links and stored settings carry it (they keep known keys only).
  knn: { ...DEFAULT_KNN_SETTINGS, randomNeighbours: false },
  icralm: { enabled: false, ...DEFAULT_ICRALM_SETTINGS, randomNeighbours: false },
  replug: { ...DEFAULT_REPLUG_COLUMN, randomNeighbours: false },
  flare: { ...DEFAULT_FLARE_COLUMN, randomNeighbours: false },
  // Kept in by default (as before): the built-in prompts come from WikiText-2, so switching shows the difference.
  experiments: { excludePromptDocument: false },
};

// v2: sampling and the logits processors became the defaults; settings saved as v1 (greedy) start afresh.
const STORAGE_KEY = 'retrolab.compare-settings.v2';

/** Settings survive a reload (a classroom demo should not reset when the page is refreshed). */
export function loadSettings(): CompareSettings {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return DEFAULT_SETTINGS;
    const parsed = JSON.parse(raw) as Partial<CompareSettings>;
    return mergeSettings({ ...parsed, retro: parsed.retro && { ...parsed.retro, retrievalStep: storedRetrievalStep(parsed.retro.retrievalStep) } });
  } catch {
    return DEFAULT_SETTINGS;
  }
}

/** Partial settings (stored, from a link, a lesson) over the defaults, section by section. */
export function mergeSettings(partial: { [K in keyof CompareSettings]?: Partial<CompareSettings[K]> | undefined }): CompareSettings {
  return {
    decoding: { ...DEFAULT_SETTINGS.decoding, ...partial.decoding },
    retro: { ...DEFAULT_SETTINGS.retro, ...partial.retro },
    knn: { ...DEFAULT_SETTINGS.knn, ...partial.knn },
    icralm: { ...DEFAULT_SETTINGS.icralm, ...partial.icralm },
    replug: { ...DEFAULT_SETTINGS.replug, ...partial.replug },
    flare: { ...DEFAULT_SETTINGS.flare, ...partial.flare },
    experiments: { ...DEFAULT_SETTINGS.experiments, ...partial.experiments },
  };
}

/**
 * Settings saved before the step followed the model stored 32, the first RETRO's chunk and then the
 * default: that one means "the chunk size"; another number is the user's choice.
 */
function storedRetrievalStep(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value !== 32 ? value : null;
}

export function saveSettings(settings: CompareSettings): void {
  try {
    // Only the kNN-LM values the user changed: untouched ones follow DEFAULT_KNN_SETTINGS when it is retuned.
    const knn = Object.fromEntries(Object.entries(settings.knn).filter(([k, v]) => DEFAULT_SETTINGS.knn[k as keyof KnnLmSettings] !== v));
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ ...settings, knn }));
  } catch {
    // Private mode or full storage: settings just won't persist.
  }
}
