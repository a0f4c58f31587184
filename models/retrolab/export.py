"""ONNX export (opset 17) of GPT and RETRO with KV caches, plus int8 weight-only quantization.

Graphs and their names are the contract with the app (docs/manifest.md):
  GPT    decoder:  input_ids, past_key, past_value -> logits, present_key, present_value, knn_key
  RETRO  encoder:  neighbour_ids [, chunk_ids when hyperparameters.chunk_agreement] -> cca_key, cca_value
                   (once per completed chunk)
         decoder:  input_ids, past_key, past_value, cca_key, cca_value, chunk_start
                   [, previous_ids when hyperparameters.match_ngram > 1]
                   -> logits, present_key, present_value
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto

from .model import Decoder

OPSET = 17


class GPTStep(torch.nn.Module):
    def __init__(self, model: Decoder):
        super().__init__()
        self.model = model

    def forward(self, input_ids, past_key, past_value):
        logits, present_key, present_value, knn_key = self.model(input_ids, past_key, past_value)
        return logits, present_key, present_value, knn_key


class RetroEncoderGraph(torch.nn.Module):
    def __init__(self, model: Decoder):
        super().__init__()
        self.model = model

    def forward(self, neighbour_ids, chunk_ids=None):
        return self.model.encode_neighbours(neighbour_ids, chunk_ids)


class RetroStep(torch.nn.Module):
    def __init__(self, model: Decoder):
        super().__init__()
        self.model = model

    def forward(self, input_ids, past_key, past_value, cca_key, cca_value, chunk_start, previous_ids=None):
        logits, present_key, present_value, _ = self.model(input_ids, past_key, past_value, cca_key, cca_value,
                                                           chunk_start, previous_ids=previous_ids)
        return logits, present_key, present_value


def example_inputs(model: Decoder, T: int = 5, P: int = 3, U: int = 1):
    cfg = model.cfg
    H, D = cfg.n_head, cfg.d_model // cfg.n_head
    ids = torch.randint(0, cfg.vocab_size, (1, T))
    past = torch.zeros(cfg.n_layer, 1, H, P, D)
    if not model.is_retro:
        return ids, past, past.clone()
    n_cca = len(cfg.cca_layers)
    KL = cfg.neighbours * cfg.neighbour_len
    cca = torch.zeros(n_cca, 1, U, H, KL, D)
    inputs = (ids, past, past.clone(), cca, cca.clone(), torch.tensor(0, dtype=torch.int64))
    lags = model.match_ngram() - 1
    if lags > 0:  # the n-1 tokens before input position 0, oldest first; -1 where there is none
        inputs += (torch.randint(-1, cfg.vocab_size, (1, lags)),)
    return inputs


def export_decoder(model: Decoder, path: str):
    model.eval()
    past_axes = {1: 'batch', 3: 'past'}
    present_axes = {1: 'batch', 3: 'total'}
    if model.is_retro:
        wrapper = RetroStep(model)
        inputs = ['input_ids', 'past_key', 'past_value', 'cca_key', 'cca_value', 'chunk_start']
        outputs = ['logits', 'present_key', 'present_value']
        cca_axes = {1: 'batch', 2: 'chunks'}
        axes = {'input_ids': {0: 'batch', 1: 'tokens'}, 'past_key': past_axes, 'past_value': past_axes,
                'cca_key': cca_axes, 'cca_value': cca_axes, 'logits': {0: 'batch', 1: 'tokens'},
                'present_key': present_axes, 'present_value': present_axes}
        if model.match_ngram() > 1:
            inputs.append('previous_ids')
            axes['previous_ids'] = {0: 'batch'}
    else:
        wrapper = GPTStep(model)
        inputs = ['input_ids', 'past_key', 'past_value']
        outputs = ['logits', 'present_key', 'present_value', 'knn_key']
        axes = {'input_ids': {0: 'batch', 1: 'tokens'}, 'past_key': past_axes, 'past_value': past_axes,
                'logits': {0: 'batch', 1: 'tokens'}, 'present_key': present_axes, 'present_value': present_axes,
                'knn_key': {0: 'batch', 1: 'tokens'}}
    torch.onnx.export(wrapper, example_inputs(model), path, input_names=inputs, output_names=outputs,
                      dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True)
    postprocess(path)


def export_encoder(model: Decoder, path: str):
    model.eval()
    cfg = model.cfg
    ids = torch.randint(0, cfg.vocab_size, (1, 2, cfg.neighbours, cfg.neighbour_len))
    axes = {'neighbour_ids': {0: 'batch', 1: 'chunks'}, 'cca_key': {1: 'batch', 2: 'chunks'},
            'cca_value': {1: 'batch', 2: 'chunks'}}
    inputs, names = (ids,), ['neighbour_ids']
    if cfg.chunk_agreement or cfg.query_prefix:
        # the retrieving chunks; the first one agrees with its first neighbour, so the trace sees equality
        chunk_ids = torch.randint(0, cfg.vocab_size, (1, 2, cfg.chunk))
        chunk_ids[0, 0] = ids[0, 0, 0, :cfg.chunk]
        inputs, names = (ids, chunk_ids), ['neighbour_ids', 'chunk_ids']
        axes['chunk_ids'] = {0: 'batch', 1: 'chunks'}
    torch.onnx.export(RetroEncoderGraph(model), inputs, path, input_names=names,
                      output_names=['cca_key', 'cca_value'], dynamic_axes=axes, opset_version=OPSET,
                      do_constant_folding=True)
    postprocess(path)


def postprocess(path: str):
    """Reshape allowzero=1 (a zero-length axis must stay zero, not copy the input's dimension) and
    one copy of the tied embedding: constant folding stores wte and wte^T separately."""
    model = onnx.load(path)
    graph = model.graph
    for node in graph.node:
        if node.op_type == 'Reshape':
            for attr in node.attribute:
                if attr.name == 'allowzero':
                    attr.i = 1
                    break
            else:
                node.attribute.append(helper.make_attribute('allowzero', 1))
    inits = {init.name: init for init in graph.initializer}
    arrays = {name: numpy_helper.to_array(init) for name, init in inits.items() if init.data_type == TensorProto.FLOAT}
    matrices = {name: a for name, a in arrays.items() if a.ndim == 2}
    by_shape: dict[tuple, list[str]] = {}
    for name, a in matrices.items():
        by_shape.setdefault(a.shape, []).append(name)
    replaced = {}
    for name, a in matrices.items():
        for other in by_shape.get(a.shape[::-1], []):
            if other != name and other not in replaced and name not in replaced and a.shape[0] > a.shape[1] \
                    and np.array_equal(a.T, matrices[other]):
                replaced[other] = name
    for transposed, source in replaced.items():
        graph.initializer.remove(inits[transposed])
        graph.node.insert(0, helper.make_node('Transpose', [source], [transposed], perm=[1, 0],
                                              name=f'tied_{transposed}'))
    onnx.checker.check_model(model)
    onnx.save(model, path)


def quantize_int8(src: str, dst: str, min_elements: int = 4096) -> dict:
    """Weight-only int8: every large 2-D float initializer becomes int8 + per-channel scales feeding a
    DequantizeLinear. Embedding tables (Gather inputs) are scaled per row, MatMul weights per output
    column."""
    model = onnx.load(src)
    graph = model.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    new_nodes, quantized = [], 0
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(init)
        if w.ndim != 2 or w.size < min_elements:
            continue
        uses = consumers.get(init.name, [])
        gather = any(n.op_type == 'Gather' for n, _ in uses)
        axis = 0 if gather or any(n.op_type == 'Transpose' for n, _ in uses) else 1
        reduce_axis = 1 - axis
        scale = np.abs(w).max(axis=reduce_axis) / 127.0
        scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
        shape = (-1, 1) if axis == 0 else (1, -1)
        q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        graph.initializer.remove(init)
        graph.initializer.extend([
            numpy_helper.from_array(q, init.name + '_q'),
            numpy_helper.from_array(scale, init.name + '_scale'),
            numpy_helper.from_array(np.zeros(scale.shape, np.int8), init.name + '_zero'),
        ])
        new_nodes.append(helper.make_node('DequantizeLinear', [init.name + '_q', init.name + '_scale',
                                                               init.name + '_zero'], [init.name], axis=axis,
                                          name=init.name + '_dq'))
        quantized += 1
    for node in reversed(new_nodes):
        graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return {'quantized_tensors': quantized}
