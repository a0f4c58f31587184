"""The decoder exports' graph layout (GPT and RETRO): per-layer KV cache in the Hugging Face names
and one fused attention op per layer (retrolab.export.per_layer_cache, fuse_attention). onnxruntime is not
installed for Python here, so the numbers are checked on the TypeScript side (the shipped graph
through onnxruntime-web against the parity fixture, and against transformers.js)."""
from __future__ import annotations

import json
import os
from collections import Counter

import onnx
import pytest
import torch

from retrolab.export import export_decoder, fuse_attention, per_layer_cache, quantize_int8
from retrolab.model import Decoder, GPTConfig, RetroConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT_DIR = os.path.join(os.path.dirname(ROOT), 'public', 'models', 'gpt-wt2')
RETRO_DIR = os.path.join(os.path.dirname(ROOT), 'public', 'models', 'retro-wt2')


def io_names(model):
    return [v.name for v in model.graph.input], [v.name for v in model.graph.output]


def dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.fixture(scope='module')
def tiny_export(tmp_path_factory):
    torch.manual_seed(0)
    model = Decoder(GPTConfig(vocab_size=512, context=32, n_layer=3, n_head=4, d_model=64)).eval()
    path = str(tmp_path_factory.mktemp('export') / 'decoder.fp32.onnx')
    export_decoder(model, path)
    return path


def expected_names(n_layer):
    inputs = ['input_ids'] + [f'past_key_values.{i}.{k}' for i in range(n_layer) for k in ('key', 'value')]
    outputs = ['logits'] + [f'present.{i}.{k}' for i in range(n_layer) for k in ('key', 'value')] + ['knn_key']
    return inputs, outputs


def test_gpt_export_has_a_cache_tensor_per_layer_in_hugging_face_names(tiny_export):
    model = onnx.load(tiny_export)
    assert io_names(model) == expected_names(3)
    past = {v.name: v for v in model.graph.input}['past_key_values.2.value']
    present = {v.name: v for v in model.graph.output}['present.0.key']
    assert dims(past) == ['batch_size', 4, 'past_sequence_length', 16]
    assert dims(present) == ['batch_size', 4, 'total_sequence_length', 16]


def test_gpt_export_fuses_attention_and_drops_the_split_and_join(tiny_export):
    ops = Counter(n.op_type for n in onnx.load(tiny_export).graph.node)
    assert ops['MultiHeadAttention'] == 3
    # What the traced attention needed per layer is gone: the mask, the softmax, the cache concat.
    assert ops['Softmax'] == ops['Where'] == ops['LessOrEqual'] == ops['Concat'] == 0
    mha = [n for n in onnx.load(tiny_export).graph.node if n.op_type == 'MultiHeadAttention'][0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in mha.attribute}
    assert attrs['num_heads'] == 4 and attrs['unidirectional'] == 1
    assert abs(attrs['scale'] - 16 ** -0.5) < 1e-7
    assert mha.input[3].endswith('qkv.bias')  # the bias Add moved into the op


def test_quantization_keeps_the_layout(tiny_export, tmp_path):
    dst = str(tmp_path / 'decoder.int8.onnx')
    quantize_int8(tiny_export, dst)
    assert io_names(onnx.load(dst)) == expected_names(3)


def test_rewriting_twice_is_refused(tiny_export):
    with pytest.raises(ValueError, match='no stacked past_key'):
        per_layer_cache(onnx.load(tiny_export))


def test_the_shipped_gpt_is_in_the_new_layout_and_names_the_graph_whose_keys_it_keeps():
    with open(os.path.join(GPT_DIR, 'manifest.json')) as f:
        manifest = json.load(f)
    spec = manifest['onnx']['decoder']
    graph = onnx.load(os.path.join(GPT_DIR, spec['file']), load_external_data=False)
    assert io_names(graph) == expected_names(manifest['hyperparameters']['n_layer'])
    assert [v['name'] for v in spec['inputs']] == expected_names(manifest['hyperparameters']['n_layer'])[0]
    assert spec['same_keys_as'] and spec['sha256'] not in spec['same_keys_as']
    with open(os.path.join(GPT_DIR, 'config.json')) as f:
        config = json.load(f)
    hp = manifest['hyperparameters']
    assert (config['model_type'], config['n_layer'], config['n_head'], config['n_embd'], config['vocab_size']) == \
        ('gpt2', hp['n_layer'], hp['n_head'], hp['d_model'], hp['vocab_size'])


RETRO_OTHER_INPUTS = ['input_ids', 'cca_key', 'cca_value', 'chunk_start', 'previous_ids']


def expected_retro_names(n_layer):
    cache = [(f'past_key_values.{i}.{k}', f'present.{i}.{k}') for i in range(n_layer) for k in ('key', 'value')]
    return RETRO_OTHER_INPUTS + [p for p, _ in cache], ['logits'] + [q for _, q in cache]


@pytest.fixture(scope='module')
def tiny_retro_export(tmp_path_factory):
    torch.manual_seed(0)
    cfg = RetroConfig(vocab_size=512, context=32, n_layer=3, n_head=4, d_model=64, chunk=4, neighbours=2,
                      neighbour_len=8, cca_layers=[1, 2], encoder_layers=1, token_match=True, match_ngram=3)
    path = str(tmp_path_factory.mktemp('export') / 'retro.decoder.fp32.onnx')
    export_decoder(Decoder(cfg).eval(), path)
    return path


def test_retro_export_has_the_gpt_cache_layout_after_its_own_inputs(tiny_retro_export):
    model = onnx.load(tiny_retro_export)
    assert io_names(model) == expected_retro_names(3)
    past = {v.name: v for v in model.graph.input}['past_key_values.1.key']
    assert dims(past) == ['batch_size', 4, 'past_sequence_length', 16]


def test_retro_export_fuses_self_attention_and_keeps_the_chunked_cross_attention(tiny_retro_export):
    ops = Counter(n.op_type for n in onnx.load(tiny_retro_export).graph.node)
    assert ops['MultiHeadAttention'] == 3
    # One softmax per CCA layer is left: the cross-attention is not a causal self-attention.
    assert ops['Softmax'] == 2 and ops['LessOrEqual'] == 0


def test_retro_quantization_keeps_the_layout(tiny_retro_export, tmp_path):
    dst = str(tmp_path / 'retro.decoder.int8.onnx')
    quantize_int8(tiny_retro_export, dst)
    assert io_names(onnx.load(dst)) == expected_retro_names(3)


def test_the_shipped_retro_is_in_the_new_layout_and_still_queries_the_gpt_keys():
    with open(os.path.join(RETRO_DIR, 'manifest.json')) as f:
        manifest = json.load(f)
    spec = manifest['onnx']['decoder']
    model = onnx.load(os.path.join(RETRO_DIR, spec['file']), load_external_data=False)
    names = expected_retro_names(manifest['hyperparameters']['n_layer'])
    assert io_names(model) == names
    assert [v['name'] for v in spec['inputs']] == names[0] and [v['name'] for v in spec['outputs']] == names[1]
    assert sum(n.op_type == 'MultiHeadAttention' for n in model.graph.node) == manifest['hyperparameters']['n_layer']
    assert 'same_keys_as' not in spec  # RETRO has no knn_key; nothing is keyed by its decoder
    with open(os.path.join(GPT_DIR, 'manifest.json')) as f:
        gpt = json.load(f)['onnx']['decoder']
    # The query keys are the GPT's: its current graph or one it names as computing the same keys.
    assert manifest['retrieval']['query_decoder_sha256'] in [gpt['sha256'], *gpt.get('same_keys_as', [])]
