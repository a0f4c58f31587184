"""Study: what token-aligned, chunk and random neighbours hold of the true continuation (the table
"What the neighbours hold" in docs/retro-training.md). Not part of the shipped pipeline.

  python3 -m studies.aligned_study --gpt .work/gpt/model.pt --data .work/data --retrieval .work/aligned-c8 --chunk 8
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

from retrolab.checkpoint import load_model
from retrolab.data import load_split
from retrolab.neighbours import WINDOW, aligned_rows, valid_positions


@torch.no_grad()
def study(args):
    """For 2,000 valid chunk ends: how often a neighbour's token j places after the match equals the
    true token j places after the chunk end (j = 1 is kNN-LM's vote), for token-aligned neighbours
    (exact search), the shipped chunk retrieval, and random positions."""
    from retrolab.checkpoint import load_embedder
    from retrolab.data import build_datastore, search
    from studies.embedder_study import frequent_types
    C = args.chunk
    train, valid = load_split(args.data, 'train'), load_split(args.data, 'valid')
    gpt = load_model(args.gpt).eval()
    keys = torch.from_numpy(np.load(os.path.join(args.retrieval, 'train-keys.npy')))
    rng = np.random.default_rng(0)
    n = len(valid.ids) // C - 1
    ends = (rng.choice(np.arange(8, n), size=args.queries, replace=False) + 1) * C - 1  # >= 8 chunks of history
    with torch.autocast('cpu', dtype=torch.bfloat16):
        x = torch.from_numpy(np.stack([valid.ids[e - WINDOW + 1:e + 1] for e in ends]))
        q = torch.cat([gpt(x[i:i + 64])[3].float()[:, -1] for i in range(0, len(x), 64)])
    norms = (keys ** 2).sum(1)
    aligned = np.concatenate([torch.topk(norms[None] - 2 * (q[i:i + 50] @ keys.T), 2, dim=1, largest=False).indices.numpy()
                              for i in range(0, len(q), 50)])
    store = build_datastore([train], C)
    embedder = load_embedder(args.retrieval, gpt.cfg.vocab_size, gpt.cfg.d_model)
    _, chunk_ids = search(embedder.embed(store.neighbour_tokens[:, :C], store.chunk_lengths),
                          embedder.embed(np.stack([valid.ids[e - C + 1:e + 1] for e in ends])), 2)
    lo, hi = valid_positions(len(train.ids), C)
    # Each retriever as (queries, 2, 2C) rows laid out like aligned_rows: index C - 1 + j is j after the match.
    retrievers = {
        'token-aligned': aligned_rows(train.ids, np.clip(aligned, lo, hi - 1), C),
        'chunk (shipped)': store.neighbour_tokens[chunk_ids],  # chunk + continuation: the same layout
        'random': aligned_rows(train.ids, rng.integers(lo, hi, size=(len(ends), 2)), C),
    }
    frequent = frequent_types(train.ids)
    truths = [set(valid.ids[e + 1:e + 1 + C].tolist()) - frequent for e in ends]
    out = {'queries': len(ends)}
    for name, rows in retrievers.items():
        for k in (1, 2):
            for j in (1, 2, 4, 8, 16):
                out[f'{name} k={k} hit at +{j}'] = round(float(np.mean(
                    [(rows[i, :k, C - 1 + j] == valid.ids[e + j]).any() for i, e in enumerate(ends)])), 4)
            out[f'{name} k={k} rarer types of the next {C}'] = round(float(np.mean(
                [len((set(rows[i, :k, C:].ravel().tolist()) - frequent) & t) / max(1, len(t))
                 for i, t in enumerate(truths)])), 4)
    print(json.dumps(out, indent=1))


def main():
    st = argparse.ArgumentParser()
    st.add_argument('--gpt', default='.work/gpt/model.pt')
    st.add_argument('--data', default='.work/data')
    st.add_argument('--retrieval', default='.work/aligned')
    st.add_argument('--chunk', type=int, default=32)
    st.add_argument('--queries', type=int, default=2000)
    study(st.parse_args())


if __name__ == '__main__':
    main()
