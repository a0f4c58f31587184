import { describe, expect, it } from 'vitest';
import type { DatastoreInfo, KnnDefaultInfo } from '../../protocol/api';
import { knnSources } from './knn-sources';

describe('knnSources', () => {
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
  const datastores = [store('plain', false), store('keyed', true), store('other', false)];
  const builtIn = (stored: boolean | null): KnnDefaultInfo | null =>
    stored === null ? null : { id: 'wt2-knn', name: 'WikiText-2 kNN', description: '', bytes: 2e8, knnlm: { entries: 10, dim: 64, model: 'gpt-wt2', decoderSha256: 'x' }, baseId: 'plain', stored };
  const sources = (activeId: string | null, stored: boolean | null) => knnSources(datastores, activeId, builtIn(stored));

  it('prefers the active datastore’s own keys, for both uses', () => {
    expect(sources('keyed', true)).toMatchObject({ knnlm: { id: 'keyed', stored: true }, retro: { id: 'keyed' } });
  });

  it('falls back to the built-in datastore for kNN-LM, stored or only offered, else none', () => {
    expect(sources('plain', false).knnlm).toMatchObject({ id: 'wt2-knn', stored: false, bytes: 2e8 });
    expect(sources(null, true).knnlm).toMatchObject({ id: 'wt2-knn', stored: true });
    expect(sources('plain', null)).toEqual({ knnlm: null, retro: null });
  });

  it('gives token-aligned RETRO only keys of the active datastore’s own text', () => {
    // the built-in kNN-LM datastore holds the same articles as its chunk datastore 'plain'
    expect(sources('plain', false).retro).toMatchObject({ id: 'wt2-knn', stored: false });
    // another text: kNN-LM may fall back to the built-in keys, RETRO must not retrieve from them
    expect(sources('other', true).knnlm).toMatchObject({ id: 'wt2-knn' });
    expect(sources('other', true).retro).toBeNull();
    expect(sources(null, true).retro).toBeNull();
  });
});
