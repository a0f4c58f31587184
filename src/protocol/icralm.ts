import type { RetrieverKind } from './retrieval';

/** In-Context RALM's two settings (src/core/icralm/types.ts explains the protocol). */
export interface IcRalmSettings {
  /** s: retrieve every `stride` predicted tokens (paper default 4). */
  stride: number;
  /** l: the query is the last `queryLength` tokens (paper default 32). */
  queryLength: number;
  /** How the passage is found (default 'dense': the retrieval embedder, as RETRO). */
  retriever?: RetrieverKind;
}
