"""Perplexity evaluation shared by training (tracking) and the pipeline's reference numbers.

Protocol (the TypeScript `npm run eval` implements the same): the split is one token stream
(articles tokenized one by one and concatenated, as cli/prepare-corpus.ts writes it), scored in
windows of `context` tokens that start at multiples of `stride`; the first window scores all its
targets, each later window only its last `stride` targets, so every token but the first is scored
once with at least context - stride tokens of history. For the leakage case the split is added to
the datastore as one document, so its chunks line up with the windows' chunks.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .data import Datastore, MeanEmbedder, Split


def stream_windows(split: Split, context: int, stride: int, max_windows: int | None = None, window_step: int = 1):
    """Yields (start, tokens (<= context+1), first_scored) over the split's token stream; with
    window_step n only every n-th window (each still scored as in the full pass)."""
    tokens = split.ids
    start, index, n = 0, 0, 0
    while start + 1 < len(tokens):
        if index % window_step == 0:
            window = tokens[start: start + context + 1]
            first_scored = 0 if start == 0 else context - stride
            yield start, window, first_scored
            n += 1
        index += 1
        if (max_windows is not None and n >= max_windows) or start + context + 1 >= len(tokens):
            return
        start += stride


def as_one_document(split: Split) -> Split:
    return Split(split.ids, [{'title': 'eval', 'start': 0, 'length': len(split.ids)}])


def neighbours_for_window(window_inputs: np.ndarray, store: Datastore, embedder: MeanEmbedder, k: int,
                          chunk: int, mode: str, rng: np.random.Generator, exclude=None) -> np.ndarray:
    """(U, K, 2C) neighbour ids for each complete chunk of the window's inputs."""
    U = len(window_inputs) // chunk
    if U == 0:
        return np.full((1, k, 2 * chunk), 1, dtype=np.int64)
    chunks = window_inputs[: U * chunk].reshape(U, chunk)
    if mode == 'random':
        ids = rng.integers(0, len(store.neighbour_tokens), size=(U, k))
    else:
        _, ids = store_index(store, embedder).search(embedder.embed(chunks), k)
    return store.neighbour_tokens[ids]


_index_cache: dict[tuple[int, int], object] = {}


def store_index(store: Datastore, embedder: MeanEmbedder):
    """Exact inner-product index over the datastore's chunk keys, built once per store."""
    import faiss
    key = (id(store), id(embedder))
    if key not in _index_cache:
        keys = embedder.embed(store.neighbour_tokens[:, : store.neighbour_tokens.shape[1] // 2], store.chunk_lengths)
        index = faiss.IndexFlatIP(keys.shape[1])
        index.add(keys)
        _index_cache[key] = index
    return _index_cache[key]


@torch.no_grad()
def perplexity(model, split: Split, context: int, stride: int, store: Datastore | None = None,
               embedder: MeanEmbedder | None = None, mode: str = 'real', max_windows: int | None = None,
               seed: int = 0, window_step: int = 1) -> dict:
    """Token-level NLL over the split. For RETRO pass a datastore; mode 'real' or 'random'."""
    model.eval()
    rng = np.random.default_rng(seed)
    total_nll, total_tokens = 0.0, 0
    batch: list = []

    def flush():
        nonlocal total_nll, total_tokens
        for inputs, targets, first, neighbours in batch:
            x = torch.from_numpy(inputs)[None]
            if neighbours is None:
                logits = model(x)[0]
            else:
                logits = model.retro_forward(x, torch.from_numpy(neighbours)[None])
            nll = F.cross_entropy(logits[0, first:].float(), torch.from_numpy(targets[first:]), reduction='sum')
            total_nll += float(nll)
            total_tokens += len(targets) - first
        batch.clear()

    for _, window, first in stream_windows(split, context, stride, max_windows, window_step):
        inputs, targets = window[:-1], window[1:]
        neighbours = None
        if store is not None:
            cfg = model.cfg
            neighbours = neighbours_for_window(inputs, store, embedder, cfg.neighbours, cfg.chunk, mode, rng)
        batch.append((inputs, targets, first, neighbours))
        if len(batch) >= 16:
            flush()
    flush()
    return {'nll': total_nll, 'tokens': total_tokens, 'token_ppl': math.exp(total_nll / max(total_tokens, 1))}
