import type { NeighbourView } from '../../protocol/model';

/** A neighbour as a source may return it: bare token ids, or ids with display metadata. */
export interface RetrievedNeighbour {
  /** The retrieved chunk followed by its continuation (up to neighbour_len ids). */
  tokenIds: ArrayLike<number>;
  distance?: number;
  title?: string;
  text?: string;
  docId?: number;
}

export interface NeighbourQueryOptions {
  excludeDocIds?: readonly number[];
  /** The random-neighbour control: k places drawn at random (seeded by the query), not the nearest. */
  random?: boolean;
  /**
   * The tokens up to and including the query chunk's last one (left padding removed, at most the
   * context): what a source whose query is a model state reads (token-aligned retrieval, where the
   * query is the GPT's knn_key at that last token).
   */
  context?: readonly number[];
}

/**
 * Where RETRO gets neighbours: given a chunk's token ids, the k nearest neighbours, best first.
 * The data engineer's `Datastore.retrieve(chunk, k, { excludeDocIds })` fits this shape
 * (`(ids, k, o) => datastore.retrieve(ids, k, o)`); RETRO never depends on the datastore itself.
 */
export type NeighbourSource = (
  chunkTokenIds: number[],
  k: number,
  options: NeighbourQueryOptions,
) => Promise<readonly (RetrievedNeighbour | ArrayLike<number>)[]>;

export function toNeighbourView(n: RetrievedNeighbour | ArrayLike<number>): NeighbourView {
  if (isRetrieved(n)) {
    const view: NeighbourView = { tokenIds: Array.from(n.tokenIds) };
    if (n.distance !== undefined) view.distance = n.distance;
    if (n.title !== undefined) view.title = n.title;
    if (n.text !== undefined) view.text = n.text;
    if (n.docId !== undefined) view.docId = n.docId;
    return view;
  }
  return { tokenIds: Array.from(n) };
}

function isRetrieved(n: RetrievedNeighbour | ArrayLike<number>): n is RetrievedNeighbour {
  return typeof n === 'object' && n !== null && 'tokenIds' in n;
}

/**
 * The encoder input for one chunk: K rows of `length` ids.
 *
 * The graph's K is fixed by the export. Using k < K neighbours repeats the k retrieved rows
 * cyclically: chunked cross-attention is a softmax over all K*L keys with the same position bias
 * for every neighbour, so n identical copies of a neighbour give exactly the output of that
 * neighbour alone (every weight splits n ways over identical values). It is exact whenever k
 * divides K (always, for K = 2) and close otherwise. Padding with eot rows instead would add
 * neighbours made of end-of-text tokens, which the model does attend to. Rows shorter than
 * `length` are padded with eot (as the datastore pads a document's last chunk), longer ones cut.
 * With no neighbour at all the rows are all eot.
 */
export function neighbourRows(neighbours: readonly NeighbourView[], k: number, K: number, length: number, eotId: number): Int32Array {
  const rows = new Int32Array(K * length).fill(eotId);
  const used = neighbours.slice(0, Math.max(0, Math.min(k, K)));
  if (used.length === 0) return rows;
  for (let r = 0; r < K; r++) {
    const ids = used[r % used.length]!.tokenIds;
    const n = Math.min(length, ids.length);
    for (let i = 0; i < n; i++) rows[r * length + i] = ids[i]!;
  }
  return rows;
}
