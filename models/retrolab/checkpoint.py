"""Reading and writing model checkpoints and the frozen chunk embedder (shared by training, export
and evaluation; imports only the model and the data layer, so nothing imports in a circle)."""
from __future__ import annotations

import os

import numpy as np
import torch

from .data import MeanEmbedder
from .model import Decoder, GPTConfig, RetroConfig


def load_model(path: str) -> Decoder:
    blob = torch.load(path, map_location='cpu')
    cfg_dict = blob['config']
    cfg = RetroConfig(**cfg_dict) if 'chunk' in cfg_dict else GPTConfig(**cfg_dict)
    model = Decoder(cfg)
    model.load_state_dict(blob['model'])
    return model


def save_model(model: Decoder, path: str, extra: dict | None = None):
    tmp = path + '.tmp'
    torch.save({'config': model.cfg.to_dict(), 'model': model.state_dict(), **(extra or {})}, tmp)
    os.replace(tmp, path)


def load_embedder(retrieval_dir: str, vocab: int, d: int) -> MeanEmbedder:
    raw = np.fromfile(os.path.join(retrieval_dir, 'embedder.bin'), dtype=np.uint8)
    table = raw[: vocab * d].view(np.int8).reshape(vocab, d)
    scales = raw[vocab * d:].view('<f4')
    return MeanEmbedder(table, scales)
