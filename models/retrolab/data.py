"""Corpus, chunk and neighbour pipeline: cached steps from token ids to training neighbours.

Each step writes its output under the work directory and is skipped when that output exists.
The datastore rule matches the app's TypeScript builder: every document is cut into chunks of
C tokens from its first token; a neighbour is a chunk followed by the next C tokens of the same
document (its continuation), padded with <|endoftext|>.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

EOT_ID = 1  # <|endoftext|> in RetroLab's tokenizer


@dataclass
class Split:
    ids: np.ndarray  # (N,) int64 token stream, documents concatenated
    docs: list[dict]  # [{title, start, length}]


def load_split(data_dir: str, split: str) -> Split:
    ids = np.fromfile(os.path.join(data_dir, f'{split}.ids.u16'), dtype='<u2').astype(np.int64)
    with open(os.path.join(data_dir, f'{split}.docs.json')) as f:
        docs = json.load(f)
    return Split(ids, docs)


@dataclass
class Datastore:
    """Chunks of one or more splits. neighbour_tokens[r] = chunk r + its continuation (2C ids)."""
    neighbour_tokens: np.ndarray  # (R, 2C) int64
    chunk_lengths: np.ndarray  # (R,) real tokens in the chunk (the last chunk of a document may be short)
    stream_pos: np.ndarray  # (R,) position of the chunk's first token in its split's stream
    doc_index: np.ndarray  # (R,)
    source: np.ndarray  # (R,) which split the chunk came from (index into the list given to build)


def build_datastore(splits: list[Split], chunk: int) -> Datastore:
    rows, lengths, positions, doc_index, source = [], [], [], [], []
    for s_index, split in enumerate(splits):
        for d_index, doc in enumerate(split.docs):
            tokens = split.ids[doc['start']: doc['start'] + doc['length']]
            for r in range(0, len(tokens), chunk):
                row = np.full(2 * chunk, EOT_ID, dtype=np.int64)
                piece = tokens[r: r + 2 * chunk]
                row[: len(piece)] = piece
                rows.append(row)
                lengths.append(min(chunk, len(tokens) - r))
                positions.append(doc['start'] + r)
                doc_index.append(d_index)
                source.append(s_index)
    return Datastore(np.stack(rows), np.array(lengths), np.array(positions), np.array(doc_index), np.array(source))


class MeanEmbedder:
    """The retrieval embedder: L2-normalised mean of a frozen token-embedding table over a chunk.

    The table is stored int8 with one scale per row (embedder.bin); training, the Node tools
    and the browser all use the dequantized values, so they embed identically."""

    def __init__(self, table_int8: np.ndarray, scales: np.ndarray):
        self.table = table_int8.astype(np.float32) * scales[:, None].astype(np.float32)

    @staticmethod
    def quantize(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scales = np.abs(table).max(axis=1) / 127.0
        scales = np.where(scales == 0, 1.0, scales).astype(np.float32)
        q = np.clip(np.round(table / scales[:, None]), -127, 127).astype(np.int8)
        return q, scales

    def embed(self, chunks: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """chunks (N, C) ids -> (N, d) float32 unit vectors; only the first lengths[i] ids count."""
        N, C = chunks.shape
        mask = np.ones((N, C), dtype=np.float32)
        if lengths is not None:
            mask = (np.arange(C)[None, :] < lengths[:, None]).astype(np.float32)
        out = np.zeros((N, self.table.shape[1]), dtype=np.float32)
        for start in range(0, N, 8192):
            e = self.table[chunks[start: start + 8192]]  # (n, C, d)
            m = mask[start: start + 8192]
            v = (e * m[:, :, None]).sum(1) / np.maximum(m.sum(1, keepdims=True), 1.0)
            out[start: start + 8192] = v
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def search(keys: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product search (vectors are unit length, so this is cosine). Returns
    (scores, ids), each (Q, k), best first."""
    import faiss
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(keys.astype(np.float32))
    scores, ids = index.search(queries.astype(np.float32), k)
    return scores, ids


def training_neighbours(train: Split, store: Datastore, embedder: MeanEmbedder, chunk: int, k: int,
                        candidates: int = 64, exclude_same_document: bool = False) -> np.ndarray:
    """Real neighbours for every stream chunk s (tokens [sC, sC+C)) of the training stream.

    Never the chunk itself or any chunk whose span with continuation overlaps the query chunk or
    its target continuation: |stream_pos - sC| < 2C within the training split is excluded."""
    n_stream_chunks = len(train.ids) // chunk
    queries = train.ids[: n_stream_chunks * chunk].reshape(n_stream_chunks, chunk)
    keys = embedder.embed(store.neighbour_tokens[:, :chunk], store.chunk_lengths)
    _, ids = search(keys, embedder.embed(queries), candidates)
    out = np.zeros((n_stream_chunks, k), dtype=np.int64)
    query_pos = np.arange(n_stream_chunks) * chunk
    doc_starts = np.array([d['start'] for d in train.docs])
    query_doc = np.searchsorted(doc_starts, query_pos, side='right') - 1
    for s in range(n_stream_chunks):
        kept = [r for r in ids[s] if abs(int(store.stream_pos[r]) - int(query_pos[s])) >= 2 * chunk
                and not (exclude_same_document and store.doc_index[r] == query_doc[s])][:k]
        while len(kept) < k:  # pathological duplicates: fall back to any other chunk
            kept.append(int(ids[s][-1]))
        out[s] = kept
    return out
