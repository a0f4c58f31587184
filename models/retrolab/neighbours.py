"""RETRO's neighbours as they ship: token-aligned (docs/retro-training.md).

The query is the GPT's kNN-LM key at the
last token of chunk u (the state that predicts the next token), the datastore holds that key for
every train position p, and the neighbour is the train text around the match: the C tokens ending
at p, then the C tokens after it. The copy prior's "token after the aligned position" then points
at what followed the most similar train context, as in kNN-LM, for the first tokens of chunk u+1.

  python3 -m retrolab.neighbours prepare --gpt .work/gpt/model.pt --data .work/data --out .work/aligned-c8 --chunk 8
  python3 -m retrolab.train --stage retro ... --retrieval .work/aligned-c8     (neighbours = positions)
  python3 -m retrolab.neighbours eval --model .work/retro/model.pt --retrieval .work/aligned-c8 --split valid

Training keys come from non-overlapping 256-token windows (the first tokens of each window have less
history than the eval's) and the search is faiss IVF (approximate); the app and `npm run eval` search
the int8 GPT's PCA-64 keys exactly (docs/knnlm.md).
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
from .checkpoint import load_model

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


class IVFIndex:
    """Inverted-file L2 search in torch matmuls (faiss's IndexIVFFlat, same answers up to ties).

    Debian's faiss 1.7.3 scans about a million 256-d vectors a second per core here, which made the
    329k training queries of chunk 8 an hour and a half; scanning each list against all the queries
    that probe it as one matrix product is over ten times faster on the same core."""

    def __init__(self, keys: np.ndarray, lists: int = 1024, probes: int = 16, seed: int = 0, iterations: int = 10):
        self.keys = torch.from_numpy(np.ascontiguousarray(keys, dtype=np.float32))
        self.probes = probes
        rng = np.random.default_rng(seed)
        sample = self.keys[torch.from_numpy(np.sort(rng.choice(len(keys), size=min(len(keys), 64 * lists), replace=False)))]
        centroids = sample[torch.from_numpy(rng.choice(len(sample), size=lists, replace=False))].clone()
        for _ in range(iterations):  # k-means on the sample
            assign = self._nearest(sample, centroids, 1)[:, 0]
            sums = torch.zeros_like(centroids).index_add_(0, assign, sample)
            counts = torch.bincount(assign, minlength=lists).float()[:, None]
            centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        self.centroids = centroids
        assign = torch.cat([self._nearest(self.keys[i:i + 65536], centroids, 1)[:, 0] for i in range(0, len(self.keys), 65536)])
        order = torch.argsort(assign, stable=True)
        self.order = order  # list members, list by list
        self.bounds = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.bincount(assign, minlength=lists), 0)])
        self.norms = (self.keys ** 2).sum(1)

    @staticmethod
    def _nearest(x: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
        d = (y ** 2).sum(1)[None] - 2 * (x @ y.T)
        return torch.topk(d, k, dim=1, largest=False).indices

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, ids) of the k nearest stored keys per query among its `probes` nearest lists."""
        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        n = len(q)
        probes = torch.cat([self._nearest(q[i:i + 65536], self.centroids, self.probes) for i in range(0, n, 65536)])
        best_d = torch.full((n, self.probes * k), float('inf'))
        best_i = torch.full((n, self.probes * k), -1, dtype=torch.long)
        for slot in range(self.probes):
            lists = probes[:, slot]
            by_list = torch.argsort(lists, stable=True)
            starts = torch.searchsorted(lists[by_list], torch.arange(len(self.centroids) + 1))
            for l in range(len(self.centroids)):
                qs = by_list[starts[l]:starts[l + 1]]
                if len(qs) == 0:
                    continue
                members = self.order[self.bounds[l]:self.bounds[l + 1]]
                if len(members) == 0:
                    continue
                d = self.norms[members][None] - 2 * (q[qs] @ self.keys[members].T)
                kk = min(k, len(members))
                top = torch.topk(d, kk, dim=1, largest=False)
                best_d[qs, slot * k:slot * k + kk] = top.values
                best_i[qs, slot * k:slot * k + kk] = members[top.indices]
        top = torch.topk(best_d, k, dim=1, largest=False)
        ids = torch.gather(best_i, 1, top.indices)
        dist = top.values + (q ** 2).sum(1, keepdim=True)
        return dist.numpy(), ids.numpy()


def build_index(keys: np.ndarray, lists: int = 1024, probes: int = 16, seed: int = 0) -> IVFIndex:
    return IVFIndex(keys, lists=lists, probes=probes, seed=seed)


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
    lo, hi = valid_positions(len(train.ids), C)
    _, cand = index.search(keys[ends], 32)
    print(json.dumps({'step': 'search', 'queries': n_chunks, 'seconds': round(time.time() - t0)}), flush=True)
    # RETRO's strict rule: never the query's own article, so nothing of its continuation.
    ok = (cand >= lo) & (cand < hi) & (np.searchsorted(doc_starts, cand, side='right') != np.searchsorted(doc_starts, ends, side='right')[:, None])
    out = np.zeros((n_chunks, k), np.int64)
    same_doc_fallbacks = 0
    for i in range(n_chunks):
        kept = cand[i][ok[i]][:k].tolist()
        while len(kept) < k:
            same_doc_fallbacks += 1
            kept.append(int(np.random.default_rng(int(ends[i])).integers(lo, hi)))
        out[i] = kept
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


class TrackingEval:
    """The numbers a RETRO-fit watches (docs/retro-training.md): on a fixed spread of valid windows,
    token perplexity with real train neighbours (the strict rule: train holds no valid text), random
    ones, and "own document" neighbours (slot 0 holds the chunk and its true continuation, exactly
    what the top match is when the datastore holds the text: the leakage and classroom case; slot 1
    the real top match), plus the copy rate: the share of targets the model ranks first when its
    own document is retrieved. Built once per run: the query keys are the frozen decoder's."""

    def __init__(self, model, train_ids: np.ndarray, valid, retrieval_dir: str, windows: int, window_step: int,
                 seed: int = 0):
        C, K = model.cfg.chunk, model.cfg.neighbours
        self.C, self.K = C, K
        self.windows = [(s, w) for s, w, _ in stream_windows(valid, model.cfg.context, model.cfg.context, windows,
                                                             window_step) if len(w) == model.cfg.context + 1]
        lo, hi = valid_positions(len(train_ids), C)
        index = build_index(np.load(os.path.join(retrieval_dir, 'train-keys.npy')), probes=8)
        rng = np.random.default_rng(seed)
        self.sets = {'real': [], 'random': [], 'own': []}
        model.eval()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            for start, window in self.windows:
                x = torch.from_numpy(window[:-1])[None]
                keys = model(x)[3].float()[0].numpy()  # retrieval off: the frozen decoder is the GPT
                U = len(window[:-1]) // C
                ends = np.arange(U) * C + C - 1
                _, pos = index.search(keys[ends], K)
                pos = np.clip(pos, lo, hi - 1)
                real = aligned_rows(train_ids, pos, C)
                self.sets['real'].append(real)
                self.sets['random'].append(aligned_rows(train_ids, rng.integers(lo, hi, size=(U, K)), C))
                own = real.copy()
                padded = np.concatenate([window, np.full(C, 1, window.dtype)])  # past the window: end of text
                for u, e in enumerate(ends):
                    own[u, 0] = padded[e - C + 1:e + C + 1]
                self.sets['own'].append(own)

    @torch.no_grad()
    def __call__(self, model) -> dict:
        was_training = model.training
        model.eval()
        out = {}
        with torch.autocast('cpu', dtype=torch.bfloat16):
            for name, rows in self.sets.items():
                nll, n, top1 = 0.0, 0, 0
                for (start, window), neighbours in zip(self.windows, rows):
                    x = torch.from_numpy(window[:-1])[None]
                    y = torch.from_numpy(window[1:])
                    logits = model.retro_forward(x, torch.from_numpy(neighbours)[None])[0].float()
                    scored = slice(self.C - 1, None)  # positions that read a neighbour
                    lp = F.log_softmax(logits[scored], -1).gather(1, y[scored, None])[:, 0]
                    nll -= float(lp.sum())
                    n += lp.numel()
                    top1 += int((logits[scored].argmax(-1) == y[scored]).sum())
                out[f'valid_ppl_{name}'] = round(math.exp(nll / n), 3)
                out[f'top1_{name}'] = round(top1 / n, 4)
        out['copy_rate'] = out['top1_own']
        if was_training:
            model.train()
        return out


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
    args = p.parse_args()
    {'prepare': prepare, 'eval': evaluate}[args.cmd](args)


if __name__ == '__main__':
    main()
