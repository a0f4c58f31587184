"""PyTorch-side checks of the shipped models, run in CI from the committed fp16 checkpoints.

The ONNX side (shipped int8 graphs through onnxruntime-web vs these PyTorch logits) is checked by
the TypeScript parity test against models/fixtures/<id>.parity.json, which this file verifies the
checkpoints still reproduce."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from retrolab.model import Decoder, GPTConfig, RetroConfig
from retrolab.ship import int8_simulated

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINTS = os.path.join(ROOT, 'checkpoints')
FIXTURES = os.path.join(ROOT, 'fixtures')
MODEL_IDS = ['gpt-wt2', 'retro-wt2']


def load(model_id: str) -> Decoder:
    blob = torch.load(os.path.join(CHECKPOINTS, f'{model_id}.fp16.pt'), map_location='cpu')
    cfg_dict = blob['config']
    cfg = RetroConfig(**cfg_dict) if 'chunk' in cfg_dict else GPTConfig(**cfg_dict)
    model = Decoder(cfg)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob['model'].items()})
    return model.eval()


@pytest.fixture(scope='module', params=MODEL_IDS)
def model_and_fixture(request):
    with open(os.path.join(FIXTURES, f'{request.param}.parity.json')) as f:
        return load(request.param), json.load(f)


def chunk_ids_of(ids, U, C):
    """The retrieving chunks of ids (1, T) as the encoder reads them: a partial last chunk padded with eot."""
    return torch.nn.functional.pad(ids, (0, max(0, U * C - ids.shape[1])), value=1)[:, :U * C].view(1, U, C)


def previous_ids_of(model, ids, start):
    """The match_ngram-1 tokens before position start, oldest first, -1 where there are none (None for n = 1)."""
    lags = model.match_ngram() - 1
    if lags == 0:
        return None
    before = ids[:, max(0, start - lags):start]
    return torch.cat([torch.full((1, lags - before.shape[1]), -1), before], dim=1)


def full_logits(model, ids, neighbours=None):
    if model.is_retro:
        return model.retro_forward(ids, neighbours)[0]
    return model(ids)[0][0]


@torch.no_grad()
def test_checkpoint_reproduces_fixture(model_and_fixture):
    model, fixture = model_and_fixture
    ids = torch.tensor(fixture['input_ids'])[None]
    nb = torch.tensor(fixture['neighbour_ids'])[None] if model.is_retro else None
    logits = full_logits(model, ids, nb)
    expected = torch.tensor(fixture['logits_fp32_torch'])
    assert (logits[fixture['positions']] - expected).abs().max() < 1e-3
    sim = full_logits(int8_simulated(model), ids, nb)
    assert (sim[fixture['positions']] - torch.tensor(fixture['logits_int8_torch'])).abs().max() < 1e-3


@torch.no_grad()
def test_kv_cache_decode_equals_full_recompute(model_and_fixture):
    model, fixture = model_and_fixture
    ids = torch.tensor(fixture['input_ids'])[None]
    nb = torch.tensor(fixture['neighbour_ids'])[None] if model.is_retro else None
    full = full_logits(model, ids, nb)
    cca_k = cca_v = None
    if model.is_retro:
        cca_k, cca_v = model.encode_neighbours(nb, chunk_ids_of(ids, nb.shape[1], model.cfg.chunk))
    past_k = past_v = None
    steps = []
    # A prefill of 7 tokens, then one token at a time, as the app decodes.
    pieces = [(0, 7)] + [(t, t + 1) for t in range(7, ids.shape[1])]
    for start, end in pieces:
        if model.is_retro:
            C = model.cfg.chunk
            first = max(0, (start + 1) // C - 1)
            last = max(0, end // C - 1)
            args = (cca_k[:, :, first:last + 1], cca_v[:, :, first:last + 1], first)
        else:
            args = ()
        previous = previous_ids_of(model, ids, start) if model.is_retro else None
        logits, past_k, past_v, _ = model(ids[:, start:end], past_k, past_v, *args, previous_ids=previous)
        steps.append(logits[0])
    assert (torch.cat(steps) - full).abs().max() < 1e-3


@torch.no_grad()
def test_changing_a_token_leaves_earlier_logits_unchanged(model_and_fixture):
    model, fixture = model_and_fixture
    ids = torch.tensor(fixture['input_ids'])[None]
    nb = torch.tensor(fixture['neighbour_ids'])[None] if model.is_retro else None
    t = 40
    changed = ids.clone()
    changed[0, t] = (changed[0, t] + 17) % model.cfg.vocab_size
    a, b = full_logits(model, ids, nb), full_logits(model, changed, nb)
    assert (a[:t] - b[:t]).abs().max() < 1e-4
    assert (a[t:] - b[t:]).abs().max() > 1e-3


@torch.no_grad()
def test_retro_chunk_neighbours_only_affect_later_tokens():
    model = load('retro-wt2')
    with open(os.path.join(FIXTURES, 'retro-wt2.parity.json')) as f:
        fixture = json.load(f)
    C = model.cfg.chunk
    ids = torch.tensor(fixture['input_ids'])[None]
    nb = torch.tensor(fixture['neighbour_ids'])[None]
    for u in range(nb.shape[1]):
        changed = nb.clone()
        changed[0, u] = torch.flip(changed[0, u], dims=[-1])
        a, b = full_logits(model, ids, nb), full_logits(model, ids, changed)
        first_affected = (u + 1) * C - 1
        assert (a[:first_affected] - b[:first_affected]).abs().max() < 1e-4
        # The trained model reads its neighbours: the aligned window must move.
        assert (a[first_affected:first_affected + C] - b[first_affected:first_affected + C]).abs().max() > 1e-3


@torch.no_grad()
def test_retro_shorter_than_one_chunk():
    model = load('retro-wt2')
    cfg = model.cfg
    ids = torch.randint(2, cfg.vocab_size, (1, 5))
    nb = torch.randint(2, cfg.vocab_size, (1, 1, cfg.neighbours, cfg.neighbour_len))
    logits = model.retro_forward(ids, nb)
    cca_k, cca_v = model.encode_neighbours(nb, chunk_ids_of(ids, 1, cfg.chunk))
    stepped, _, _, _ = model(ids, None, None, cca_k, cca_v, 0)
    gpt_path, _, _, _ = model(ids)  # no cross-attention at all
    assert logits.shape == (1, 5, cfg.vocab_size)
    assert torch.isfinite(logits).all()
    assert (logits - stepped).abs().max() < 1e-4
    assert (logits - gpt_path).abs().max() < 1e-4  # no chunk is complete: retrieval cannot matter


@torch.no_grad()
def test_retro_added_to_a_gpt_starts_as_that_gpt():
    """RETRO-fitting starts from the GPT: before any training the cross-attention adds exactly nothing."""
    gpt = load('gpt-wt2')
    retro = Decoder(RetroConfig(**{**gpt.cfg.to_dict(), 'token_match': True})).eval()
    missing, unexpected = retro.load_state_dict(gpt.state_dict(), strict=False)
    assert not unexpected and missing
    cfg = retro.cfg
    ids = torch.randint(2, cfg.vocab_size, (1, 3 * cfg.chunk + 5))
    nb = torch.randint(2, cfg.vocab_size, (1, 3, cfg.neighbours, cfg.neighbour_len))
    assert (retro.retro_forward(ids, nb) - gpt(ids)[0]).abs().max() == 0


@torch.no_grad()
def test_ngram_match_decodes_step_by_step_as_it_trains():
    """match_ngram > 1: one token at a time with previous_ids gives the full-sequence (training) logits,
    and the lags matter: a neighbour that repeats the last three tokens gets more attention than one
    that repeats only the last, so swapping the earlier tokens changes the output."""
    from retrolab.train import init_match_lags
    torch.manual_seed(0)
    cfg = RetroConfig(vocab_size=64, context=48, n_layer=2, n_head=2, d_model=32, chunk=4, neighbours=2,
                      neighbour_len=8, cca_layers=[1], encoder_layers=1, token_match=True, match_ngram=3)
    model = Decoder(cfg).eval()
    for block in model.cca_blocks():  # a trained-looking CCA: not the zero projection a fresh one starts with
        torch.nn.init.normal_(block.cca.proj.weight, std=0.2)
    init_match_lags(model, 4.0)
    ids = torch.randint(2, cfg.vocab_size, (1, 21))
    nb = torch.randint(2, cfg.vocab_size, (1, 5, cfg.neighbours, cfg.neighbour_len))
    full = model.retro_forward(ids, nb)[0]
    cca_k, cca_v = model.encode_neighbours(nb)
    past_k = past_v = None
    rows = []
    for t in range(ids.shape[1]):
        before = ids[:, max(0, t - 2):t]
        previous = torch.cat([torch.full((1, 2 - before.shape[1]), -1), before], dim=1)
        logits, past_k, past_v, _ = model(ids[:, t:t + 1], past_k, past_v, cca_k, cca_v, 0, previous_ids=previous)
        rows.append(logits[0, 0])
    assert (torch.stack(rows) - full).abs().max() < 1e-4
    # previous_ids reaches the cross-attention: the same last token after other tokens scores differently.
    t = 2 * cfg.chunk + 1
    past = torch.zeros(cfg.n_layer, 1, cfg.n_head, t, cfg.d_model // cfg.n_head)  # puts the token at position t
    logits_a = model(ids[:, t:t + 1], past, past, cca_k, cca_v, 0, previous_ids=ids[:, t - 2:t])[0]
    logits_b = model(ids[:, t:t + 1], past, past, cca_k, cca_v, 0, previous_ids=torch.full((1, 2), 5))[0]
    assert model.cca_blocks()[0].cca.q_match_lags[0].weight.abs().sum() > 0
    assert (logits_a - logits_b).abs().max() > 1e-3


def test_shipped_retro_decoder_is_the_shipped_gpt():
    """The fair pair: RETRO's decoder weights are the GPT's; only the encoder and CCA are RETRO's own."""
    gpt = torch.load(os.path.join(CHECKPOINTS, 'gpt-wt2.fp16.pt'), map_location='cpu')['model']
    retro = torch.load(os.path.join(CHECKPOINTS, 'retro-wt2.fp16.pt'), map_location='cpu')['model']
    own = [n for n in retro if n.startswith('encoder.') or '.cca.' in n or '.ln_cca.' in n]
    assert own and set(retro) - set(own) == set(gpt)
    for name, weight in gpt.items():
        assert torch.equal(retro[name], weight), name


def test_shipped_files_match_manifests():
    public = os.path.join(os.path.dirname(ROOT), 'public', 'models')
    total = 0
    for model_id in MODEL_IDS:
        with open(os.path.join(public, model_id, 'manifest.json')) as f:
            manifest = json.load(f)
        assert manifest['format_version'] == 1
        for spec in manifest['onnx'].values():
            path = os.path.join(public, model_id, spec['file'])
            assert os.path.getsize(path) == spec['bytes']
        for name in os.listdir(os.path.join(public, model_id)):
            total += os.path.getsize(os.path.join(public, model_id, name))
    assert total <= 25 * 1024 * 1024, f'shipped models are {total / 2**20:.1f} MiB, over 25 MiB'


def test_aligned_neighbour_layout_matches_the_manifest():
    """Token-aligned neighbours: the C tokens ending at the match, then the C after it, as
    `src/core/knnlm/aligned.ts` reads them from a kNN-LM datastore (the manifest's `retrieval`)."""
    from retrolab.neighbours import aligned_rows, valid_positions
    with open(os.path.join(os.path.dirname(ROOT), 'public', 'models', 'retro-wt2', 'manifest.json')) as f:
        manifest = json.load(f)
    hp = manifest['hyperparameters']
    C = hp['chunk']
    assert manifest['retrieval']['kind'] == 'token-aligned' and hp['neighbour_len'] == 2 * C
    with open(os.path.join(os.path.dirname(ROOT), 'public', 'models', 'gpt-wt2', 'manifest.json')) as f:
        decoder = json.load(f)['onnx']['decoder']  # a rewritten graph names the one whose keys it keeps
        assert manifest['retrieval']['query_decoder_sha256'] in [decoder['sha256']] + decoder.get('same_keys_as', [])
    ids = np.arange(100, 160)
    rows = aligned_rows(ids, np.array([[20, 30]]), C)
    assert rows.shape == (1, 2, 2 * C)
    assert rows[0, 0].tolist() == list(range(100 + 20 - C + 1, 100 + 20 + C + 1))
    lo, hi = valid_positions(len(ids), C)
    assert aligned_rows(ids, np.array([lo, hi - 1]), C).shape == (2, 2 * C)  # both ends stay inside
