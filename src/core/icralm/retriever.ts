/**
 * The top passage from a chunk datastore (the one RETRO reads: same embedder, same index), for the
 * Node eval and tests. The browser goes through the retrieval worker's NeighbourServer instead.
 */
import type { Datastore } from '../datastore/datastore';
import { trimPadding } from './plan';
import type { PassageRetriever, RetrievedPassage } from './types';

export interface DatastoreRetrieverOptions {
  eotId: number;
  excludeDocIds?: readonly number[];
  /** Also decode the passage's text (display; the eval does not need it). */
  withText?: boolean;
}

/** The top `k` passages per query (REPLUG's retriever), nearest first, from the same datastore and index. */
export function datastorePassagesRetriever(datastore: Datastore, options: DatastoreRetrieverOptions): (query: readonly number[], k: number) => Promise<RetrievedPassage[]> {
  const retrieveOptions = options.excludeDocIds?.length ? { excludeDocIds: options.excludeDocIds } : {};
  return async (query, k) => {
    const { ids, distances } = datastore.search(query, k, retrieveOptions);
    return Array.from(ids, (chunkIndex, i) => ({
      tokenIds: trimPadding(datastore.neighbourTokens(chunkIndex), options.eotId),
      chunkIndex,
      docId: datastore.shard.chunkDocs[chunkIndex]!,
      distance: distances[i]!,
    }));
  };
}

export function datastoreRetriever(datastore: Datastore, options: DatastoreRetrieverOptions): PassageRetriever {
  const retrieveOptions = options.excludeDocIds?.length ? { excludeDocIds: options.excludeDocIds } : {};
  const top = (query: readonly number[]): RetrievedPassage | null => {
    const { ids, distances } = datastore.search(query, 1, retrieveOptions);
    if (ids.length === 0) return null;
    const chunkIndex = ids[0]!;
    const passage: RetrievedPassage = {
      tokenIds: trimPadding(datastore.neighbourTokens(chunkIndex), options.eotId),
      chunkIndex,
      docId: datastore.shard.chunkDocs[chunkIndex]!,
      distance: distances[0]!,
    };
    if (!options.withText) return passage;
    const n = datastore.neighbour(chunkIndex, distances[0]!);
    return { ...passage, title: n.title, text: n.text, continuationText: n.continuationText };
  };
  return async (queries) => queries.map(top);
}
