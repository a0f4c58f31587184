"""Experiment: RETRO with token-aligned neighbours (not what ships).

The shipped RETRO retrieves whole datastore chunks by a bag-of-tokens embedding, so a neighbour's
continuation rarely starts where the query's does. Here the query is the GPT's kNN-LM key at the
last token of chunk u (the state that predicts the next token), the datastore holds that key for
every train position p, and the neighbour is the train text around the match: the C tokens ending
at p, then the C tokens after it. The copy prior's "token after the aligned position" then points
at what followed the most similar train context, as in kNN-LM, for the first tokens of chunk u+1.

  python3 -m retrolab.aligned prepare --gpt .work/gpt/model.pt --data .work/data --out .work/aligned
  python3 -m retrolab.train --stage retro ... --retrieval .work/aligned     (neighbours = positions)
  python3 -m retrolab.aligned eval --model .work/retro-aligned/model.pt --split valid --window-step 10
  python3 -m retrolab.aligned study --data .work/data --retrieval .work/aligned   (what neighbours hold)

Keys come from non-overlapping 256-token windows (the first tokens of each window have less
history than the eval's); search is faiss IVF (approximate), so this measures the idea, not a
shippable index.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F

from .data import load_split
from .evaluate import stream_windows
from .train import load_model

WINDOW = 256


@torch.no_grad()
def split_keys(gpt, ids: np.ndarray, batch: int = 32) -> np.ndarray:
    """kNN-LM key (the last FFN's input) for every position, read in non-overlapping windows."""
    n = len(ids) // WINDOW * WINDOW
    keys = np.zeros((len(ids), gpt.cfg.d_model), np.float32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        for i in range(0, n, WINDOW * batch):
            x = torch.from_numpy(ids[i:min(n, i + WINDOW * batch)].reshape(-1, WINDOW))
            keys[i:i + x.numel()] = gpt(x)[3].float().reshape(-1, keys.shape[1]).numpy()
        if n < len(ids):
            tail = torch.from_numpy(ids[n:])[None]
            keys[n:] = gpt(tail)[3].float()[0].numpy()
    return keys


def build_index(keys: np.ndarray, lists: int = 1024, probes: int = 16, seed: int = 0):
    import faiss
    quantizer = faiss.IndexFlatL2(keys.shape[1])
    index = faiss.IndexIVFFlat(quantizer, keys.shape[1], lists)
    sample = np.random.default_rng(seed).choice(len(keys), size=min(len(keys), 100_000), replace=False)
    index.train(keys[np.sort(sample)])
    index.add(keys)
    index.nprobe = probes
    return index


def valid_positions(n: int, chunk: int) -> tuple[int, int]:
    """Positions p whose neighbour span [p - C + 1, p + C] lies inside the stream."""
    return chunk - 1, n - chunk - 1


def prepare(args):
    os.makedirs(args.out, exist_ok=True)
    C, k = args.chunk, args.k
    train = load_split(args.data, 'train')
    gpt = load_model(args.gpt).eval()
    t0 = time.time()
    keys_path = os.path.join(args.out, 'train-keys.npy')
    if not os.path.exists(keys_path):
        np.save(keys_path, split_keys(gpt, train.ids))
    keys = np.load(keys_path)
    print(json.dumps({'step': 'keys', 'positions': len(keys), 'seconds': round(time.time() - t0)}), flush=True)
    index = build_index(keys, probes=args.probes)
    print(json.dumps({'step': 'index', 'seconds': round(time.time() - t0)}), flush=True)
    n_chunks = len(train.ids) // C
    ends = np.arange(n_chunks) * C + C - 1
    doc_starts = np.array([d['start'] for d in train.docs])
    doc_of = lambda pos: np.searchsorted(doc_starts, pos, side='right') - 1  # noqa: E731
    lo, hi = valid_positions(len(train.ids), C)
    out = np.zeros((n_chunks, k), np.int64)
    same_doc_fallbacks = 0
    for i in range(0, n_chunks, 4096):
        _, cand = index.search(keys[ends[i:i + 4096]], 32)
        for j, row in enumerate(cand):
            e = ends[i + j]
            # RETRO's strict rule: never the query's own article, so nothing of its continuation.
            kept = [int(p) for p in row if lo <= p < hi and doc_of(p) != doc_of(e)][:k]
            while len(kept) < k:
                same_doc_fallbacks += 1
                kept.append(int(np.random.default_rng(int(e)).integers(lo, hi)))
            out[i + j] = kept
    np.save(os.path.join(args.out, 'neighbours.npy'), out)
    shutil.copyfile(args.embedder, os.path.join(args.out, 'embedder.bin'))  # train.py loads one
    with open(os.path.join(args.out, 'retrieval.json'), 'w') as f:
        json.dump({'aligned': True, 'chunk': C, 'k': k, 'exclude_same_document': True, 'probes': args.probes,
                   'key': 'GPT knn_key at the chunk\'s last token; neighbour = C tokens ending at the match + C after',
                   'random_fallbacks': same_doc_fallbacks}, f, indent=2)
    print(json.dumps({'step': 'neighbours', 'queries': n_chunks, 'fallbacks': same_doc_fallbacks,
                      'seconds': round(time.time() - t0)}))


def aligned_rows(ids: np.ndarray, positions: np.ndarray, chunk: int) -> np.ndarray:
    """(..., 2C) neighbour tokens for match positions (...,): C tokens ending at p, then C after."""
    offsets = np.arange(-chunk + 1, chunk + 1)
    return ids[positions[..., None] + offsets]


@torch.no_grad()
def evaluate(args):
    """Perplexity by the eval protocol's windows. Modes: real (train keys), random (random train
    positions), none (the GPT: RETRO without retrieval), leakage (the split's own keys added to the
    datastore, nothing excluded: chunk u finds itself and its continuation)."""
    torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    gpt = load_model(args.gpt).eval()
    cfg = model.cfg
    C, K = cfg.chunk, args.k or cfg.neighbours
    train = load_split(args.data, 'train')
    split = load_split(args.data, args.split)
    train_keys = np.load(os.path.join(args.retrieval, 'train-keys.npy'))
    query_keys = split_keys(gpt, split.ids)
    modes = args.modes.split(',')
    index = build_index(train_keys) if 'real' in modes else None  # random and none search nothing
    rng = np.random.default_rng(0)
    result = {'model': args.model, 'split': args.split, 'window_step': args.window_step, 'k': K}
    for mode in modes:
        ids, lo, hi, search_index = train.ids, *valid_positions(len(train.ids), C), index
        if mode == 'leakage':
            ids = np.concatenate([train.ids, split.ids])
            lo, hi = valid_positions(len(ids), C)
            search_index = build_index(np.concatenate([train_keys, query_keys]))
        nll, count = 0.0, 0
        logprobs = np.full(len(split.ids) - 1, np.nan, np.float32) if args.token_logprobs else None
        windows = 0
        for start, window, first in stream_windows(split, cfg.context, cfg.context // 2, None, args.window_step):
            inputs, targets = window[:-1], window[1:]
            x = torch.from_numpy(inputs)[None]
            U = len(inputs) // C
            with torch.autocast('cpu', dtype=torch.bfloat16):
                if mode == 'none' or U == 0:
                    logits = model(x)[0]
                else:
                    ends = start + np.arange(U) * C + C - 1
                    if mode == 'random':
                        pos = rng.integers(lo, hi, size=(U, K))
                    else:
                        _, pos = search_index.search(query_keys[ends], K)
                        pos = np.clip(pos, lo, hi - 1)
                    neighbours = torch.from_numpy(aligned_rows(ids, pos, C))[None]
                    logits = model.retro_forward(x, neighbours)
            lp = F.log_softmax(logits[0, first:].float(), -1).gather(1, torch.from_numpy(targets[first:])[:, None])[:, 0]
            nll -= float(lp.sum())
            count += len(targets) - first
            windows += 1
            if logprobs is not None:
                logprobs[start + first:start + len(targets)] = lp.numpy()
        result[mode] = math.exp(nll / count)
        if logprobs is not None:
            # The format of `npm run eval -- --token-logprobs`, so `npm run eval:paired` compares these runs.
            path = f'{args.token_logprobs}-{mode}.f32'
            logprobs.tofile(path)
            with open(path + '.json', 'w') as f:
                json.dump({'model': os.path.basename(os.path.dirname(args.model)), 'split': args.split,
                           'neighbours': mode, 'k': K, 'context': cfg.context, 'stride': cfg.context // 2,
                           'windows': windows, 'token_ppl': result[mode],
                           'article_lengths': [d['length'] for d in split.docs]}, f)
    print(json.dumps(result))


@torch.no_grad()
def study(args):
    """For 2,000 valid chunk ends: how often a neighbour's token j places after the match equals the
    true token j places after the chunk end (j = 1 is kNN-LM's vote), for token-aligned neighbours
    (exact search), the shipped chunk retrieval, and random positions."""
    from .data import build_datastore, search
    from .embedder_study import frequent_types
    from .train import load_embedder
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
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    a = sub.add_parser('prepare')
    a.add_argument('--gpt', required=True)
    a.add_argument('--data', required=True)
    a.add_argument('--out', required=True)
    a.add_argument('--embedder', default='.work/retrieval/embedder.bin')
    a.add_argument('--chunk', type=int, default=32)
    a.add_argument('--k', type=int, default=2)
    a.add_argument('--probes', type=int, default=16, help='IVF lists searched per query (of 1,024)')
    e = sub.add_parser('eval')
    e.add_argument('--model', required=True)
    e.add_argument('--gpt', default='.work/gpt/model.pt')
    e.add_argument('--data', default='.work/data')
    e.add_argument('--retrieval', default='.work/aligned')
    e.add_argument('--split', default='valid')
    e.add_argument('--window-step', type=int, default=10)
    e.add_argument('--k', type=int)
    e.add_argument('--threads', type=int, default=1)
    e.add_argument('--modes', default='real,random,none')
    e.add_argument('--token-logprobs', help='path prefix: writes <prefix>-<mode>.f32 (+ .json) for npm run eval:paired')
    st = sub.add_parser('study')
    st.add_argument('--gpt', default='.work/gpt/model.pt')
    st.add_argument('--data', default='.work/data')
    st.add_argument('--retrieval', default='.work/aligned')
    st.add_argument('--chunk', type=int, default=32)
    st.add_argument('--queries', type=int, default=2000)
    args = p.parse_args()
    {'prepare': prepare, 'eval': evaluate, 'study': study}[args.cmd](args)


if __name__ == '__main__':
    main()
