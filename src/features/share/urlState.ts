import { DEFAULT_SETTINGS, mergeSettings, type CompareSettings } from '../compare/settings';

/** What a shared link carries: enough to put a class in front of the same screen. */
export interface SharedState {
  prompt?: string;
  settings?: CompareSettings;
  /** the kNN-LM column on or off */
  knn?: boolean;
  /** a built-in datastore id (a datastore built in one browser does not exist in another) */
  datastore?: string;
  lesson?: string;
  /** 0-based */
  step?: number;
}

/** The query parameters this state owns; others (`backend`) are left as they are. */
export const STATE_PARAMS = ['lesson', 'step', 'prompt', 'settings', 'knn', 'datastore'] as const;

/** `search` with this state's parameters replaced by `state`'s. */
export function withState(search: string, state: SharedState): string {
  const params = new URLSearchParams(search);
  for (const key of STATE_PARAMS) params.delete(key);
  for (const [key, value] of new URLSearchParams(encodeState(state))) params.set(key, value);
  const query = params.toString();
  return query ? `?${query}` : '';
}

type Section = keyof CompareSettings;
const SECTIONS: Section[] = ['decoding', 'retro', 'knn', 'icralm', 'replug', 'flare'];

/** Only what differs from the defaults goes in the link, so links stay short and follow retuned defaults. */
function settingsDiff(settings: CompareSettings): Record<string, Record<string, unknown>> {
  const diff: Record<string, Record<string, unknown>> = {};
  for (const section of SECTIONS) {
    const base = DEFAULT_SETTINGS[section] as unknown as Record<string, unknown>;
    const changed = Object.entries(settings[section]).filter(([k, v]) => JSON.stringify(base[k]) !== JSON.stringify(v));
    if (changed.length) diff[section] = Object.fromEntries(changed);
  }
  return diff;
}

export function encodeState(state: SharedState): string {
  const params = new URLSearchParams();
  if (state.lesson) {
    params.set('lesson', state.lesson);
    params.set('step', String((state.step ?? 0) + 1));
  }
  if (state.prompt !== undefined) params.set('prompt', state.prompt);
  if (state.settings) {
    const diff = settingsDiff(state.settings);
    if (Object.keys(diff).length) params.set('settings', JSON.stringify(diff));
  }
  if (state.knn !== undefined) params.set('knn', state.knn ? '1' : '0');
  if (state.datastore) params.set('datastore', state.datastore);
  return params.toString();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a link's state. A hand-edited or truncated link must not break the page: each value of a
 * wrong type is dropped and the default stands.
 */
export function decodeState(search: string): SharedState {
  const params = new URLSearchParams(search);
  const state: SharedState = {};
  const prompt = params.get('prompt');
  if (prompt !== null) state.prompt = prompt;
  const raw = params.get('settings');
  if (raw !== null) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (isRecord(parsed)) {
        const partial: Record<string, Record<string, unknown>> = {};
        for (const section of SECTIONS) {
          const values = parsed[section];
          if (!isRecord(values)) continue;
          const base = DEFAULT_SETTINGS[section] as unknown as Record<string, unknown>;
          // Same JSON type as the default's (retrievalStep's default null takes a number).
          partial[section] = Object.fromEntries(
            Object.entries(values).filter(([k, v]) => k in base && (typeof v === typeof base[k] || (base[k] === null && typeof v === 'number'))),
          );
        }
        state.settings = mergeSettings(partial as Parameters<typeof mergeSettings>[0]);
      }
    } catch {
      // not JSON: defaults
    }
  }
  const knn = params.get('knn');
  if (knn === '1' || knn === '0') state.knn = knn === '1';
  const datastore = params.get('datastore');
  if (datastore) state.datastore = datastore;
  const lesson = params.get('lesson');
  if (lesson) {
    state.lesson = lesson;
    const step = Number(params.get('step'));
    state.step = Number.isInteger(step) && step >= 1 ? step - 1 : 0;
  }
  return state;
}
