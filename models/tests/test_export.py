"""The GPT export's graph layout: per-layer KV cache in the Hugging Face names and one fused
attention op per layer (retrolab.export.per_layer_cache, fuse_attention). onnxruntime is not
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
from retrolab.model import Decoder, GPTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT_DIR = os.path.join(os.path.dirname(ROOT), 'public', 'models', 'gpt-wt2')


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
