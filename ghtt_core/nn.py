"""Transformer building blocks shared by the P-Block, the A-Block and the flattened baseline (method-notes section 2).

Pre-norm DETR-style layers: positional encodings are added to queries and keys inside every attention, never to the
values. Masks follow the project convention: `valid` tensors are bool with True = a real token; they are turned into
PyTorch key-padding masks (True = ignore) only at the attention call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ghtt_core.config import TransformerConfig

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class SinusoidalTable(nn.Module):
    """Vaswani sinusoidal table: pe[p, 2i] = sin(p / 10000^(2i/d)), pe[p, 2i+1] = cos(...)."""

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        inv_freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * inv_freq)
        table[:, 1::2] = torch.cos(position * inv_freq)
        self.register_buffer("table", table, persistent=False)

    def forward(self, n: int) -> torch.Tensor:
        """Encodings of positions 0..n-1: (n, d). Returns only the codes, not x + codes."""
        if not 0 <= n <= len(self.table):
            raise ValueError(f"positional table holds {len(self.table)} positions, asked for {n}")
        return self.table[:n]

    def lookup(self, index: torch.Tensor) -> torch.Tensor:
        """Encodings of arbitrary integer positions (phase codes): (...) -> (..., d)."""
        index = torch.as_tensor(index, device=self.table.device)
        if index.dtype.is_floating_point:
            raise ValueError(f"positions must be integers, got {index.dtype}")
        if index.numel() and (index.min() < 0 or index.max() >= len(self.table)):
            raise ValueError(f"positions must be in [0, {len(self.table)}), got [{index.min()}, {index.max()}]")
        return self.table[index.long()]


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, activation: str):
        super().__init__(nn.Linear(d_model, d_ff), _ACTIVATIONS[activation](), nn.Linear(d_ff, d_model))


class _Attention(nn.Module):
    """Multi-head attention through F.scaled_dot_product_attention, with nn.MultiheadAttention's parameters
    (in_proj_weight/in_proj_bias = [q; k; v] rows, out_proj), so checkpoints keep their state-dict keys.

    Positional codes go into queries and keys, never into values (DETR). They are one (n, d) table for the whole
    batch, so for several items (x + pos) W + b is computed as x W + (pos W + b): the codes are projected once per
    position, not once per token, and q, k, v come out of one matmul.
    """

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        # Created and initialised in nn.MultiheadAttention's order, so seeded models keep their initial weights.
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def _project(self, x, pos, rows: slice, pos_rows: int):
        """x (..., n, d) times in_proj rows `rows`, plus the bias, with pos (n, d) (or broadcastable to x) added to
        the input of the first pos_rows."""
        weight, bias = self.in_proj_weight[rows], self.in_proj_bias[rows]
        if x.numel() == pos.numel():  # one item: adding the codes to its tokens first saves projecting them apart
            return torch.cat([F.linear(x + pos, weight[:pos_rows], bias[:pos_rows]),
                              F.linear(x, weight[pos_rows:], bias[pos_rows:])], dim=-1)
        offset = torch.cat([F.linear(pos, weight[:pos_rows], bias[:pos_rows]),
                            bias[pos_rows:].expand(*pos.shape[:-1], -1)], dim=-1)
        return (x @ weight.T).add_(offset)

    def _heads(self, x):
        """(..., n, d) -> (..., heads, n, d / heads), a view."""
        return x.unflatten(-1, (self.n_heads, -1)).transpose(-3, -2)

    def _attend(self, q, k, v, key_valid):
        mask = None if key_valid is None else key_valid[..., None, None, :]
        out = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v), attn_mask=mask)
        return self.out_proj(out.transpose(-3, -2).flatten(-2))


class SelfAttention(_Attention):
    def forward(self, x, pos, valid=None):
        """x (..., n, d), pos (n, d), valid (..., n) bool (True = a real token)."""
        d = x.shape[-1]
        q, k, v = self._project(x, pos, slice(None), 2 * d).split(d, dim=-1)
        return self._attend(q, k, v, valid)


class CrossAttention(_Attention):
    def forward(self, x, pos, memory, memory_pos, memory_valid=None):
        """Queries x (..., n, d) + pos (n, d) against memory (..., m, d) + memory_pos (m, d)."""
        d = x.shape[-1]
        q = self._project(x, pos, slice(0, d), d)
        k, v = self._project(memory, memory_pos, slice(d, None), d).split(d, dim=-1)
        if q.shape[:-2] != k.shape[:-2]:
            q = q.expand(*k.shape[:-2], -1, -1)
        return self._attend(q, k, v, memory_valid)

    def single_key(self, memory):
        """The result for a memory (..., 1, d) of one unmasked token: its softmax weight is exactly 1 whatever the
        query, so every query gets that token's value, (..., 1, d) (the P.b P-Dec, whose memory is one mid-level)."""
        d = memory.shape[-1]
        return self.out_proj(F.linear(memory, self.in_proj_weight[2 * d:], self.in_proj_bias[2 * d:]))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.self_attn = SelfAttention(cfg.d_model, cfg.n_heads)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.feed_forward = FeedForward(cfg.d_model, cfg.d_ff, cfg.activation)

    def forward(self, x, pos, valid=None):
        x = x + self.self_attn(self.norm_attn(x), pos, valid)
        return x + self.feed_forward(self.norm_ff(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm_self = nn.LayerNorm(cfg.d_model)
        self.self_attn = SelfAttention(cfg.d_model, cfg.n_heads)
        self.norm_cross = nn.LayerNorm(cfg.d_model)
        self.cross_attn = CrossAttention(cfg.d_model, cfg.n_heads)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.feed_forward = FeedForward(cfg.d_model, cfg.d_ff, cfg.activation)

    def forward(self, x, pos, memory, memory_pos, valid=None, memory_valid=None):
        """x (B or 1, q, d): queries shared by all items may come as one row; the memory (B, m, d) then gives the
        result its batch at the cross-attention."""
        x = x + self.self_attn(self.norm_self(x), pos, valid)
        # Inference only: a training step must use every parameter (DistributedDataParallel checks), norm_cross too.
        if memory.shape[-2] == 1 and memory_valid is None and not torch.is_grad_enabled():
            x = x + self.cross_attn.single_key(memory)  # needs no query, so no norm_cross either
        else:
            x = x + self.cross_attn(self.norm_cross(x), pos, memory, memory_pos, memory_valid)
        return x + self.feed_forward(self.norm_ff(x))


class TransformerEncoder(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_enc_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model)
        _xavier_init(self)

    def forward(self, x, pos, valid=None):
        for layer in self.layers:
            x = layer(x, pos, valid)
        return self.final_norm(x)


class TransformerDecoder(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_dec_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model)
        _xavier_init(self)

    def forward(self, x, pos, memory, memory_pos, valid=None, memory_valid=None):
        for layer in self.layers:
            x = layer(x, pos, memory, memory_pos, valid, memory_valid)
        return self.final_norm(x)


def _xavier_init(module: nn.Module):
    for parameter in module.parameters():
        if parameter.dim() > 1:
            nn.init.xavier_uniform_(parameter)


@dataclass
class VAEEncoding:
    mu: torch.Tensor  # (B, d)
    logvar: torch.Tensor  # (B, d)
    tokens: torch.Tensor  # (B, n, d): encoder outputs at the input token positions


class TransformerVAE(nn.Module):
    """Encoder with two learnable distribution tokens (mu, logvar) in front, and a query decoder.

    The encoder outputs at the two distribution-token positions are taken directly as mu and log-variance.
    """

    def __init__(self, cfg: TransformerConfig, max_len: int = 5000):
        super().__init__()
        self.d_model = cfg.d_model
        self.positions = SinusoidalTable(cfg.d_model, max_len)
        self.mu_token = nn.Parameter(torch.randn(1, 1, cfg.d_model))
        self.logvar_token = nn.Parameter(torch.randn(1, 1, cfg.d_model))
        self.encoder = TransformerEncoder(cfg)
        self.decoder = TransformerDecoder(cfg)

    def encode(self, tokens: torch.Tensor, valid: torch.Tensor | None = None) -> VAEEncoding:
        """tokens (B, n, d), valid (B, n) bool -> mu, logvar (B, d) and per-token outputs (B, n, d)."""
        batch, n, d = _check_tokens(tokens, self.d_model, "encoder tokens")
        distribution = torch.cat([self.mu_token, self.logvar_token], dim=1).expand(batch, 2, d)
        x = torch.cat([distribution, tokens], dim=1)
        full_valid = None
        if valid is not None:
            _check_valid(valid, (batch, n), "encoder valid mask")
            # The distribution tokens are never masked, so every sequence has at least two keys.
            full_valid = torch.cat([valid.new_ones(batch, 2), valid], dim=1)
        out = self.encoder(x, self.positions(n + 2), full_valid)
        return VAEEncoding(mu=out[:, 0], logvar=out[:, 1], tokens=out[:, 2:])

    def decode(
        self,
        memory: torch.Tensor,
        memory_valid: torch.Tensor | None = None,
        num_queries: int | None = None,
        queries: torch.Tensor | None = None,
        query_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode `num_queries` sinusoidal queries (or the given queries (B, q, d)) against memory (B, m, d)."""
        batch, m, _ = _check_tokens(memory, self.d_model, "decoder memory")
        if memory_valid is not None:
            _check_valid(memory_valid, (batch, m), "decoder memory mask")
        if queries is None:
            if num_queries is None:
                raise ValueError("decode needs either num_queries or queries")
            # The same queries for every item: until the first cross-attention they are computed once for all.
            queries = self.positions(num_queries).unsqueeze(0)
            if query_valid is not None:
                queries = queries.expand(batch, -1, -1)
        else:
            _check_tokens(queries, self.d_model, "decoder queries")
        q = queries.shape[1]
        if query_valid is not None:
            _check_valid(query_valid, (batch, q), "decoder query mask")
        return self.decoder(queries, self.positions(q), memory, self.positions(m), query_valid, memory_valid)

    def decode_latent(
        self,
        latent: torch.Tensor,
        context: torch.Tensor | None,
        context_valid: torch.Tensor | None,
        query_phase: torch.Tensor,
        query_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode phase-coded queries (B, q) against memory [z] or [z, context (B, m, d)] -> (B, q, d).

        Queries are the sinusoidal codes of `query_phase`; query 0 always stays valid so no self-attention row is
        empty. context_valid (B, m) masks the context tokens; z is never masked.
        """
        if query_phase.dim() != 2 or query_phase.shape[0] != len(latent) or query_phase.dtype.is_floating_point:
            raise ValueError(
                f"query phases must be integer (B, q) with B = {len(latent)}, got {tuple(query_phase.shape)}"
            )
        memory, memory_valid = latent.unsqueeze(1), None
        if context is not None:
            memory = torch.cat([memory, context], dim=1)
            if context_valid is not None:
                memory_valid = torch.cat([context_valid.new_ones(len(latent), 1), context_valid], dim=1)
        if query_valid is not None:
            _check_valid(query_valid, query_phase.shape, "decoder query mask")
            query_valid = query_valid.clone()
            query_valid[:, 0] = True
        return self.decode(memory, memory_valid, queries=self.positions.lookup(query_phase), query_valid=query_valid)


# One torch.Generator for the whole batch, or one per item (a sequence of B): a batch of independent items then draws
# for each item what it would draw alone with its generator, so batching streams does not change their samples.
Generators = torch.Generator | Sequence[torch.Generator] | None


def standard_normal(shape, generator: Generators, device, dtype) -> torch.Tensor:
    """N(0, 1) draws of `shape` (B, ...); with one generator per item, item b's draws come from generator b."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for {shape[0]} items")
    return torch.stack([torch.randn(shape[1:], generator=g, device=device, dtype=dtype) for g in generator])


def reparameterise(mu, logvar, temperature: float = 1.0, generator: Generators = None):
    """z = mu + eps * exp(logvar / 2) * temperature; temperature 1 in training, 5 (10 flattened) for test samples."""
    eps = standard_normal(mu.shape, generator, mu.device, mu.dtype)
    return mu + eps * torch.exp(0.5 * logvar) * temperature


def draw_latents(mu, logvar, num_samples: int, temperature: float, generator: Generators = None):
    """(B, d) -> (B, S, d): sample 0 is the mean (deterministic pass), samples 1.. are reparameterised draws."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    draws = [mu] + [reparameterise(mu, logvar, temperature, generator) for _ in range(num_samples - 1)]
    return torch.stack(draws, dim=1)


def kl_to_standard_normal(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)): summed over latent dims, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)).mean()


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over the entries where `mask` (broadcastable to values) is True; 0 when nothing counts."""
    weights = mask.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def masked_l1(prediction, target, mask):
    """Mean absolute error over the masked entries. Masked-out targets may hold arbitrary finite values."""
    return masked_mean((prediction - target).abs(), mask)


class MLP(nn.Sequential):
    """Linear + LeakyReLU hidden layers and a linear output (the shared 512->512->512->out head)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int):
        layers = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.LeakyReLU()]
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)


def use_skip_memory(training: bool, skip_prob: float, at_test: bool) -> bool:
    """One coin flip per mini-batch in training; a fixed choice at test."""
    if training:
        return bool(torch.rand(()) < skip_prob)
    return at_test


def _check_tokens(tokens, d_model, what):
    if tokens.dim() != 3 or tokens.shape[-1] != d_model:
        raise ValueError(f"{what} must be (B, n, {d_model}), got {tuple(tokens.shape)}")
    return tokens.shape


def _check_valid(valid, shape, what):
    if valid.dtype != torch.bool or tuple(valid.shape) != tuple(shape):
        raise ValueError(f"{what} must be bool of shape {tuple(shape)}, got {valid.dtype} {tuple(valid.shape)}")


def cosine_logits(latents: torch.Tensor, anchors: torch.Tensor, tau: float) -> torch.Tensor:
    """cos(latent_b, anchor_k) / tau: (B, d), (K, d) -> (B, K)."""
    return F.normalize(latents, dim=-1) @ F.normalize(anchors, dim=-1).T / tau
