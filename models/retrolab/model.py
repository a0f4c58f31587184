"""GPT and RETRO decoders for RetroLab, in one file.

The GPT is a GPT-2-style decoder (pre-LayerNorm, learned absolute positions, GELU, tied
embeddings). RETRO is the same decoder plus a small bidirectional neighbour encoder and
chunked cross-attention (CCA) in a few decoder layers, with the causal alignment of
Megatron-LM's RETRO decoder: the queries of chunk u start at the *last* token of chunk u and
attend to the neighbours retrieved for chunk u; tokens before the first chunk completes see
no retrieval.

Shapes use B batch, T tokens, H heads, D head size, C chunk size, U chunks, K neighbours,
L neighbour length (retrieved chunk + its continuation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 8192
    context: int = 256
    n_layer: int = 6
    n_head: int = 8
    d_model: int = 256
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RetroConfig(GPTConfig):
    chunk: int = 32
    neighbours: int = 2
    neighbour_len: int = 64
    cca_layers: list[int] = field(default_factory=lambda: [2, 5])
    encoder_layers: int = 2
    # Token-match features: queries see their own token, keys the neighbour token just before
    # them, both as unit-length embeddings, so "this neighbour continues my current token" is a
    # dot product from the first step (an induction head by construction).
    token_match: bool = False
    # With token_match, match the last n tokens instead of the current one: queries also see the
    # n-1 tokens before theirs, keys the n-1 before the neighbour's previous token, each lag through
    # its own projection, so the score adds up over agreeing positions. A unigram match fires on any
    # neighbour holding "the" and copies what followed it there; a trigram match fires where the
    # neighbour really continues the context.
    match_ngram: int = 1
    # The encoder also reads the retrieving chunk's token ids (RETRO's encoder is conditioned on the
    # retrieving chunk) and measures how many of the neighbour's first C tokens equal the chunk's,
    # position by position (token-aligned neighbours line up with their query chunk). Each head scales
    # that neighbour's values by exp(slope * (agreement - 1)): a neighbour that repeats the whole chunk
    # (the document itself is in the datastore) keeps its full weight, one that shares only the last
    # token is damped as much as the head learns. On WikiText-2 train the top neighbour's next token is
    # right 16% of the time overall, 48% when half the chunk agrees, 77% when all of it does.
    chunk_agreement: bool = False
    # The encoder reads the retrieving chunk's C tokens before each neighbour (RETRO conditions its
    # encoder on the retrieving chunk, through cross-attention to the chunk's activations; this reads
    # the chunk's tokens), so it can tell a neighbour that continues the chunk's context from one that
    # only shares its last token. Keys and values still come from the neighbour's L positions only.
    query_prefix: bool = False


class SelfAttention(nn.Module):
    """Multi-head attention with an optional key/value cache; causal unless told otherwise."""

    def __init__(self, d_model: int, n_head: int, dropout: float, causal: bool = True):
        super().__init__()
        self.n_head, self.causal = n_head, causal
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, past_k=None, past_v=None):
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, H, C // H).transpose(1, 2)
        v = v.view(B, T, H, C // H).transpose(1, 2)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)  # (B, H, P+T, D)
            v = torch.cat([past_v, v], dim=2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))  # (B, H, T, P+T)
        if self.causal:
            S = k.size(2)
            query_pos = torch.arange(T, device=x.device) + (S - T)
            allowed = torch.arange(S, device=x.device)[None, :] <= query_pos[:, None]
            att = att.masked_fill(~allowed, float('-inf'))
        att = self.drop(F.softmax(att.float(), dim=-1).to(q.dtype))
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.drop(self.proj(y)), k, v


class MLP(nn.Module):
    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.proj = nn.Linear(4 * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.proj(F.gelu(self.fc(x))))


class ChunkedCrossAttention(nn.Module):
    """RETRO's chunked cross-attention with a learned relative position bias.

    Keys and values are projected from the encoded neighbours once per chunk
    (`project_neighbours`), so a KV-cached decoder step only computes its own queries.
    The bias b[h, j, p] depends on the query's offset j inside its attending window and the
    neighbour token position p: copying "the token just after the aligned position" from a
    neighbour that holds the continuation is then a fixed offset, easy to learn (the RETRO
    paper also uses relative positions here).
    """

    def __init__(self, cfg: RetroConfig):
        super().__init__()
        d, self.n_head = cfg.d_model, cfg.n_head
        self.chunk, self.neighbour_len = cfg.chunk, cfg.neighbour_len
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)
        # proj starts at zero (Decoder.__init__, after its generic init) so that a freshly added CCA
        # leaves the pretrained decoder's function unchanged.
        self.rel_bias = nn.Parameter(torch.zeros(cfg.n_head, cfg.chunk, cfg.neighbour_len))
        # A null slot (learned key, zero value) that a query attends to when no neighbour fits:
        # softmax attention must otherwise put all its weight on some neighbour token.
        self.null_key = nn.Parameter(torch.zeros(cfg.n_head, d // cfg.n_head))
        self.null_bias = nn.Parameter(torch.zeros(cfg.n_head, cfg.chunk))
        self.q_match = nn.Linear(d, d, bias=False) if cfg.token_match else None
        self.k_match = nn.Linear(d, d, bias=False) if cfg.token_match else None
        lags = cfg.match_ngram - 1 if cfg.token_match else 0
        # Starts at zero: the gate is 1 for every neighbour, the model computes what it did before.
        self.agreement_slope = nn.Parameter(torch.zeros(cfg.n_head)) if cfg.chunk_agreement else None
        self.q_match_lags = nn.ModuleList([nn.Linear(d, d, bias=False) for _ in range(lags)])
        self.k_match_lags = nn.ModuleList([nn.Linear(d, d, bias=False) for _ in range(lags)])
        self.drop = nn.Dropout(cfg.dropout)

    def queries(self, x, token_emb):
        """token_emb: (B, T, d), or with match_ngram > 1 a list [current, 1 back, 2 back, ...]."""
        q = self.q(x)
        if self.q_match is not None:
            lagged = token_emb if isinstance(token_emb, (list, tuple)) else [token_emb]
            q = q + self.q_match(F.normalize(lagged[0], dim=-1))
            for proj, emb in zip(self.q_match_lags, lagged[1:]):
                q = q + proj(F.normalize(emb, dim=-1))
        return q

    def project_neighbours(self, encoded, previous_token_emb=None, earlier_token_emb=(), agreement=None):
        """encoded (B, U, K, L, d) -> keys, values (B, U, H, K*L, D). previous_token_emb (B, U, K, L, d):
        embedding of the neighbour token before each position (zeros at position 0); earlier_token_emb:
        the tokens 2, 3, ... before it, for match_ngram > 1."""
        B, U, K, L, d = encoded.shape
        H = self.n_head
        k, v = self.kv(encoded).split(d, dim=-1)
        if self.k_match is not None:
            k = k + self.k_match(F.normalize(previous_token_emb, dim=-1))
            for proj, emb in zip(self.k_match_lags, earlier_token_emb):
                k = k + proj(F.normalize(emb, dim=-1))
        if self.agreement_slope is not None:
            # agreement (B, U, K) in [0, 1] -> one gate per neighbour and head on its values
            # x10: Adam moves a parameter by about the learning rate per step; the slope needs to reach ~5.
            slope = 10.0 * self.agreement_slope
            gate = torch.exp(slope[None, None, None, :] * (agreement[..., None] - 1.0))  # (B, U, K, H)
            v = (v.view(B, U, K, L, H, d // H) * gate[:, :, :, None, :, None].to(v.dtype)).view(B, U, K, L, d)
        k = k.view(B, U, K * L, H, d // H).transpose(2, 3)
        v = v.view(B, U, K * L, H, d // H).transpose(2, 3)
        return k, v

    def forward(self, x, cca_k, cca_v, start_pos, chunk_start, token_emb=None):
        """x (B, T, d) holds absolute positions start_pos..start_pos+T-1; cca_k/cca_v (B, U, H, K*L, D)
        hold the projected neighbours of chunks chunk_start..chunk_start+U-1."""
        B, T, d = x.shape
        H, C, L = self.n_head, self.chunk, self.neighbour_len
        U, KL = cca_k.shape[1], cca_k.shape[3]
        pos = torch.arange(T, device=x.device) + start_pos  # (T,)
        chunk_abs = torch.div(pos + 1, C, rounding_mode='floor') - 1  # chunk whose neighbours position attends
        offset = torch.remainder(pos + 1, C)  # index inside the attending window
        local = chunk_abs - chunk_start
        valid = (chunk_abs >= 0) & (local >= 0) & (local < U)  # (T,)
        local = local.clamp(0, U - 1)
        q = self.queries(x, token_emb).view(B, T, H, d // H)  # (B, T, H, D)
        k = cca_k.index_select(1, local)  # (B, T, H, KL, D)
        v = cca_v.index_select(1, local)
        scale = 1.0 / math.sqrt(d // H)
        att = torch.einsum('bthd,bthsd->bths', q, k) * scale
        bias = self.rel_bias.index_select(1, offset)  # (H, T, L)
        bias = bias.permute(1, 0, 2).repeat(1, 1, KL // L)  # (T, H, K*L): same bias for every neighbour
        null = (q * self.null_key[None, None]).sum(-1, keepdim=True) * scale  # (B, T, H, 1)
        null = null + self.null_bias.index_select(1, offset).transpose(0, 1)[None, :, :, None]
        att = F.softmax(torch.cat([att + bias[None], null], dim=-1).float(), dim=-1).to(q.dtype)[..., :KL]
        y = torch.einsum('bths,bthsd->bthd', self.drop(att), v).reshape(B, T, d)
        # Mask after the projection: a position without retrieval gets exactly nothing (not the bias).
        return self.drop(self.proj(y)) * valid.to(y.dtype)[None, :, None]

    def forward_chunked(self, x, cca_k, cca_v, token_emb=None):
        """Training path, same result as forward(start_pos=0, chunk_start=0) without the per-token
        gather: shift by C-1 so each window of C queries lines up with one chunk's neighbours."""
        B, T, d = x.shape
        H, C = self.n_head, self.chunk
        U = cca_k.shape[1]
        KL = cca_k.shape[3]
        shifted = x[:, C - 1:]
        lagged = None if token_emb is None else (
            list(token_emb) if isinstance(token_emb, (list, tuple)) else [token_emb])
        shifted_tok = None if lagged is None else [t[:, C - 1:] for t in lagged]
        n_windows = min(U, math.ceil(shifted.shape[1] / C))
        pad = n_windows * C - shifted.shape[1]
        if n_windows == 0:
            return torch.zeros_like(x)
        if pad > 0:
            shifted = F.pad(shifted, (0, 0, 0, pad))
            shifted_tok = None if shifted_tok is None else [F.pad(t, (0, 0, 0, pad)) for t in shifted_tok]
        else:
            shifted = shifted[:, : n_windows * C]
            shifted_tok = None if shifted_tok is None else [t[:, : n_windows * C] for t in shifted_tok]
        q = self.queries(shifted, shifted_tok).view(B, n_windows, C, H, d // H).transpose(2, 3)  # (B, W, H, C, D)
        k, v = cca_k[:, :n_windows], cca_v[:, :n_windows]  # (B, W, H, KL, D)
        scale = 1.0 / math.sqrt(d // H)
        att = (q @ k.transpose(-2, -1)) * scale  # (B, W, H, C, KL)
        att = att + self.rel_bias.repeat(1, 1, KL // self.neighbour_len)[None, None]
        null = (q @ self.null_key[None, None, :, :, None]) * scale + self.null_bias[None, None, :, :, None]
        att = F.softmax(torch.cat([att, null], dim=-1).float(), dim=-1).to(q.dtype)[..., :KL]
        att = self.drop(att)
        y = (att @ v).transpose(2, 3).reshape(B, n_windows * C, d)
        y = self.drop(self.proj(y[:, : T - (C - 1)]))
        # Positions before the first complete chunk get nothing, not the projection's bias.
        return F.pad(y, (0, 0, C - 1, T - (C - 1) - y.shape[1]))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, with_cca: bool = False, causal: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg.d_model, cfg.n_head, cfg.dropout, causal=causal)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg.d_model, cfg.dropout)
        self.cca = ChunkedCrossAttention(cfg) if with_cca else None
        self.ln_cca = nn.LayerNorm(cfg.d_model) if with_cca else None


class NeighbourEncoder(nn.Module):
    """Bidirectional transformer over each retrieved neighbour (chunk + continuation)."""

    def __init__(self, cfg: RetroConfig):
        super().__init__()
        self.prefix = cfg.chunk if cfg.query_prefix else 0
        self.pos = nn.Embedding(self.prefix + cfg.neighbour_len, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg, causal=False) for _ in range(cfg.encoder_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, neighbour_embeddings):
        """(B, U, K, P+L, d) token embeddings (P = the chunk prefix, when read) -> (B, U, K, L, d)."""
        B, U, K, L, d = neighbour_embeddings.shape
        x = neighbour_embeddings.reshape(B * U * K, L, d) + self.pos.weight[None, :L]
        x = self.drop(x)
        for block in self.blocks:
            x = x + block.attn(block.ln1(x))[0]
            x = x + block.mlp(block.ln2(x))
        return self.ln_f(x).view(B, U, K, L, d)[:, :, :, self.prefix:]


class Decoder(nn.Module):
    """GPT when cfg is a GPTConfig; RETRO when cfg is a RetroConfig."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.is_retro = isinstance(cfg, RetroConfig)
        cca_layers = set(cfg.cca_layers) if self.is_retro else set()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.context, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg, with_cca=i in cca_layers) for i in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.encoder = NeighbourEncoder(cfg) if self.is_retro else None
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith('proj.weight') and '.cca.' not in name:
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))
        for block in self.cca_blocks():
            # _init above redrew every Linear; the CCA output must start at zero so that a RETRO
            # built on a trained GPT computes exactly that GPT until training moves it.
            nn.init.zeros_(block.cca.proj.weight)
            nn.init.zeros_(block.cca.proj.bias)

    @staticmethod
    def _init(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def cca_blocks(self):
        return [b for b in self.blocks if b.cca is not None]

    def match_ngram(self) -> int:
        return self.cfg.match_ngram if self.is_retro and self.cfg.token_match else 1

    def lagged_embeddings(self, token_emb, previous_ids=None):
        """[token_emb, 1 back, 2 back, ...] for the n-gram match. previous_ids (B, n-1), oldest first: the
        tokens before input position 0 (-1 where there is none; zeros embed then)."""
        n = self.match_ngram() - 1
        if n == 0:
            return token_emb
        B, T, d = token_emb.shape
        if previous_ids is None:
            before = token_emb.new_zeros(B, n, d)
        else:
            present = (previous_ids >= 0).to(token_emb.dtype)[..., None]
            before = self.wte(previous_ids.clamp(min=0)) * present
        seq = torch.cat([before, token_emb], dim=1)
        return [token_emb] + [seq[:, n - i: n - i + T] for i in range(1, n + 1)]

    def encode_neighbours(self, neighbour_ids, chunk_ids=None):
        """neighbour_ids (B, U, K, L), chunk_ids (B, U, C) the retrieving chunks (read when
        cfg.query_prefix) -> per CCA layer keys and values, stacked: (n_cca, B, U, H, K*L, D) twice."""
        token_emb = self.wte(neighbour_ids)  # (B, U, K, L, d)
        if self.cfg.query_prefix:
            B, U, K, L = neighbour_ids.shape
            prefix = self.wte(chunk_ids)[:, :, None].expand(B, U, K, chunk_ids.shape[-1], token_emb.shape[-1])
            encoded = self.encoder(torch.cat([prefix, token_emb], dim=3))
        else:
            encoded = self.encoder(token_emb)
        L = token_emb.shape[3]
        # the token i before each position (zeros where there is none): i = 1 for the unigram match
        before = [F.pad(token_emb[:, :, :, :L - i], (0, 0, i, 0)) for i in range(1, self.match_ngram() + 1)]
        agreement = None
        if self.cfg.chunk_agreement:
            C = chunk_ids.shape[-1]
            agreement = (neighbour_ids[:, :, :, :C] == chunk_ids[:, :, None, :]).to(token_emb.dtype).mean(-1)
        ks, vs = zip(*[b.cca.project_neighbours(encoded, before[0], before[1:], agreement) for b in self.cca_blocks()])
        return torch.stack(ks), torch.stack(vs)

    def forward(self, input_ids, past_k=None, past_v=None, cca_k=None, cca_v=None, chunk_start=None,
                chunked_training_path=False, previous_ids=None):
        """input_ids (B, T). past_k/past_v (n_layer, B, H, P, D) or None.
        Returns logits (B, T, V), present_k, present_v (n_layer, B, H, P+T, D), knn_key (B, T, d)."""
        B, T = input_ids.shape
        P = 0 if past_k is None else past_k.shape[3]
        pos = torch.arange(T, device=input_ids.device) + P
        token_emb = self.wte(input_ids)
        x = self.drop(token_emb + self.wpe(pos)[None])
        match_emb = self.lagged_embeddings(token_emb, previous_ids) if self.is_retro else token_emb
        presents_k, presents_v = [], []
        cca_index = 0
        knn_key = None
        for i, block in enumerate(self.blocks):
            a, k, v = block.attn(block.ln1(x),
                                 None if past_k is None else past_k[i],
                                 None if past_v is None else past_v[i])
            x = x + a
            presents_k.append(k)
            presents_v.append(v)
            if block.cca is not None:
                if cca_k is not None:
                    h = block.ln_cca(x)
                    if chunked_training_path:
                        x = x + block.cca.forward_chunked(h, cca_k[cca_index], cca_v[cca_index], match_emb)
                    else:
                        x = x + block.cca(h, cca_k[cca_index], cca_v[cca_index], P, chunk_start, match_emb)
                cca_index += 1
            h = block.ln2(x)
            if i == len(self.blocks) - 1:
                knn_key = h  # kNN-LM key: the last FFN's input after its LayerNorm
            x = x + block.mlp(h)
        logits = self.ln_f(x) @ self.wte.weight.T
        return logits, torch.stack(presents_k), torch.stack(presents_v), knn_key

    def retro_forward(self, input_ids, neighbour_ids):
        """Full-sequence RETRO forward for training and evaluation.
        neighbour_ids (B, U, K, L): neighbours of chunks 0..U-1 of input_ids."""
        B, U = neighbour_ids.shape[:2]
        C = self.cfg.chunk
        chunk_ids = None
        if self.cfg.query_prefix or self.cfg.chunk_agreement:
            padded = F.pad(input_ids, (0, max(0, U * C - input_ids.shape[1])), value=1)  # a partial last chunk: eot
            chunk_ids = padded[:, :U * C].reshape(B, U, C)
        cca_k, cca_v = self.encode_neighbours(neighbour_ids, chunk_ids)
        logits, _, _, _ = self.forward(input_ids, cca_k=cca_k, cca_v=cca_v, chunk_start=0,
                                       chunked_training_path=True)
        return logits


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
