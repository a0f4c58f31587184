"""ONNX export (opset 17) of GPT and RETRO with KV caches, plus int8 weight-only quantization.

Graphs and their names are the contract with the app (docs/manifest.md):
  GPT    decoder:  input_ids, past_key_values.{i}.key/value -> logits, present.{i}.key/value, knn_key
                   (traced with the stacked cache below, then per_layer_cache and fuse_attention)
  RETRO  encoder:  neighbour_ids [, chunk_ids when hyperparameters.chunk_agreement] -> cca_key, cca_value
                   (once per completed chunk)
         decoder:  input_ids, cca_key, cca_value, chunk_start [, previous_ids when hyperparameters.match_ngram > 1],
                   past_key_values.{i}.key/value -> logits, present.{i}.key/value
                   (the same rewrite of the traced stacked cache as the GPT's)
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
    # Both decoders decode token by token in the app: one cache tensor per layer and one attention op
    # per layer (docs/benchmarks.md, "GPT decode step" and "RETRO decode step"). RETRO's chunked
    # cross-attention stays as traced: it has no cache and its mask is not a causal one.
    onnx.save(fuse_attention(per_layer_cache(onnx.load(path)), model.cfg.n_head), path)


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


def per_layer_cache(model: onnx.ModelProto) -> onnx.ModelProto:
    """A traced decoder's stacked cache (GPT or RETRO: past_key/past_value [n_layer, B, H, P, D] ->
    present_key/present_value) as one tensor per layer in the Hugging Face layout:
    past_key_values.{i}.key/value [B, H, P, D] -> present.{i}.key/value [B, H, P+T, D]. The traced
    graph gathers each layer's slice out of the stacked input and stacks the layers' concatenations
    again (Unsqueeze + Concat), every step; here those copies go and the layers' tensors become the
    graph's inputs and outputs. The arithmetic in between is untouched, so logits and knn_key are the
    same numbers. RETRO's other inputs (cca_key, cca_value, chunk_start, previous_ids) keep their
    place, before the cache; the past length (positions, RETRO's chunk alignment) is read off the
    first layer's tensor."""
    graph = model.graph
    nodes = list(graph.node)
    producer = {o: n for n in nodes for o in n.output}
    consumers: dict[str, list] = {}
    for n in nodes:
        for x in n.input:
            consumers.setdefault(x, []).append(n)

    def const_int(name: str) -> int:
        node = producer.get(name)
        if node is not None and node.op_type == 'Constant':
            return int(numpy_helper.to_array(node.attribute[0].t))
        for init in graph.initializer:
            if init.name == name:
                return int(numpy_helper.to_array(init))
        raise ValueError(f'{name} is not a constant')

    stacked_in = {'past_key': 'key', 'past_value': 'value'}
    stacked_out = {'present_key': 'key', 'present_value': 'value'}
    old_inputs = {v.name: v for v in graph.input}
    if 'past_key' not in old_inputs:
        raise ValueError('no stacked past_key input: not a traced decoder graph (already per layer?)')
    n_layer = old_inputs['past_key'].type.tensor_type.shape.dim[0].dim_value
    rename: dict[str, str] = {}
    drop: set[int] = set()
    past_length = None  # the Shape of a stacked input read for the past length
    for node in nodes:
        if not node.input or node.input[0] not in stacked_in:
            continue
        kind = stacked_in[node.input[0]]
        if node.op_type == 'Gather' and not [a for a in node.attribute if a.name == 'axis' and a.i != 0]:
            rename[node.output[0]] = f'past_key_values.{const_int(node.input[1])}.{kind}'
            drop.add(id(node))
        elif node.op_type == 'Shape' and past_length is None:
            past_length = node
        else:
            raise ValueError(f'{node.name} ({node.op_type}) reads {node.input[0]}: not a per-layer slice')
    if past_length is not None:
        # Shape(stacked)[3] is the past length; a layer's tensor has it at axis 2.
        for use in consumers[past_length.output[0]]:
            if use.op_type != 'Gather' or const_int(use.input[1]) != 3:
                raise ValueError(f'{use.name} reads the stacked cache shape other than its past axis')
            axis = helper.make_node('Constant', [], [use.input[1] + '_layer'], name=use.name + '_axis',
                                    value=numpy_helper.from_array(np.array(2, np.int64)))
            graph.node.insert(0, axis)
            use.input[1] = axis.output[0]
        past_length.input[0] = 'past_key_values.0.key'
    outputs_new = []
    for out in graph.output:
        if out.name not in stacked_out:
            outputs_new.append(out)
            continue
        kind = stacked_out[out.name]
        stack = producer[out.name]
        if stack.op_type != 'Concat' or len(stack.input) != n_layer:
            raise ValueError(f'{out.name} is not a Concat of {n_layer} layers')
        drop.add(id(stack))
        for i, name in enumerate(stack.input):
            unsqueeze = producer[name]
            if unsqueeze.op_type != 'Unsqueeze' or len(consumers[name]) != 1:
                raise ValueError(f'{out.name} input {i} is not an Unsqueeze used only there')
            drop.add(id(unsqueeze))
            rename[unsqueeze.input[0]] = f'present.{i}.{kind}'
    for node in graph.node:
        for j, x in enumerate(node.input):
            if x in rename:
                node.input[j] = rename[x]
        for j, x in enumerate(node.output):
            if x in rename:
                node.output[j] = rename[x]
    kept = [n for n in graph.node if id(n) not in drop]
    # Constants only the dropped nodes read (the layer indices, the Unsqueeze axes) go too.
    used = {x for n in kept for x in n.input} | {o.name for o in graph.output}
    kept = [n for n in kept if n.op_type != 'Constant' or n.output[0] in used]
    del graph.node[:]
    graph.node.extend(kept)

    def layer_value(name: str, template, axis_name: str):
        # transformers.js sizes an empty past from these names: batch_size is the batch, any other
        # symbol 0 (resolveCacheShape).
        t = template.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim][1:]
        dims[0], dims[2] = 'batch_size', axis_name
        return helper.make_tensor_value_info(name, t.elem_type, dims)

    inputs_new = [v for v in graph.input if v.name not in stacked_in]
    for i in range(n_layer):
        for stacked, kind in stacked_in.items():
            inputs_new.append(layer_value(f'past_key_values.{i}.{kind}', old_inputs[stacked], 'past_sequence_length'))
    old_outputs = {v.name: v for v in graph.output}
    first, rest = outputs_new[:1], outputs_new[1:]  # logits, then the cache, then the rest (the GPT's knn_key)
    cache_out = [layer_value(f'present.{i}.{kind}', old_outputs[stacked], 'total_sequence_length')
                 for i in range(n_layer) for stacked, kind in stacked_out.items()]
    del graph.input[:]
    graph.input.extend(inputs_new)
    del graph.output[:]
    graph.output.extend(first + cache_out + rest)
    # Shape inference recorded the stacked shapes on the renamed tensors; let it run again.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def _graph_maps(graph):
    producer = {o: n for n in graph.node for o in n.output if o}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    return producer, consumers


def _prune_and_sort(graph) -> None:
    """Drops nodes none of whose outputs is read, then orders the rest topologically."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {x for n in graph.node for x in n.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output if o)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    available = {v.name for v in graph.input} | {i.name for i in graph.initializer} | {''}
    order, pending = [], list(graph.node)
    while pending:
        rest = []
        for n in pending:
            if all(x in available for x in n.input):
                order.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f'cycle or missing input at {rest[0].name}')
        pending = rest
    del graph.node[:]
    graph.node.extend(order)


def _use_ms_domain(model: onnx.ModelProto) -> None:
    if not any(o.domain == 'com.microsoft' for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid('com.microsoft', 1))


def fuse_attention(model: onnx.ModelProto, n_head: int) -> onnx.ModelProto:
    """Each layer's self-attention as one onnxruntime MultiHeadAttention (com.microsoft; WASM and
    WebGPU have kernels): the traced graph splits heads, concatenates the past, multiplies, scales,
    builds a causal mask from positions (Range, LessOrEqual, Where), softmaxes and merges heads in
    ~40 small ops per layer, and its qkv bias is a separate Add. The fused op takes q, k, v (before
    the bias), the bias, the layer's past and returns its output and present; `unidirectional` is the
    same causal mask. Needs per_layer_cache first. Only the self-attention of each layer is fused
    (RETRO's chunked cross-attention has no cache and stays as traced). On WASM the logits (and the
    GPT's knn_key) came out bit-equal to the unfused graph (docs/benchmarks.md)."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    producer, consumers = _graph_maps(graph)

    def only(op: str, nodes: list):
        found = [n for n in nodes if n.op_type == op]
        if len(found) != 1:
            raise ValueError(f'expected one {op} among {[n.name for n in nodes]}')
        return found[0]

    def split_output_of(t: str) -> str:  # Concat(past, Transpose(Reshape(Split output)))
        transpose = producer[t]
        reshape = producer[transpose.input[0]]
        if transpose.op_type != 'Transpose' or reshape.op_type != 'Reshape':
            raise ValueError(f'{t} is not Transpose(Reshape(...))')
        return reshape.input[0]

    layers = sorted(int(v.name.split('.')[1]) for v in graph.input if v.name.startswith('past_key_values.') and v.name.endswith('.key'))
    fused = []
    for i in layers:
        key_concat, value_concat = producer[f'present.{i}.key'], producer[f'present.{i}.value']
        if key_concat.op_type != 'Concat' or value_concat.op_type != 'Concat':
            raise ValueError(f'present.{i} is not a Concat of the past and the new tokens')
        k, v = split_output_of(key_concat.input[1]), split_output_of(value_concat.input[1])
        split = producer[k]
        if split.op_type != 'Split' or list(split.output[1:]) != [k, v]:
            raise ValueError(f'layer {i}: k and v are not outputs 1 and 2 of one Split')
        q = split.output[0]
        # The output: Reshape(Transpose(MatMul(probabilities, present.value)))
        pv = only('MatMul', consumers[f'present.{i}.value'])
        merge = only('Transpose', consumers[pv.output[0]])
        merged = only('Reshape', consumers[merge.output[0]])
        # The scale: Mul(MatMul(q, Transpose(present.key)), c)
        kt = only('Transpose', consumers[f'present.{i}.key'])
        qk = only('MatMul', consumers[kt.output[0]])
        mul = only('Mul', consumers[qk.output[0]])
        scale = float(numpy_helper.to_array(producer[mul.input[1]].attribute[0].t))
        bias = ''
        bias_add = producer[split.input[0]]
        if bias_add.op_type == 'Add' and len(consumers[bias_add.output[0]]) == 1:
            b = [x for x in bias_add.input if x in inits]
            if len(b) == 1:
                bias = b[0]
                split.input[0] = [x for x in bias_add.input if x != bias][0]
        out = merged.output[0]
        merged.output[0] = out + '_unfused'
        key_concat.output[0] = f'present.{i}.key_unfused'
        value_concat.output[0] = f'present.{i}.value_unfused'
        fused.append(helper.make_node(
            'MultiHeadAttention', [q, k, v, bias, '', '', f'past_key_values.{i}.key', f'past_key_values.{i}.value'],
            [out, f'present.{i}.key', f'present.{i}.value'], name=f'/model/blocks.{i}/attn/MultiHeadAttention',
            domain='com.microsoft', num_heads=n_head, scale=scale, unidirectional=1))
    graph.node.extend(fused)
    _use_ms_domain(model)
    _prune_and_sort(graph)
    onnx.checker.check_model(model)
    return model

