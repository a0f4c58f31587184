"""Training for RetroLab's GPT and RETRO (CPU, bf16 autocast; checkpoints and resumes).

Stages (see models/pipeline.sh):
  gpt    train a GPT from scratch, or continue one (--init) for more tokens
  retro  RETRO-fit: start from a trained GPT's decoder (--init) and train the neighbour encoder
         and chunked cross-attention on the same data and batch order as the GPT continuation.
         With --freeze-decoder (what ships) the decoder is the finished GPT, unchanged, so the pair
         differs only in retrieval; without it the decoder follows the GPT continuation's schedule.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .data import Datastore, MeanEmbedder, build_datastore, load_split
from .evaluate import as_one_document, perplexity
from .neighbours import TrackingEval, aligned_rows
from .checkpoint import load_embedder, load_model, save_model
from .model import Decoder, GPTConfig, RetroConfig, count_parameters


def init_match_lags(model: Decoder, scale: float):
    """Each lag of the n-gram match gets its own random rotation, the same for its queries and keys, so an
    agreeing token at that lag adds about as much to the score as the unigram match does."""
    with torch.no_grad():
        for block in model.cca_blocks():
            for q, k in zip(block.cca.q_match_lags, block.cca.k_match_lags):
                rotation, _ = torch.linalg.qr(torch.randn(model.cfg.d_model, model.cfg.d_model))
                q.weight.copy_(rotation * scale)
                k.weight.copy_(rotation * scale)


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--stage', choices=['gpt', 'retro'], required=True)
    p.add_argument('--data', required=True, help='directory with <split>.ids.u16 and <split>.docs.json')
    p.add_argument('--out', required=True)
    p.add_argument('--init', help='model.pt to start from')
    p.add_argument('--tokens', type=float, required=True)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--min-lr-ratio', type=float, default=0.1)
    p.add_argument('--warmup', type=int, default=100)
    p.add_argument('--weight-decay', type=float, default=0.1)
    p.add_argument('--seed', type=int, default=1234)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--eval-every', type=int, default=250)
    p.add_argument('--eval-windows', type=int, default=48)
    p.add_argument('--eval-window-step', type=int, default=1,
                   help='score every n-th valid window, so a small eval spreads over the whole split')
    p.add_argument('--checkpoint-every', type=int, default=100)
    p.add_argument('--stop-at-step', type=int, default=0,
                   help='finish (model.pt, training.json) after this step, keeping the schedule of --tokens: '
                        'how a run stopped early for time is reproduced')
    # RETRO
    p.add_argument('--retrieval', help='directory with embedder.bin and neighbours.npy')
    p.add_argument('--chunk', type=int, default=32)
    p.add_argument('--k', type=int, default=2)
    p.add_argument('--cca-layers', default='2,5')
    p.add_argument('--encoder-layers', type=int, default=2)
    p.add_argument('--freeze-decoder', action='store_true',
                   help='RETRO-fitting as in the RETRO paper (section 4.2): the decoder keeps the --init GPT weights '
                        'and only the encoder and CCA train, so RETRO without useful neighbours is that GPT')
    p.add_argument('--new-lr-mult', type=float, default=3.0,
                   help='learning-rate multiplier for the parameters RETRO adds to the GPT (encoder, CCA); the '
                        'decoder follows the same schedule as the GPT continuation')
    p.add_argument('--copy-prior', type=float, default=3.0,
                   help='initial relative-position bias towards the aligned continuation token in every CCA head')
    p.add_argument('--token-match', action='store_true', help='token-match features in CCA (see RetroConfig)')
    p.add_argument('--query-prefix', action='store_true', help='the encoder reads the retrieving chunk before each neighbour (RetroConfig.query_prefix)')
    p.add_argument('--match-ngram', type=int, default=1,
                   help='with --token-match, match the last n tokens (RetroConfig.match_ngram); continuing a RETRO '
                        'with a smaller n adds the new lags, initialised like the unigram match')
    p.add_argument('--chunk-agreement', action='store_true',
                   help='gate each neighbour by how much of it repeats the retrieving chunk (RetroConfig.chunk_agreement)')
    p.add_argument('--match-scale', type=float, default=19.0,
                   help='initial scale of the token-match projections (an exact match adds ~8 to the logit)')
    p.add_argument('--oracle-start', type=float, default=0.5,
                   help='share of chunks whose neighbour slot holds the chunk + its true continuation, at step 0')
    p.add_argument('--oracle-end', type=float, default=0.25, help='... tapering linearly to this at the end')
    p.add_argument('--oracle-shift', type=float, default=0.25,
                   help='share of oracle neighbours shifted by up to --oracle-shift-max tokens (misaligned copies)')
    p.add_argument('--oracle-shift-max', type=int, default=16,
                   help='largest shift of a shifted oracle; shifts beyond the alignment teach copying by token '
                        'match, the only way real neighbours (which hold a phrase at any offset) can help')
    # Model size (GPT from scratch)
    p.add_argument('--d-model', type=int, default=256)
    p.add_argument('--n-layer', type=int, default=6)
    p.add_argument('--n-head', type=int, default=8)
    p.add_argument('--context', type=int, default=256)
    p.add_argument('--dropout', type=float, default=0.1)
    return p.parse_args()


def main():
    args = parse_args()

    def retrieval_rule() -> dict:
        path = os.path.join(args.retrieval or '', 'retrieval.json')
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)

    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(os.path.join(args.out, 'model.pt')):
        print(json.dumps({'event': 'skip', 'reason': f'{args.out}/model.pt exists'}))
        return
    torch.set_num_threads(args.threads)
    log_path = os.path.join(args.out, 'train.log')

    def log(record: dict):
        line = json.dumps(record)
        print(line, flush=True)
        with open(log_path, 'a') as f:
            f.write(line + '\n')

    train = load_split(args.data, 'train')
    valid = load_split(args.data, 'valid')

    if args.stage == 'gpt':
        if args.init:
            model = load_model(args.init)
        else:
            model = Decoder(GPTConfig(context=args.context, n_layer=args.n_layer, n_head=args.n_head,
                                      d_model=args.d_model, dropout=args.dropout))
    else:
        initial = load_model(args.init)
        if initial.is_retro and args.query_prefix and not initial.cfg.query_prefix:
            # Continue a RETRO, now reading its retrieving chunk: every weight carries over; the
            # encoder's positions shift by C (the prefix's own positions start small and random).
            cfg = RetroConfig(**{**initial.cfg.to_dict(), 'query_prefix': True})
            model = Decoder(cfg)
            state = initial.state_dict()
            pos = model.encoder.pos.weight.detach().clone()
            pos[cfg.chunk:] = state.pop('encoder.pos.weight')
            state['encoder.pos.weight'] = pos
            model.load_state_dict(state, strict=True)
            log({'event': 'retro_continue', 'from': args.init, 'query_prefix': True})
        elif initial.is_retro and (args.match_ngram > initial.cfg.match_ngram
                                   or args.chunk_agreement and not initial.cfg.chunk_agreement):
            # Continue a RETRO with a new cross-attention feature: every weight carries over. New n-gram
            # lag projections start as random rotations like the unigram match's did; the agreement gate
            # starts at 1 (slope 0).
            cfg = RetroConfig(**{**initial.cfg.to_dict(),
                                 'match_ngram': max(args.match_ngram, initial.cfg.match_ngram),
                                 'chunk_agreement': args.chunk_agreement or initial.cfg.chunk_agreement,
                                 'query_prefix': args.query_prefix or initial.cfg.query_prefix})
            assert cfg.token_match or cfg.match_ngram == 1, '--match-ngram needs a token-match RETRO'
            model = Decoder(cfg)
            missing, unexpected = model.load_state_dict(initial.state_dict(), strict=False)
            assert not unexpected and all('_match_lags.' in m or 'agreement_slope' in m for m in missing), (missing, unexpected)
            if any('_match_lags.' in m for m in missing):
                init_match_lags(model, args.match_scale)
            log({'event': 'retro_continue', 'from': args.init, 'match_ngram': cfg.match_ngram,
                 'chunk_agreement': cfg.chunk_agreement, 'new_parameters': len(missing)})
        elif initial.is_retro:
            # A second RETRO-fit phase: continue a RETRO (its own hyperparameters) on fresh batches.
            model = initial
            log({'event': 'retro_continue', 'from': args.init})
        else:
            gpt = initial
            cfg = RetroConfig(**{**gpt.cfg.to_dict(), 'chunk': args.chunk, 'neighbours': args.k,
                                 'neighbour_len': 2 * args.chunk,
                                 'cca_layers': [int(x) for x in args.cca_layers.split(',')],
                                 'encoder_layers': args.encoder_layers, 'token_match': args.token_match,
                                 'query_prefix': args.query_prefix, 'match_ngram': args.match_ngram,
                                 'chunk_agreement': args.chunk_agreement})
            model = Decoder(cfg)
            missing, unexpected = model.load_state_dict(gpt.state_dict(), strict=False)
            assert not unexpected, unexpected
            # The encoder starts as a copy of the GPT's first blocks: a trained reader of text.
            for i, block in enumerate(model.encoder.blocks):
                src = gpt.blocks[i].state_dict()
                block.load_state_dict(src, strict=True)
            # Copy prior: bias each CCA query at offset j towards neighbour position C + j, the token a
            # neighbour holding the continuation has next. Without it the path stays unused at this
            # scale (../shared/notes/retro-training.md); the bias stays trainable.
            with torch.no_grad():
                for block in model.cca_blocks():
                    j = torch.arange(cfg.chunk)
                    block.cca.rel_bias[:, j, cfg.chunk + j] = args.copy_prior
                    block.cca.null_bias.fill_(args.copy_prior)  # start undecided between copying and nothing
                    if cfg.token_match:
                        # The same random rotation for queries and keys: per head, q.k of two unit
                        # embeddings is then ~ scale^2 * cosine / 8 before the 1/sqrt(D) factor.
                        rotation, _ = torch.linalg.qr(torch.randn(cfg.d_model, cfg.d_model))
                        block.cca.q_match.weight.copy_(rotation * args.match_scale)
                        block.cca.k_match.weight.copy_(rotation * args.match_scale)
            init_match_lags(model, args.match_scale)
            log({'event': 'retro_init', 'new_parameters': len(missing), 'copy_prior': args.copy_prior})

    cfg = model.cfg
    C = getattr(cfg, 'chunk', 32)
    context = cfg.context
    tokens_per_step = args.batch * context
    total_steps = int(math.ceil(args.tokens / tokens_per_step))

    def is_new(name: str) -> bool:
        return args.stage == 'retro' and (name.startswith('encoder.') or '.cca.' in name or '.ln_cca.' in name)

    if args.freeze_decoder:
        assert args.stage == 'retro', '--freeze-decoder is for the retro stage'
        for name, param in model.named_parameters():
            if not is_new(name):
                param.requires_grad_(False)

    groups = []
    for new in (False, True):
        named = [(n, p) for n, p in model.named_parameters() if is_new(n) == new and p.requires_grad]
        decay = [p for n, p in named if p.dim() >= 2 and 'rel_bias' not in n]
        no_decay = [p for n, p in named if p.dim() < 2 or 'rel_bias' in n]
        mult = args.new_lr_mult if new else 1.0
        groups += [{'params': decay, 'weight_decay': args.weight_decay, 'lr_mult': mult},
                   {'params': no_decay, 'weight_decay': 0.0, 'lr_mult': mult}]
    opt = torch.optim.AdamW([g for g in groups if g['params']], lr=args.lr, betas=(0.9, 0.95))

    step = 0
    elapsed = 0.0  # training wall time, summed over resumes
    ckpt_path = os.path.join(args.out, 'checkpoint.pt')
    if os.path.exists(ckpt_path):
        blob = torch.load(ckpt_path, map_location='cpu')
        model.load_state_dict(blob['model'])
        multipliers = [g.get('lr_mult', 1.0) for g in opt.param_groups]
        opt.load_state_dict(blob['optimizer'])
        for g, m in zip(opt.param_groups, multipliers):
            g['lr_mult'] = m
        step = blob['step']
        elapsed = blob.get('elapsed', 0.0)
        log({'event': 'resumed', 'step': step})
    else:
        log({'event': 'start', 'stage': args.stage, 'parameters': count_parameters(model), 'config': cfg.to_dict(),
             'steps': total_steps, 'tokens': total_steps * tokens_per_step, 'args': vars(args)})

    store: Datastore | None = None
    leak_store: Datastore | None = None
    embedder = None
    real_neighbours = None
    aligned = False
    if args.stage == 'retro':
        store = build_datastore([train], C)
        leak_store = build_datastore([train, as_one_document(valid)], C)
        embedder = load_embedder(args.retrieval, cfg.vocab_size, cfg.d_model)
        real_neighbours = np.load(os.path.join(args.retrieval, 'neighbours.npy'))
        # token-aligned neighbours (retrolab.neighbours): neighbours.npy holds train positions, not datastore chunks.
        aligned = retrieval_rule().get('aligned', False)

    n_stream_chunks = len(train.ids) // C
    max_start_chunk = n_stream_chunks - (context // C) - 2

    def lr_at(s: int) -> float:
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        progress = (s - args.warmup) / max(1, total_steps - args.warmup)
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def batch_at(s: int):
        # The batch depends only on (seed, step): GPT and RETRO see the same windows in the same order.
        rng = np.random.default_rng(args.seed * 1_000_003 + s)
        start_chunks = rng.integers(0, max_start_chunk, size=args.batch)
        x = np.stack([train.ids[c * C: c * C + context] for c in start_chunks])
        y = np.stack([train.ids[c * C + 1: c * C + context + 1] for c in start_chunks])
        neighbours = None
        oracle_share = None
        if args.stage == 'retro':
            U = context // C
            nrng = np.random.default_rng(args.seed * 7_000_003 + s)
            chunk_ids = start_chunks[:, None] + np.arange(U)[None, :]  # (B, U) stream chunk index
            if aligned:
                neighbours = aligned_rows(train.ids, real_neighbours[chunk_ids], C)  # (B, U, K, 2C)
            else:
                neighbours = store.neighbour_tokens[real_neighbours[chunk_ids]]  # (B, U, K, 2C)
            frac = s / max(1, total_steps - 1)
            oracle_share = args.oracle_start + (args.oracle_end - args.oracle_start) * frac
            use_oracle = nrng.random((args.batch, U)) < oracle_share
            slot = nrng.integers(0, args.k, size=(args.batch, U))
            shifted = nrng.random((args.batch, U)) < args.oracle_shift
            shift = nrng.integers(1, args.oracle_shift_max + 1, size=(args.batch, U)) * nrng.choice([-1, 1], size=(args.batch, U))
            for b in range(args.batch):
                for u in range(U):
                    if use_oracle[b, u]:
                        pos = chunk_ids[b, u] * C + (shift[b, u] if shifted[b, u] else 0)
                        pos = max(0, pos)
                        neighbours[b, u, slot[b, u]] = train.ids[pos: pos + 2 * C]
        return (torch.from_numpy(x), torch.from_numpy(y),
                None if neighbours is None else torch.from_numpy(neighbours), oracle_share)

    tracking = None
    if aligned and args.eval_windows > 0:
        tracking = TrackingEval(model, train.ids, valid, args.retrieval, args.eval_windows, args.eval_window_step)

    def evaluate(s: int):
        if aligned:
            if tracking is not None:
                log({'event': 'eval', 'step': s, 'windows': len(tracking.windows), **tracking(model)})
            return
        record = {'event': 'eval', 'step': s, 'windows': args.eval_windows, 'window_step': args.eval_window_step}
        spread = {'max_windows': args.eval_windows, 'window_step': args.eval_window_step}
        with torch.autocast('cpu', dtype=torch.bfloat16):
            if args.stage == 'gpt':
                record['valid_ppl'] = perplexity(model, valid, context, context // 2, **spread)['token_ppl']
            else:
                for name, st, mode in [('real', store, 'real'), ('random', store, 'random'), ('leak', leak_store, 'real')]:
                    record[f'valid_ppl_{name}'] = perplexity(model, valid, context, context // 2, st, embedder, mode,
                                                             **spread)['token_ppl']
                if args.freeze_decoder:
                    # The decoder is the GPT's, so this is the GPT on the same windows.
                    record['valid_ppl_no_retrieval'] = perplexity(model, valid, context, context // 2,
                                                                  **spread)['token_ppl']
        model.train()
        log(record)

    if step == 0 and args.freeze_decoder:
        evaluate(0)  # RETRO must start as its GPT: real = random = no retrieval
    model.train()
    run_start, elapsed_at_start = time.time(), elapsed
    t0, tokens_since, loss_sum, loss_n = time.time(), 0, 0.0, 0
    last_step = min(total_steps, args.stop_at_step) if args.stop_at_step > 0 else total_steps
    while step < last_step:
        for group in opt.param_groups:
            group['lr'] = lr_at(step) * group.get('lr_mult', 1.0)
        x, y, neighbours, oracle_share = batch_at(step)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            if neighbours is None:
                logits = model(x)[0]
            else:
                logits = model.retro_forward(x, neighbours)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        step += 1
        tokens_since += x.numel()
        loss_sum += float(loss)
        loss_n += 1
        if step % 25 == 0:
            dt = time.time() - t0
            log({'event': 'train', 'step': step, 'of': total_steps, 'loss': loss_sum / loss_n, 'lr': lr_at(step),
                 'tokens_per_s': tokens_since / dt, 'oracle_share': oracle_share})
            t0, tokens_since, loss_sum, loss_n = time.time(), 0, 0.0, 0
        if step % args.checkpoint_every == 0 or step == last_step:
            tmp = ckpt_path + '.tmp'
            elapsed = elapsed_at_start + time.time() - run_start
            torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(), 'step': step,
                        'elapsed': elapsed}, tmp)
            os.replace(tmp, ckpt_path)
        if step % args.eval_every == 0 or step == last_step:
            evaluate(step)
    elapsed = elapsed_at_start + time.time() - run_start
    record = {'stage': args.stage, 'data': 'WikiText-2 train (wiki.train.tokens, 629 articles)',
              'tokens': last_step * tokens_per_step, 'steps': last_step, 'batch': args.batch,
              **({'schedule_steps': total_steps} if last_step < total_steps else {}),
              'context': context, 'lr': args.lr, 'warmup': args.warmup, 'schedule': 'cosine to 10%',
              'precision': 'bf16 autocast on CPU', 'threads': args.threads, 'wall_seconds': round(elapsed),
              'seed': args.seed}
    if args.stage == 'retro':
        record['recipe'] = {
            'method': ('RETRO-fitting (RETRO paper, section 4.2): the decoder is the shipped GPT, frozen, so it is '
                       'identical in both models; only the neighbour encoder (initialised from the GPT blocks 0-1) '
                       f'and the CCA train, at learning rate {args.lr * args.new_lr_mult:g}, on the GPT '
                       "continuation's own batches in the same order"
                       if args.freeze_decoder else
                       'RETRO-fitting: decoder initialised from the base GPT and trained on the same schedule as '
                       'the GPT continuation; neighbour encoder (initialised from the GPT blocks 0-1) and CCA '
                       f'trained at {args.new_lr_mult}x learning rate'),
            'decoder_frozen': bool(args.freeze_decoder),
            'oracle_share_start': args.oracle_start, 'oracle_share_end': args.oracle_end,
            'oracle_shifted_share': args.oracle_shift,
            'oracle_shift_max': args.oracle_shift_max,
            'oracle_definition': 'one of the k neighbour slots (random) holds the query chunk followed by its true '
                                 'continuation, as a datastore holding the document returns it; a shifted oracle '
                                 f'starts 1..{args.oracle_shift_max} tokens earlier or later',
            'real_neighbours': ('token-aligned (retrolab.neighbours): the query is the GPT\'s knn_key at the chunk\'s '
                                'last token, searched (faiss IVF, 1024 lists, '
                                f"{retrieval_rule().get('probes')} probes) over the keys of every train position; a "
                                'match at p gives the chunk tokens ending at p and the chunk tokens after it; never '
                                "a position in the query's own article (RETRO's strict rule)"
                                if aligned else
                                'exact cosine search over the train datastore with the frozen embedder; never the '
                                'chunk itself or any chunk overlapping the query chunk or its continuation'
                                + (" (nor any chunk of the same article: RETRO's strict rule)"
                                   if retrieval_rule().get('exclude_same_document') else '')),
            'cca_initialisation': f'copy prior {args.copy_prior} on the aligned continuation position; null slot '
                                  f'(learned key, zero value) with the same initial bias'
                                  + (f'; token-match features, scale {args.match_scale}' if args.token_match else ''),
        }
    if args.init:
        base = torch.load(args.init, map_location='cpu').get('training')
        if base:
            record['base'] = base
            if args.freeze_decoder:
                # The retrieval parameters saw tokens the decoder had already trained on: no new data.
                record['total_tokens'] = base.get('total_tokens', base['tokens'])
                record['retrieval_parameter_tokens'] = record['tokens']
            else:
                record['total_tokens'] = base.get('total_tokens', base['tokens']) + record['tokens']
    record.setdefault('total_tokens', record['tokens'])
    save_model(model, os.path.join(args.out, 'model.pt'), {'training': record})
    with open(os.path.join(args.out, 'training.json'), 'w') as f:
        json.dump(record, f, indent=2)
    log({'event': 'done', 'steps': total_steps})


if __name__ == '__main__':
    main()
