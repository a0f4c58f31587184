/**
 * Which stored kNN-LM datastore serves the active datastore: the retrieval engine decides it from its
 * catalogue (RetrievalState.knn) and the inference engine loads what it says (loadKnnFor).
 */
import type { DatastoreInfo, KnnDefaultInfo, KnnSourceInfo, KnnSources } from '../../protocol/api';

export function knnSources(datastores: readonly DatastoreInfo[], activeId: string | null, knnDefault: KnnDefaultInfo | null): KnnSources {
  const active = datastores.find((d) => d.id === activeId);
  if (active?.knnlm) {
    const own: KnnSourceInfo = { id: active.id, stored: true, bytes: active.bytes, name: active.name };
    return { knnlm: own, retro: own };
  }
  const d = knnDefault ? { id: knnDefault.id, stored: knnDefault.stored, bytes: knnDefault.bytes, name: knnDefault.name } : null;
  // The built-in keys serve RETRO only for the text they were made from.
  return { knnlm: d, retro: d && active && knnDefault!.baseId === active.id ? d : null };
}
