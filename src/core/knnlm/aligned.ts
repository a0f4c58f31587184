/**
 * RETRO's token-aligned neighbours (docs/retro-training.md, "Token-aligned neighbours"), read from
 * kNN-LM datastores.
 *
 * A kNN-LM datastore holds the GPT's knn_key for every token p of its stream, so it is also a
 * datastore of every (overlapping) chunk: the query for RETRO chunk u is the same GPT's key at the
 * chunk's last token, and a match at entry p gives the `chunk` tokens ending at p followed by the
 * `chunk` tokens after it. The continuation then starts exactly where the matched context goes on,
 * which is what RETRO's chunked cross-attention can copy from; chunk retrieval by a bag-of-tokens
 * embedding rarely lines up that way (measured in docs/retro-training.md).
 */
import type { LanguageModel, StepOutput } from '../models/types';
import type { KnnDatastore } from './datastore';

export interface AlignedMatch {
  /** which of the searched datastores */
  store: number;
  /** the kNN-LM entry: key at stream position `entry`, value = token entry + 1 */
  entry: number;
  /** squared L2 distance between the query and the stored key */
  distance: number;
}

/**
 * Stream tokens entry-C+1 .. entry+C of a datastore (its values shifted by one: value i is stream
 * token i+1), moved inside the stream when the span would cross either end, as the training
 * neighbours are (models/retrolab/aligned.py clips the match the same way).
 */
export function alignedNeighbourIds(values: ArrayLike<number>, entry: number, chunk: number): Int32Array {
  const length = Math.min(2 * chunk, values.length);
  const first = Math.max(0, Math.min(entry - chunk, values.length - length));
  const ids = new Int32Array(length);
  for (let i = 0; i < length; i++) ids[i] = values[first + i]!;
  return ids;
}

/**
 * The k nearest entries to a GPT key over several datastores (searched one by one, merged by
 * distance): what one datastore holding all of them would return, up to ties.
 */
export function searchAligned(stores: readonly KnnDatastore[], key: Float32Array, k: number): AlignedMatch[] {
  const matches: AlignedMatch[] = [];
  stores.forEach((datastore, store) => {
    const { ids, distances } = datastore.search(key, k);
    for (let i = 0; i < ids.length; i++) matches.push({ store, entry: ids[i]!, distance: distances[i]! });
  });
  matches.sort((a, b) => a.distance - b.distance || a.store - b.store || a.entry - b.entry);
  return matches.slice(0, k);
}

/** k entries drawn uniformly from a datastore (RETRO's random-neighbour control). */
export function randomEntries(datastore: KnnDatastore, k: number, rng: () => number): number[] {
  return Array.from({ length: k }, () => Math.min(datastore.size - 1, Math.floor(rng() * datastore.size)));
}

/** What `queryKey` needs of the query GPT (GptModel). */
export type QueryGpt = Pick<LanguageModel, 'manifest' | 'start' | 'next' | 'sequence'>;

/**
 * The GPT's knn_key at the last token of `context` (RETRO's tokens up to a chunk's last one).
 * When the GPT's current sequence is a proper prefix of `context` within its window (RETRO asking
 * again one chunk later), only the new tokens are fed, as decode steps on the KV cache: C steps in
 * place of a prefill of up to the whole context. Any sequence it holds is a valid cache for itself,
 * so whoever used the GPT last, the key is the one a prefill would give (up to float rounding).
 */
export async function queryKey(gpt: QueryGpt, context: readonly number[]): Promise<Float32Array> {
  if (context.length === 0) throw new RangeError('a query needs at least one token');
  const held = gpt.sequence;
  const window = gpt.manifest.hyperparameters.context;
  const extendsHeld = held.length > 0 && held.length < context.length && context.length <= window && held.every((t, i) => t === context[i]);
  let out: StepOutput | undefined;
  if (extendsHeld) {
    for (let i = held.length; i < context.length; i++) out = await gpt.next(context[i]!);
  } else {
    out = await gpt.start([...context]);
  }
  const d = gpt.manifest.hyperparameters.d_model;
  const keys = out!.knnKeys;
  if (!keys || keys.length < d) throw new Error(`${gpt.manifest.id} returned no knn_key: the query model must be a GPT with kNN-LM keys`);
  return keys.subarray(keys.length - d);
}
