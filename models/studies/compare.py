"""Quick PyTorch check of a RETRO checkpoint against its own decoder (the GPT, for a frozen-decoder
RETRO): token perplexity with real and random neighbours and with no retrieval, on every n-th window
of a split. Used for the attempt table in docs/retro-training.md; the shipped numbers come from
`npm run eval` on the int8 files.

usage: python3 -m studies.compare --model .work/retro/model.pt --split test --window-step 12 [--k 4]
"""
from __future__ import annotations

import argparse
import json

import torch

from retrolab.data import build_datastore, load_split
from retrolab.evaluate import perplexity
from retrolab.checkpoint import load_embedder, load_model


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', required=True)
    p.add_argument('--data', default='.work/data')
    p.add_argument('--retrieval', default='.work/retrieval')
    p.add_argument('--split', default='valid')
    p.add_argument('--window-step', type=int, default=10)
    p.add_argument('--k', type=int, help='neighbours per chunk (default: the model\'s)')
    p.add_argument('--threads', type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    if args.k:
        model.cfg.neighbours = args.k
    cfg = model.cfg
    store = build_datastore([load_split(args.data, 'train')], cfg.chunk)
    split = load_split(args.data, args.split)
    embedder = load_embedder(args.retrieval, cfg.vocab_size, cfg.d_model)
    result = {'model': args.model, 'split': args.split, 'window_step': args.window_step, 'k': cfg.neighbours}
    with torch.autocast('cpu', dtype=torch.bfloat16):
        for mode in ('real', 'random'):
            result[mode] = perplexity(model, split, cfg.context, cfg.context // 2, store, embedder, mode,
                                      window_step=args.window_step)['token_ppl']
        result['no_retrieval'] = perplexity(model, split, cfg.context, cfg.context // 2,
                                            window_step=args.window_step)['token_ppl']
    print(json.dumps(result))


if __name__ == '__main__':
    main()
