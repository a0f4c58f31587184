/**
 * RetoMaton's pointers (Alon et al. 2022, "Neuro-Symbolic Language Modeling with Automaton-augmented
 * Retrieval"), in their simplest form. A kNN-LM datastore keeps its entries in text order: entry i
 * is the context up to stream position i, its value the token after it, and entry i + 1 the context
 * one token later. So when the model writes token y after retrieving neighbours N, every n in N whose
 * value is y points to n + 1: a place in the datastore whose text went on exactly as the model's
 * did. If at least `minPointers` such pointers survive, they are the next step's neighbours (with
 * their exact distances to the new key) and the search is skipped; otherwise the model searches.
 * (The paper also clusters entries to keep more pointers alive; RetroLab follows them one to one.)
 */
import type { KnnDatastore } from './datastore';
import type { KnnSearchResult } from './types';

/** The entries after those of `neighbours` whose value is `token` (pointers that survive writing it). */
export function followPointers(neighbours: ArrayLike<number>, values: ArrayLike<number>, token: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < neighbours.length; i++) {
    const entry = neighbours[i]!;
    if (values[entry] === token && entry + 1 < values.length) out.push(entry + 1);
  }
  return Int32Array.from(out);
}

/** The surviving pointers as a search result: their exact distances to `key`, nearest first, at most k. */
export function pointerNeighbours(datastore: KnnDatastore, key: Float32Array, pointers: Int32Array, k: number): KnnSearchResult {
  const distances = datastore.distancesTo(key, pointers);
  const order = Array.from(pointers.keys()).sort((a, b) => distances[a]! - distances[b]! || pointers[a]! - pointers[b]!).slice(0, k);
  return { ids: Int32Array.from(order, (i) => pointers[i]!), distances: Float32Array.from(order, (i) => distances[i]!) };
}
