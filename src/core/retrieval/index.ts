/**
 * Retrieval: chunker, embedder, and vector indexes behind one VectorIndex interface.
 * Backends: `flat` (flat.ts: exact int8 scan + float re-ranking, RetroLab's own) and `voy`
 * (voy.ts: voy-search's WASM k-d tree, small datastores only).
 * Beside them, the sparse retriever: BM25 over the chunks' words (bm25.ts, minisearch).
 */
export * from './vector-index';
export * from './chunker';
export * from './embedder';
export * from './flat';
export * from './voy';
export * from './bm25';
