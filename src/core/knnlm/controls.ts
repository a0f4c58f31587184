/**
 * The kNN-LM's experiment controls (docs/controls.md).
 *
 * Random neighbours: k entries drawn uniformly from the datastore, seeded by the context (the same
 * text draws the same entries), with their exact distances to the query key, nearest first. p_kNN =
 * softmax(−d / T) over them is then a distribution over the values of k random places of the text
 * (close to a k-sample of the unigram distribution), so the control measures what mixing *some*
 * datastore distribution in does, against what the nearest entries' distribution does.
 *
 * Leakage: entries of excluded documents are never neighbours. Entries know their document through
 * their text offsets (KnnDatastore.entryDocument); a datastore without them cannot exclude, and says so.
 */
import type { PromptSources } from '../../protocol/api';
import { findPromptSources } from '../datastore/prompt-sources';
import { Rng } from '../generate/rng';
import type { KnnDatastore, KnnSearchOptions } from './datastore';
import { MAX_KNN_K, type KnnSearchResult } from './types';

/** Draws per wanted entry before giving up on finding ones outside the excluded documents. */
const TRIES_PER_ENTRY = 64;

/** k random entries (none of `excluded`'s documents) with their exact distances to `key`, nearest first. */
export function randomKnnNeighbours(datastore: KnnDatastore, key: Float32Array, k: number, seed: number, excluded?: ReadonlySet<number>): KnnSearchResult {
  const rng = new Rng(seed);
  const entries: number[] = [];
  const n = datastore.size;
  for (let tries = 0; entries.length < k && tries < TRIES_PER_ENTRY * k; tries++) {
    const entry = Math.min(n - 1, Math.floor(rng.next() * n));
    if (excluded && excluded.size > 0 && excluded.has(datastore.entryDocument(entry))) continue;
    entries.push(entry);
  }
  const distances = datastore.distancesTo(key, entries);
  const order = Array.from(entries.keys()).sort((a, b) => distances[a]! - distances[b]! || entries[a]! - entries[b]!);
  return { ids: Int32Array.from(order, (i) => entries[i]!), distances: Float32Array.from(order, (i) => distances[i]!) };
}

/**
 * The k nearest entries outside the excluded documents: the search widens (×8, up to MAX_KNN_K)
 * until k pass; when fewer pass at the widest, those are the neighbours.
 */
export function searchExcluding(datastore: KnnDatastore, key: Float32Array, k: number, excluded: ReadonlySet<number>, options: KnnSearchOptions = {}): KnnSearchResult {
  if (excluded.size === 0) return datastore.search(key, k, options);
  const widest = Math.min(datastore.size, MAX_KNN_K);
  for (let want = Math.min(k, widest); ; want = Math.min(widest, want * 8)) {
    const { ids, distances } = datastore.search(key, want, options);
    const keep: number[] = [];
    for (let i = 0; i < ids.length && keep.length < k; i++) if (!excluded.has(datastore.entryDocument(ids[i]!))) keep.push(i);
    if (keep.length === k || want >= widest) return { ids: Int32Array.from(keep, (i) => ids[i]!), distances: Float32Array.from(keep, (i) => distances[i]!) };
  }
}

/** The documents of a kNN-LM datastore the prompt comes from, searched in its value stream (value i is stream token i + 1). */
export function knnPromptSources(datastore: KnnDatastore, promptIds: ArrayLike<number>): PromptSources {
  if (!datastore.knowsDocuments) return { known: false, documents: [], pieces: 0 };
  return findPromptSources(promptIds, datastore.section.values, (at) => datastore.entryDocument(at), (doc) => datastore.shard.titles[doc] ?? '');
}
