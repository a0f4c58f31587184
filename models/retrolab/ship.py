"""Ships trained models to public/models/<id>/: int8 ONNX graphs, tokenizer, embedder, manifest,
model card, plus the fp16 PyTorch checkpoint (models/checkpoints/) and parity fixtures
(models/fixtures/) that CI checks the ONNX files against.

Metrics in the manifest are NOT computed here: `npm run eval -- --write-metrics` measures them on
the shipped files and writes them in; an existing manifest's metrics are kept.

usage: python3 -m retrolab.ship --model .work/gpt/model.pt --id gpt-wt2 --tokenizer .work/tokenizer.json \
         [--embedder .work/retrieval/embedder.bin] --public ../public/models --repo-models .
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil

import numpy as np
import onnx
import torch

from .data import load_split
from .export import export_decoder, export_encoder, quantize_int8
from .model import Decoder, count_parameters
from .checkpoint import load_model

FORMAT_VERSION = 1
TOKENIZER_ID = 'bpe8k-wikitext2-v1'
EMBEDDER_ID = 'mean-idf-centred-tokemb-gpt-wt2-base-int8-v1'


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def graph_spec(path: str) -> dict:
    model = onnx.load(path, load_external_data=False)

    def tensor(v):
        t = v.type.tensor_type
        dtype = {onnx.TensorProto.INT64: 'int64', onnx.TensorProto.FLOAT: 'float32'}[t.elem_type]
        shape = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
        return {'name': v.name, 'dtype': dtype, 'shape': shape}

    return {'file': os.path.basename(path), 'bytes': os.path.getsize(path), 'sha256': sha256(path),
            'inputs': [tensor(v) for v in model.graph.input], 'outputs': [tensor(v) for v in model.graph.output]}


def write_hf_files(manifest: dict, out: str) -> None:
    """A GPT-2 style config.json, generation_config.json and tokenizer_config.json beside the
    decoder, so transformers.js (`@huggingface/transformers`) loads the shipped files as a `gpt2`
    model: from_pretrained(id, {subfolder: '', model_file_name: 'decoder.int8', dtype: 'fp32'}).
    It feeds the per-layer cache by the names past_key_values.{i}.key/value and sizes an empty one
    from n_layer, n_head and n_embd (src/core/models/transformers-js.test.ts loads it)."""
    hp, tok = manifest['hyperparameters'], manifest['tokenizer']
    config = {
        'model_type': 'gpt2', 'architectures': ['GPT2LMHeadModel'],
        'vocab_size': hp['vocab_size'], 'n_positions': hp['context'], 'n_ctx': hp['context'],
        'n_embd': hp['d_model'], 'n_layer': hp['n_layer'], 'n_head': hp['n_head'],
        'n_inner': 4 * hp['d_model'], 'activation_function': 'gelu', 'layer_norm_epsilon': 1e-5,
        'tie_word_embeddings': True, 'bos_token_id': tok['eot_id'], 'eos_token_id': tok['eot_id'],
        'use_cache': True,
    }
    generation = {'bos_token_id': tok['eot_id'], 'eos_token_id': tok['eot_id'], 'do_sample': False}
    tokenizer = {'tokenizer_class': 'GPT2Tokenizer', 'model_max_length': hp['context'],
                 'bos_token': '<|endoftext|>', 'eos_token': '<|endoftext|>', 'unk_token': '<unk>',
                 'add_prefix_space': False, 'clean_up_tokenization_spaces': False}
    for name, blob in (('config.json', config), ('generation_config.json', generation),
                       ('tokenizer_config.json', tokenizer)):
        with open(os.path.join(out, name), 'w') as f:
            json.dump(blob, f, indent=2)
            f.write('\n')


def int8_simulated(model: Decoder) -> Decoder:
    """A PyTorch copy whose 2-D weights went through the same int8 per-channel rounding as the ONNX
    export, so PyTorch can predict what the int8 graph computes."""
    sim = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in sim.named_parameters():
            if p.dim() != 2 or p.numel() < 4096:
                continue
            # Embeddings are scaled per row (Gather and the tied output matrix); Linear weights
            # (out, in) per output row too, which is the exported MatMul's per-column scale.
            scale = p.abs().amax(dim=1, keepdim=True) / 127.0
            scale = torch.where(scale == 0, torch.ones_like(scale), scale)
            p.copy_(torch.clamp(torch.round(p / scale), -127, 127) * scale)
    return sim


@torch.no_grad()
def parity_fixture(model: Decoder, data_dir: str, n_tokens: int = 80) -> dict:
    valid = load_split(data_dir, 'valid')
    ids = torch.from_numpy(valid.ids[1000: 1000 + n_tokens]).long()[None]
    fixture: dict = {'input_ids': ids[0].tolist()}
    sim = int8_simulated(model).eval()
    model.eval()
    if model.is_retro:
        cfg = model.cfg
        U = max(1, n_tokens // cfg.chunk)
        # Neighbours taken from elsewhere in valid: real text, fixed, so the test is deterministic.
        rows = [valid.ids[5000 + 97 * j: 5000 + 97 * j + cfg.neighbour_len] for j in range(U * cfg.neighbours)]
        nb = torch.from_numpy(np.stack(rows)).long().view(1, U, cfg.neighbours, cfg.neighbour_len)
        if model.match_ngram() > 1 or cfg.chunk_agreement:
            # Every other chunk retrieves its own text and continuation (first slot), so the n-gram
            # match and the agreement gate are compared where they fire, not only where nothing agrees.
            own = valid.ids[1000: 1000 + n_tokens + cfg.neighbour_len]
            for u in range(0, U, 2):
                nb[0, u, 0] = torch.from_numpy(own[u * cfg.chunk: u * cfg.chunk + cfg.neighbour_len].astype(np.int64))
        fixture['neighbour_ids'] = nb[0].tolist()
        fp32 = model.retro_forward(ids, nb)[0]
        int8 = sim.retro_forward(ids, nb)[0]
    else:
        fp32 = model(ids)[0][0]
        int8 = sim(ids)[0][0]
    positions = sorted({0, 5, 30, 31, 32, 33, 47, 63, 64, n_tokens - 1})
    fixture['positions'] = positions
    fixture['logits_fp32_torch'] = [[round(float(x), 5) for x in fp32[p]] for p in positions]
    fixture['logits_int8_torch'] = [[round(float(x), 5) for x in int8[p]] for p in positions]
    diff = float((fp32 - int8).abs().max())
    fixture['max_abs_diff_fp32_vs_int8_torch'] = diff
    # ONNX int8 must match the int8-simulated PyTorch closely (only float32 summation order differs:
    # 3.0e-3 measured on the chunk-8 RETRO);
    # against fp32 the bound is the quantization error measured here plus slack.
    fixture['tolerance_int8_vs_int8_torch'] = 5e-3
    fixture['tolerance_int8_vs_fp32_torch'] = round(diff * 1.5 + 0.01, 4)
    return fixture


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', required=True)
    p.add_argument('--id', required=True)
    p.add_argument('--name', required=True)
    p.add_argument('--tokenizer', required=True)
    p.add_argument('--embedder', required=True)
    p.add_argument('--query-model', help='token-aligned RETRO: id of the shipped GPT whose knn_key is the query')
    p.add_argument('--data', required=True)
    p.add_argument('--public', required=True, help='public/models')
    p.add_argument('--repo-models', required=True, help='the models/ directory (checkpoints, fixtures)')
    p.add_argument('--work', required=True, help='scratch directory for fp32 exports')
    p.add_argument('--training-json', help='JSON file with the training record for the manifest')
    args = p.parse_args()

    model = load_model(args.model).eval()
    # Everything shipped derives from the fp16 checkpoint committed to models/checkpoints, so CI can
    # rebuild the exact PyTorch reference from it.
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    cfg = model.cfg
    out = os.path.join(args.public, args.id)
    os.makedirs(out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)

    onnx_specs = {}
    graphs = [('decoder', export_decoder)] + ([('encoder', export_encoder)] if model.is_retro else [])
    for name, export in graphs:
        fp32_path = os.path.join(args.work, f'{args.id}.{name}.fp32.onnx')
        export(model, fp32_path)
        int8_path = os.path.join(out, f'{name}.int8.onnx')
        quantize_int8(fp32_path, int8_path)
        onnx_specs[name] = graph_spec(int8_path)

    shutil.copyfile(args.tokenizer, os.path.join(out, 'tokenizer.json'))
    if model.is_retro:  # the GPT needs no retrieval embedder; one copy keeps the download small
        shutil.copyfile(args.embedder, os.path.join(out, 'embedder.bin'))

    fixture = parity_fixture(model, args.data)
    os.makedirs(os.path.join(args.repo_models, 'fixtures'), exist_ok=True)
    with open(os.path.join(args.repo_models, 'fixtures', f'{args.id}.parity.json'), 'w') as f:
        json.dump(fixture, f)

    os.makedirs(os.path.join(args.repo_models, 'checkpoints'), exist_ok=True)
    blob = torch.load(args.model, map_location='cpu')
    blob['model'] = {k: v.half() if v.is_floating_point() else v for k, v in blob['model'].items()}
    torch.save(blob, os.path.join(args.repo_models, 'checkpoints', f'{args.id}.fp16.pt'))

    manifest_path = os.path.join(out, 'manifest.json')
    old_metrics = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old_metrics = json.load(f).get('metrics', {})
    hp = {k: v for k, v in cfg.to_dict().items()}
    hp['head_dim'] = cfg.d_model // cfg.n_head
    training = {}
    if args.training_json:
        with open(args.training_json) as f:
            training = json.load(f)
    manifest = {  # the key order is the documented one (docs/manifest.md)
        'format_version': FORMAT_VERSION,
        'id': args.id,
        'name': args.name,
        'architecture': 'retro' if model.is_retro else 'gpt',
        'parameters': count_parameters(model),
        'hyperparameters': hp,
        'tokenizer': {'file': 'tokenizer.json', 'id': TOKENIZER_ID, 'unk_id': 0, 'eot_id': 1,
                      'vocab_size': cfg.vocab_size},
        'embedder': None if not model.is_retro else {'id': EMBEDDER_ID, 'file': 'embedder.bin', 'vocab_size': cfg.vocab_size, 'dim': cfg.d_model,
                     'pooling': 'mean', 'normalize': True, 'layout': 'int8-rows+f32-scales'},
        'onnx': onnx_specs,
        'quantization': {'method': 'int8-weight-only-per-channel-dq',
                         'fp32_reference_max_abs_logit_diff': fixture['max_abs_diff_fp32_vs_int8_torch']},
        'training': training,
        'metrics': old_metrics,
    }
    if manifest['embedder'] is None:
        del manifest['embedder']
    if not model.is_retro:
        write_hf_files(manifest, out)
    if args.query_model:
        with open(os.path.join(args.public, args.query_model, 'manifest.json')) as f:
            query_sha = json.load(f)['onnx']['decoder']['sha256']
        ordered = {}
        for key, value in manifest.items():
            if key == 'onnx':  # the documented order: retrieval just before the graphs
                ordered['retrieval'] = {'kind': 'token-aligned', 'query_model': args.query_model,
                                        'query_decoder_sha256': query_sha}
            ordered[key] = value
        manifest = ordered
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f, indent=2)
    index_path = os.path.join(args.public, 'index.json')
    index = {'models': []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index['models'] = sorted(set(index['models']) | {args.id})
    with open(index_path, 'w') as f:
        json.dump(index, f, indent=2)
    sizes = {s['file']: s['bytes'] for s in onnx_specs.values()}
    print(json.dumps({'shipped': args.id, 'onnx_bytes': sizes, 'fp32_vs_int8_max_abs_logit_diff':
                      fixture['max_abs_diff_fp32_vs_int8_torch']}))


if __name__ == '__main__':
    main()
