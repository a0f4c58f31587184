"""Compares retrieval embedders built from a GPT's token-embedding table.

Every variant is a per-token transform of the table (centering, IDF weights), so each one ships as
the same int8 table format and the app's mean-pool + L2-normalise code serves all of them.
Quality proxy: for valid chunks, how many of the true continuation's (non-frequent) token types
appear in the top-1 train neighbour's continuation, against a random neighbour.

With --contextual it also tries keys that need a GPT forward pass per chunk (the chunk read alone,
as an app would embed it): the kNN-LM key (last FFN input) mean-pooled over the chunk, and at the
chunk's last token. These would need an embedder graph in the app instead of a table.

With --union 2,4,8 it also reports, for the shipped variant (idf-centred), the share found in the
union of the top-k neighbours' continuations, against k random neighbours: what more neighbours
could add.

usage: python3 -m studies.embedder_study --gpt .work/gpt-base/model.pt --data .work/data [--queries 2000]
         [--contextual .work/gpt/model.pt] [--union 2,4,8,16]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from retrolab.prepare_retrieval import variants
from retrolab.data import MeanEmbedder, build_datastore, load_split, search
from retrolab.checkpoint import load_model


def frequent_types(train_ids: np.ndarray, top: int = 100) -> set[int]:
    """The most frequent train token types, left out of the overlap proxies (they are everywhere)."""
    return set(np.argsort(-np.bincount(train_ids))[:top].tolist())


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--gpt', required=True)
    p.add_argument('--data', required=True)
    p.add_argument('--queries', type=int, default=2000)
    p.add_argument('--chunk', type=int, default=32)
    p.add_argument('--contextual', help='a GPT model.pt whose knn_key to try as the retrieval key')
    p.add_argument('--union', help='comma-separated k: coverage of the union of the top-k continuations')
    args = p.parse_args()
    C = args.chunk
    train, valid = load_split(args.data, 'train'), load_split(args.data, 'valid')
    table = load_model(args.gpt).wte.weight.detach().numpy()
    store = build_datastore([train], C)
    frequent = frequent_types(train.ids)
    rng = np.random.default_rng(0)
    n_valid_chunks = len(valid.ids) // C - 1
    picks = rng.choice(n_valid_chunks, size=min(args.queries, n_valid_chunks), replace=False)
    queries = np.stack([valid.ids[u * C:(u + 1) * C] for u in picks])
    truths = [set(valid.ids[(u + 1) * C:(u + 2) * C].tolist()) - frequent for u in picks]

    def overlap(neigh_rows):
        """neigh_rows: (queries, 2C) one neighbour per query, or (queries, k, 2C) a union of k."""
        scores = []
        for row, truth in zip(neigh_rows, truths):
            cont = set(row[..., C:].ravel().tolist()) - frequent
            scores.append(len(cont & truth) / max(1, len(truth)))
        return float(np.mean(scores))

    results = {'random': overlap(store.neighbour_tokens[rng.integers(0, len(store.neighbour_tokens), len(picks))])}
    for name, t in variants(table, train.ids).items():
        q, s = MeanEmbedder.quantize(t)
        emb = MeanEmbedder(q, s)
        keys = emb.embed(store.neighbour_tokens[:, :C], store.chunk_lengths)
        _, ids = search(keys, emb.embed(queries), 1)
        results[name] = overlap(store.neighbour_tokens[ids[:, 0]])
        if args.union and name == 'idf-centred':
            ks = [int(k) for k in args.union.split(',')]
            _, top = search(keys, emb.embed(queries), max(ks))
            for k in ks:
                results[f'{name}-union@{k}'] = overlap(store.neighbour_tokens[top[:, :k]])
                results[f'random-union@{k}'] = overlap(
                    store.neighbour_tokens[rng.integers(0, len(store.neighbour_tokens), (len(picks), k))])
    if args.contextual:
        gpt = load_model(args.contextual).eval()

        @torch.no_grad()
        def contextual_keys(chunks: np.ndarray) -> dict[str, np.ndarray]:
            means, lasts = [], []
            for i in range(0, len(chunks), 512):
                with torch.autocast('cpu', dtype=torch.bfloat16):
                    key = gpt(torch.from_numpy(chunks[i:i + 512].astype(np.int64)))[3].float()
                means.append(key.mean(1).numpy())
                lasts.append(key[:, -1].numpy())
            out = {}
            for name, parts in (('knn-key-mean', means), ('knn-key-last', lasts)):
                x = np.concatenate(parts)
                out[name] = x / np.linalg.norm(x, axis=1, keepdims=True)
            return out

        train_keys = contextual_keys(store.neighbour_tokens[:, :C])
        query_keys = contextual_keys(queries)
        for name in train_keys:
            _, ids = search(train_keys[name].astype(np.float32), query_keys[name].astype(np.float32), 1)
            results[name] = overlap(store.neighbour_tokens[ids[:, 0]])
    print(json.dumps({'metric': 'share of the true continuation\'s rarer token types found in the top-1 neighbour\'s continuation',
                      'queries': len(picks), **{k: round(v, 4) for k, v in results.items()}}))


if __name__ == '__main__':
    main()
