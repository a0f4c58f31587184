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
