"""Rewrites a shipped decoder graph (GPT or RETRO) in place into the decode-friendly layout
export_decoder now writes, without re-exporting: one KV-cache tensor per layer in the Hugging Face
names (past_key_values.{i}.key/value -> present.{i}.key/value) and one MultiHeadAttention per layer.
The weights and the arithmetic are untouched (the same int8 initializers, the same ops fused).

GPT: its knn_key keys stay those of the old graph, so the old sha256 goes into the manifest's
onnx.decoder.same_keys_as, which kNN-LM datastores and RETRO's retrieval.query_decoder_sha256 are
checked against; also writes the Hugging Face files (config.json, generation_config.json,
tokenizer_config.json) with which transformers.js loads the same decoder (docs/manifest.md).
RETRO: nothing is keyed by its decoder's sha256 (it has no knn_key), so only the graph spec changes;
the encoder is left alone. RETRO's cache is its self-attention's, which is the GPT's (a frozen copy of
the GPT's decoder): the same two rewrites apply, the chunked cross-attention stays as traced.

usage: python3 -m retrolab.relayout --dir ../public/models/gpt-wt2
       python3 -m retrolab.relayout --dir ../public/models/retro-wt2
"""
from __future__ import annotations

import argparse
import json
import os

import onnx

from .export import fuse_attention, per_layer_cache
from .ship import graph_spec, write_hf_files


def relayout(path: str, n_head: int) -> None:
    model = fuse_attention(per_layer_cache(onnx.load(path)), n_head)
    onnx.save(model, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--dir', required=True, help='public/models/<id> of a GPT or a RETRO')
    args = p.parse_args()
    manifest_path = os.path.join(args.dir, 'manifest.json')
    with open(manifest_path) as f:
        manifest = json.load(f)
    architecture = manifest['architecture']
    if architecture not in ('gpt', 'retro'):
        raise SystemExit(f'unknown architecture {architecture}')
    spec = manifest['onnx']['decoder']
    old_sha = spec['sha256']
    relayout(os.path.join(args.dir, spec['file']), manifest['hyperparameters']['n_head'])
    new_spec = graph_spec(os.path.join(args.dir, spec['file']))
    if architecture == 'gpt':
        new_spec['same_keys_as'] = sorted(set(spec.get('same_keys_as', [])) | {old_sha})
    manifest['onnx']['decoder'] = new_spec
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')  # as npm run eval writes it
    if architecture == 'gpt':
        write_hf_files(manifest, args.dir)
    print(json.dumps({'file': spec['file'], 'old_sha256': old_sha, 'sha256': new_spec['sha256'], 'bytes': new_spec['bytes'],
                      **({'same_keys_as': new_spec['same_keys_as']} if architecture == 'gpt' else {})}))


if __name__ == '__main__':
    main()
