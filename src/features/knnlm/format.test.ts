import { describe, expect, it } from 'vitest';
import { alignedKeySource, knnSource } from '../../client/client';
import type { DatastoreInfo, RetrievalState } from '../../client';
import { displayToken, explainPosition, formatProbability } from './format';

describe('token distribution formatting', () => {
  it('makes spaces and newlines of a token visible', () => {
    expect(displayToken(' American')).toBe('␣American');
    expect(displayToken('\n')).toBe('⏎');
    expect(displayToken('')).toBe('∅');
    expect(displayToken('a b')).toBe('a b');
  });

  it('prints probabilities with three decimals, tiny ones in exponent form', () => {
    expect(formatProbability(0.25)).toBe('0.250');
    expect(formatProbability(1)).toBe('1.000');
    expect(formatProbability(0)).toBe('0');
    expect(formatProbability(5.9e-4)).toBe('5.9e-4');
    expect(formatProbability(Number.NaN)).toBe('–');
  });

  it('maps generated token j to the position whose distribution produced it', () => {
    // prompt of 5 tokens at positions 0..4: the first generated token came from the distribution after position 4.
    expect(explainPosition(0, 5, 0)).toBe(4);
    expect(explainPosition(0, 5, 3)).toBe(7);
    expect(explainPosition(2, 5, 0)).toBe(6);
  });
});

describe('knnSource', () => {
  const store = (id: string, knn: boolean): DatastoreInfo => ({
    id,
    name: id,
    origin: 'custom',
    bytes: 100,
    chunks: 1,
    documents: 1,
    createdAt: 0,
    ...(knn ? { knnlm: { entries: 10, dim: 64, model: 'gpt-wt2', decoderSha256: 'x' } } : {}),
  });
  const state = (activeId: string | null, stored: boolean | null): RetrievalState => ({
    datastores: [store('plain', false), store('keyed', true), store('other', false)],
    activeId,
    indexKind: 'flat',
    storage: { usage: null, quota: null, persisted: null },
    missingDefaults: [],
    notices: [],
    knnDefault:
      stored === null
        ? null
        : { id: 'wt2-knn', name: 'WikiText-2 kNN', description: '', bytes: 2e8, knnlm: { entries: 10, dim: 64, model: 'gpt-wt2', decoderSha256: 'x' }, baseId: 'plain', stored },
  });

  it('prefers the active datastore’s own keys', () => {
    expect(knnSource(state('keyed', true))).toMatchObject({ id: 'keyed', stored: true });
  });

  it('falls back to the built-in datastore, stored or only offered, else none', () => {
    expect(knnSource(state('plain', false))).toMatchObject({ id: 'wt2-knn', stored: false, bytes: 2e8 });
    expect(knnSource(state(null, true))).toMatchObject({ id: 'wt2-knn', stored: true });
    expect(knnSource(state('plain', null))).toBeNull();
    expect(knnSource(null)).toBeNull();
  });

  it('gives token-aligned RETRO only keys of the active datastore’s own text', () => {
    expect(alignedKeySource(state('keyed', true))).toMatchObject({ id: 'keyed' });
    // the built-in kNN-LM datastore holds the same articles as its chunk datastore 'plain'
    expect(alignedKeySource(state('plain', false))).toMatchObject({ id: 'wt2-knn', stored: false });
    // another text: kNN-LM may fall back to the built-in keys, RETRO must not retrieve from them
    expect(knnSource(state('other', true))).toMatchObject({ id: 'wt2-knn' });
    expect(alignedKeySource(state('other', true))).toBeNull();
    expect(alignedKeySource(state(null, true))).toBeNull();
  });
});
