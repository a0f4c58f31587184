/**
 * Neighbours for the perplexity eval's windows (docs/manifest.md): `real` retrieves k neighbours
 * per complete chunk of each window, `random` draws them uniformly from the datastore, `leakage`
 * retrieves from a datastore that also holds the evaluated split as one document.
 */
import type { Datastore } from '../datastore/datastore';
import { neighbourRows } from '../models/neighbours';
import type { MeanEmbedder } from '../retrieval/embedder';
import { chunkDocuments } from '../retrieval/chunker';
import { FlatIndex } from '../retrieval/flat';
import { Rng } from '../generate/rng';
import type { Window, WindowNeighbours } from './perplexity';
import type { KeyModel } from '../knnlm/build';
import type { KnnDatastore } from '../knnlm/datastore';
import { alignedNeighbourIds, randomEntries, searchAligned } from '../knnlm/aligned';

export type NeighbourMode = 'real' | 'random' | 'leakage';

export interface ScoredRow {
  tokenIds: ArrayLike<number>;
  /** cosine distance, smaller is nearer */
  distance: number;
}

/** What the eval needs from a datastore (in Node a Datastore in memory; in the app the retrieval worker, asynchronously). */
export interface EvalStore {
  nearest(query: ArrayLike<number>, k: number): ScoredRow[] | Promise<ScoredRow[]>;
  random(k: number, rng: () => number): ArrayLike<number>[];
}

export function datastoreEvalStore(datastore: Datastore): EvalStore {
  return {
    nearest: (query, k) => datastore.retrieve(query, k),
    random: (k, rng) => datastore.randomNeighbours(k, rng).map((n) => n.tokenIds),
  };
}

/**
 * The evaluated token stream as one extra document, searched next to the datastore; results are
 * merged by distance, which is what one datastore holding both would return.
 */
export function withLeakedStream(base: EvalStore, stream: ArrayLike<number>, embedder: MeanEmbedder, chunk: number, neighbourLen: number, eotId: number): EvalStore {
  const rows = chunkDocuments([stream], { chunkSize: chunk, neighbourLen, eotId }, embedder.vocabSize);
  const vectors = new Float32Array(rows.count * embedder.dim);
  embedder.embedRows(rows.tokens, neighbourLen, rows.lengths, 0, rows.count, vectors);
  const index = FlatIndex.build(vectors, embedder.dim);
  return {
    async nearest(query, k) {
      const fromBase = await base.nearest(query, k);
      const { ids, distances } = index.search(embedder.embed(query), k);
      const fromStream = Array.from(ids, (id, i): ScoredRow => ({
        tokenIds: rows.tokens.subarray(id * neighbourLen, (id + 1) * neighbourLen),
        distance: distances[i]!,
      }));
      return [...fromStream, ...fromBase].sort((a, b) => a.distance - b.distance).slice(0, k);
    },
    random: (k, rng) => base.random(k, rng),
  };
}

export interface WindowNeighbourOptions {
  mode: NeighbourMode;
  chunk: number;
  /** neighbours used (<= K) */
  k: number;
  /** the encoder's neighbours per chunk (manifest `neighbours`) */
  K: number;
  neighbourLen: number;
  eotId: number;
  seed?: number;
}

/**
 * Neighbour ids for every complete chunk of a window, as RetroModel.forwardBatch takes them.
 * Retrievals are cached by stream position: with a stride that is a multiple of the chunk, the
 * overlapping windows share their chunks, so each stream chunk is searched once.
 */
export function windowNeighbours(store: EvalStore, options: WindowNeighbourOptions): WindowNeighbours {
  const { mode, chunk: C, k, K, neighbourLen: L, eotId } = options;
  const rng = new Rng(options.seed ?? 0);
  const cache = new Map<number, Int32Array>();
  return async (inputs: Int32Array, window: Window) => {
    const U = Math.floor(inputs.length / C);
    const out = new Int32Array(U * K * L);
    for (let u = 0; u < U; u++) {
      const query = inputs.subarray(u * C, (u + 1) * C);
      let rows: Int32Array | undefined;
      if (mode === 'random') {
        rows = neighbourRows(store.random(k, () => rng.next()).map((ids) => ({ tokenIds: Array.from(ids) })), k, K, L, eotId);
      } else {
        const key = window.start + u * C;
        rows = cache.get(key);
        if (!rows) {
          rows = neighbourRows((await store.nearest(query, k)).map((n) => ({ tokenIds: Array.from(n.tokenIds) })), k, K, L, eotId);
          cache.set(key, rows);
        }
      }
      out.set(rows, u * K * L);
    }
    return out;
  };
}

export interface AlignedWindowNeighbourOptions extends WindowNeighbourOptions {
  /** the GPT whose knn_key is the query (manifest `retrieval.query_model`) */
  queryModel: KeyModel;
  /** `real`: the train datastore; `leakage`: it and the evaluated split, searched together; `random` draws from the first */
  stores: readonly KnnDatastore[];
}

/**
 * Token-aligned neighbours (src/core/knnlm/aligned.ts) for every complete chunk of a window. The
 * query GPT reads the same window RETRO reads, so chunk u's query is the key its last token has in
 * this window: what the app computes while generating, not a key from some other context.
 */
export function alignedWindowNeighbours(options: AlignedWindowNeighbourOptions): WindowNeighbours {
  const { mode, chunk: C, k, K, neighbourLen: L, eotId, queryModel, stores } = options;
  const keyDim = queryModel.manifest.hyperparameters.d_model;
  if (stores.length === 0) throw new RangeError('token-aligned neighbours need a kNN-LM datastore');
  const rng = new Rng(options.seed ?? 0);
  const views = (matches: readonly { store: number; entry: number }[]) =>
    matches.map((m) => ({ tokenIds: Array.from(alignedNeighbourIds(stores[m.store]!.section.values, m.entry, C)) }));
  return async (inputs: Int32Array, _window: Window) => {
    const U = Math.floor(inputs.length / C);
    const out = new Int32Array(U * K * L);
    if (U === 0) return out;
    if (mode === 'random') {
      for (let u = 0; u < U; u++) {
        const entries = randomEntries(stores[0]!, k, () => rng.next());
        out.set(neighbourRows(views(entries.map((entry) => ({ store: 0, entry }))), k, K, L, eotId), u * K * L);
      }
      return out;
    }
    const keys = (await queryModel.start(Array.from(inputs.subarray(0, U * C)), { allLogits: true })).knnKeys;
    if (!keys) throw new Error(`${queryModel.manifest.id} returned no knn_key: the query model must be a GPT with kNN-LM keys`);
    for (let u = 0; u < U; u++) {
      const t = (u + 1) * C - 1;
      const matches = searchAligned(stores, keys.subarray(t * keyDim, (t + 1) * keyDim), k);
      out.set(neighbourRows(views(matches), k, K, L, eotId), u * K * L);
    }
    return out;
  };
}
