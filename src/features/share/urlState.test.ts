import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, mergeSettings } from '../compare/settings';
import { decodeState, encodeState, withState } from './urlState';

describe('shared link state', () => {
  it('round-trips prompt, changed settings, columns, datastore and lesson step', () => {
    const settings = mergeSettings({ decoding: { strategy: 'greedy', maxTokens: 20 }, retro: { retrievalStep: 4 }, icralm: { enabled: true } });
    const query = encodeState({ prompt: 'The ship was launched in', settings, knn: true, datastore: 'squad-v2-paragraphs', lesson: 'when', step: 1 });
    expect(decodeState(query)).toEqual({ prompt: 'The ship was launched in', settings, knn: true, datastore: 'squad-v2-paragraphs', lesson: 'when', step: 1 });
  });

  it('writes only the settings that differ from the defaults', () => {
    expect(encodeState({ settings: DEFAULT_SETTINGS })).toBe('');
    const query = encodeState({ settings: mergeSettings({ decoding: { seed: 7 } }) });
    expect(JSON.parse(new URLSearchParams(query).get('settings')!)).toEqual({ decoding: { seed: 7 } });
  });

  it('drops values of the wrong type and unknown keys instead of failing', () => {
    const state = decodeState('?settings=' + encodeURIComponent(JSON.stringify({ decoding: { maxTokens: 'many', seed: 3, bogus: 1 }, retro: 5 })) + '&knn=maybe&step=x&lesson=a');
    expect(state.settings).toEqual(mergeSettings({ decoding: { seed: 3 } }));
    expect(state.knn).toBeUndefined();
    expect(state.step).toBe(0);
    expect(decodeState('?settings=%7Bnot-json').settings).toBeUndefined();
  });
});

describe('withState', () => {
  it('keeps parameters it does not own and replaces the ones it does', () => {
    expect(withState('?backend=wasm&prompt=old&step=3', { prompt: 'new' })).toBe('?backend=wasm&prompt=new');
    expect(withState('?prompt=old', {})).toBe('');
  });
});
