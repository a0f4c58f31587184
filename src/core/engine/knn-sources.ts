/**
 * Which stored kNN-LM datastore serves the active datastore: a decision on the retrieval state
 * alone, shared by the client (which asks the inference engine to load it) and the Node tools.
 */
import type { RetrievalState } from '../../protocol/api';

/** The kNN-LM datastore for the active one: its own keys, else the built-in WikiText-2 one (stored or offered). */
export function knnSource(retrieval: RetrievalState | null): { id: string; stored: boolean; bytes: number; name: string } | null {
  if (!retrieval) return null;
  const active = retrieval.datastores.find((d) => d.id === retrieval.activeId);
  if (active?.knnlm) return { id: active.id, stored: true, bytes: active.bytes, name: active.name };
  const d = retrieval.knnDefault;
  return d ? { id: d.id, stored: d.stored, bytes: d.bytes, name: d.name } : null;
}

/**
 * The kNN-LM keys of the active datastore itself, for token-aligned RETRO: its own, or for the built-in
 * WikiText-2 train datastore the built-in kNN-LM datastore made from the same articles. Unlike
 * knnSource, never another text's keys: RETRO's neighbours must come from the datastore the user picked.
 */
export function alignedKeySource(retrieval: RetrievalState | null): { id: string; stored: boolean; bytes: number; name: string } | null {
  if (!retrieval) return null;
  const active = retrieval.datastores.find((d) => d.id === retrieval.activeId);
  if (active?.knnlm) return { id: active.id, stored: true, bytes: active.bytes, name: active.name };
  const d = retrieval.knnDefault;
  return d && active && d.baseId === active.id ? { id: d.id, stored: d.stored, bytes: d.bytes, name: d.name } : null;
}

