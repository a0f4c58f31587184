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
import type { NeighbourSource, RetrievedNeighbour } from '../models/neighbours';
import type { LanguageModel, StepOutput } from '../models/types';
import type { KnnDatastore, KnnEntryText } from './datastore';
import { MAX_KNN_K } from './types';
import { Rng, seedOfIds } from '../generate/rng';

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

/** Up to this many neighbours a token-aligned search scans fewer IVF lists (alignedNprobe). */
export const FEW_NEIGHBOURS = 8;

/**
 * IVF lists a token-aligned search for k neighbours scans: a quarter of the datastore's default
 * (16 of the built-in 2,048 lists instead of 64) when k <= FEW_NEIGHBOURS, at least 8; undefined
 * (the default) otherwise. RETRO asks for k = 2, and the top 2 are the keys nearest the query,
 * which sit in its nearest lists: on 400 held-out WikiText-2 test keys, recall@2 against the exact
 * scan is 0.9975 at 16 lists and 1 at 64, and the search takes 0.68 ms instead of 1.77
 * (`npm run bench:ivf -- <file> --k 2 --nprobe 4,8,16,32,64 --model ... --split-file ...`,
 * docs/benchmarks.md). A wider search (a kNN-LM's k = 1,024, or RETRO's widening past excluded
 * documents) keeps the default.
 */
export function alignedNprobe(datastore: KnnDatastore, k: number): number | undefined {
  if (datastore.nprobe === 0 || k > FEW_NEIGHBOURS) return undefined;
  return Math.min(datastore.nprobe, Math.max(8, Math.ceil(datastore.nprobe / 4)));
}

/**
 * The k nearest entries to a GPT key over several datastores (searched one by one, merged by
 * distance): what one datastore holding all of them would return, up to ties.
 */
export function searchAligned(stores: readonly KnnDatastore[], key: Float32Array, k: number): AlignedMatch[] {
  const matches: AlignedMatch[] = [];
  stores.forEach((datastore, store) => {
    const nprobe = alignedNprobe(datastore, k);
    const { ids, distances } = datastore.search(key, k, nprobe === undefined ? {} : { nprobe });
    for (let i = 0; i < ids.length; i++) matches.push({ store, entry: ids[i]!, distance: distances[i]! });
  });
  matches.sort((a, b) => a.distance - b.distance || a.store - b.store || a.entry - b.entry);
  return matches.slice(0, k);
}

/** k entries drawn uniformly from a datastore (RETRO's random-neighbour control). */
export function randomEntries(datastore: KnnDatastore, k: number, rng: () => number): number[] {
  return Array.from({ length: k }, () => Math.min(datastore.size - 1, Math.floor(rng() * datastore.size)));
}

/** What `queryKey` needs of the query GPT (GptModel; `extend` feeds several tokens in one call). */
export type QueryGpt = Pick<LanguageModel, 'manifest' | 'start' | 'next' | 'sequence'> & { extend?: (tokenIds: readonly number[]) => Promise<StepOutput> };

/**
 * The GPT's knn_key at the last token of `context` (RETRO's tokens up to a chunk's last one).
 * When the GPT's current sequence is a proper prefix of `context` within its window (RETRO asking
 * again one chunk later), only the new tokens are fed on the KV cache, in one call where the GPT
 * can (`extend`), else as C decode steps: in place of a prefill of up to the whole context. Any sequence it holds is a valid cache for itself,
 * so whoever used the GPT last, the key is the one a prefill would give (up to float rounding).
 */
export async function queryKey(gpt: QueryGpt, context: readonly number[]): Promise<Float32Array> {
  if (context.length === 0) throw new RangeError('a query needs at least one token');
  const held = gpt.sequence;
  const window = gpt.manifest.hyperparameters.context;
  const extendsHeld = held.length > 0 && held.length < context.length && context.length <= window && held.every((t, i) => t === context[i]);
  let out: StepOutput | undefined;
  if (extendsHeld && gpt.extend) {
    out = await gpt.extend(context.slice(held.length));
  } else if (extendsHeld) {
    for (let i = held.length; i < context.length; i++) out = await gpt.next(context[i]!);
  } else {
    out = await gpt.start([...context]);
  }
  const d = gpt.manifest.hyperparameters.d_model;
  const keys = out!.knnKeys;
  if (!keys || keys.length < d) throw new Error(`${gpt.manifest.id} returned no knn_key: the query model must be a GPT with kNN-LM keys`);
  return keys.subarray(keys.length - d);
}

/**
 * The random-neighbour control in the app: k entries drawn from a generator seeded by the query's
 * tokens (the same prompt draws the same places again), skipping excluded documents. Their distance
 * is NaN: no search ran, so there is none to show.
 */
function randomKept(datastore: KnnDatastore, k: number, context: readonly number[], excluded: ReadonlySet<number>, chunk: number): AlignedNeighbour[] {
  // The sampler's generator, seeded with the FNV-1a hash of the query ids.
  const rng = new Rng(seedOfIds(context));
  const kept: AlignedNeighbour[] = [];
  for (let tries = 0; kept.length < k && tries < 64 * k; tries++) {
    const [entry] = randomEntries(datastore, 1, () => rng.next());
    const place = datastore.entryText(entry!, 0, 0);
    if (excluded.has(place.docId)) continue;
    kept.push({ match: { store: 0, entry: entry!, distance: Number.NaN }, place, tokenIds: Array.from(alignedNeighbourIds(datastore.section.values, entry!, chunk)) });
  }
  return kept;
}

/** One neighbour a token-aligned search kept: the match, where it sits, and the neighbour's ids. */
export interface AlignedNeighbour {
  match: AlignedMatch;
  place: KnnEntryText;
  tokenIds: number[];
}

export interface AlignedSourceOptions {
  /** the GPT whose knn_key is the query (the same weights the datastore was keyed with), read when a retrieval runs */
  queryGpt: () => QueryGpt;
  /** the datastore searched, or null when none is loaded (the source then throws `missing`) */
  datastore: () => KnnDatastore | null;
  /** RETRO's chunk size (read when a retrieval runs: the worker learns it when the models load) */
  chunk: () => number;
  missing?: string;
  /** every retrieval's kept neighbours, e.g. for the neighbour panel */
  onRetrieved?: (query: readonly number[], kept: readonly AlignedNeighbour[], latencyMs: number) => void;
}

/**
 * RETRO's NeighbourSource for token-aligned retrieval, the same in the inference worker and the
 * Node tools: the query GPT's key at the chunk's last token (over the context the model passes),
 * searched in the datastore; excluded documents are filtered after the search, which widens until
 * k neighbours pass or nothing is left.
 */
export function alignedNeighbourSource(options: AlignedSourceOptions): NeighbourSource {
  return async (chunkTokenIds, k, query) => {
    const datastore = options.datastore();
    if (!datastore) throw new Error(options.missing ?? 'token-aligned RETRO needs a kNN-LM datastore');
    const t0 = performance.now();
    const context = query.context && query.context.length > 0 ? query.context : chunkTokenIds;
    const excluded = new Set(query.excludeDocIds ?? []);
    if (query.random) {
      const kept = randomKept(datastore, k, context, excluded, options.chunk());
      options.onRetrieved?.(chunkTokenIds, kept, performance.now() - t0);
      return kept.map((n): RetrievedNeighbour => ({ tokenIds: n.tokenIds, distance: n.match.distance, title: n.place.title, docId: n.place.docId }));
    }
    const key = await queryKey(options.queryGpt(), context);
    const widest = Math.min(datastore.size, MAX_KNN_K);
    let kept: AlignedNeighbour[] = [];
    for (let want = k; ; want = Math.min(widest, want * 8)) {
      kept = [];
      for (const match of searchAligned([datastore], key, want)) {
        const place = datastore.entryText(match.entry, 0, 0);
        if (excluded.has(place.docId)) continue;
        kept.push({ match, place, tokenIds: Array.from(alignedNeighbourIds(datastore.section.values, match.entry, options.chunk())) });
        if (kept.length === k) break;
      }
      if (kept.length === k || want >= widest) break;
    }
    options.onRetrieved?.(chunkTokenIds, kept, performance.now() - t0);
    return kept.map((n): RetrievedNeighbour => ({ tokenIds: n.tokenIds, distance: n.match.distance, title: n.place.title, docId: n.place.docId }));
  };
}
