"""Rewrites a shipped GPT's decoder graph in place into the decode-friendly layout export_decoder now
writes, without re-exporting: one KV-cache tensor per layer in the Hugging Face names
(past_key_values.{i}.key/value -> present.{i}.key/value) and one MultiHeadAttention per layer.
The weights and the arithmetic are untouched (the same int8 initializers, the same ops fused), so
the knn_key keys stay those of the old graph: its sha256 is kept in the manifest's
onnx.decoder.same_keys_as, which the kNN-LM datastores keyed by it are checked against.

Also writes the Hugging Face files (config.json, generation_config.json, tokenizer_config.json)
with which transformers.js loads the same decoder (docs/manifest.md).

usage: python3 -m retrolab.relayout --dir ../public/models/gpt-wt2
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
    p.add_argument('--dir', required=True, help='public/models/<id> of a GPT')
    args = p.parse_args()
    manifest_path = os.path.join(args.dir, 'manifest.json')
    with open(manifest_path) as f:
        manifest = json.load(f)
    if manifest['architecture'] != 'gpt':
        raise SystemExit('only the GPT decoder has this layout')
    spec = manifest['onnx']['decoder']
    old_sha = spec['sha256']
    relayout(os.path.join(args.dir, spec['file']), manifest['hyperparameters']['n_head'])
    new_spec = graph_spec(os.path.join(args.dir, spec['file']))
    new_spec['same_keys_as'] = sorted(set(spec.get('same_keys_as', [])) | {old_sha})
    manifest['onnx']['decoder'] = new_spec
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f, indent=2)
    write_hf_files(manifest, args.dir)
    print(json.dumps({'file': spec['file'], 'sha256': new_spec['sha256'], 'bytes': new_spec['bytes'],
                      'same_keys_as': new_spec['same_keys_as']}))


if __name__ == '__main__':
    main()
