"""Multi-head attention, readable, on ``F.scaled_dot_product_attention``.

Every attention module has a stable ``name`` (``encoder.blocks.0.attn``,
``decoder.blocks.1.cross_attn``). While a recorder dict is attached (see
``toyformer.models.record_attention``) the weights are computed explicitly and stored under
that name as ``[batch, heads, queries, keys]``; otherwise the fused kernel runs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention. ``mask`` is boolean, True where a query may attend to a key."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, name: str):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.name = name
        self.recorder: dict | None = None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.d_head).transpose(1, 2)  # [B, H, T, d_head]

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, Tq, d]`` attends to ``context [B, Tk, d]`` (``x`` itself for self-attention);
        ``mask [B, 1, Tq, Tk]``. Returns ``[B, Tq, d]``."""
        q = self._heads(self.q(x))  # [B, H, Tq, dh]
        k, v = (self._heads(t) for t in self.kv(context).chunk(2, dim=-1))  # [B, H, Tk, dh]
        p = self.dropout if self.training else 0.0
        if self.recorder is None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # [B, H, Tq, Tk]
            weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            self.recorder[self.name] = weights.detach()
            y = F.dropout(weights, p, self.training) @ v
        b, _, tq, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, tq, -1))  # [B, Tq, d]


def self_attention_mask(valid: torch.Tensor, causal: bool) -> torch.Tensor:
    """``valid [B, T]`` (False at padding) -> ``[B, 1, T, T]``.

    Every query may always attend to itself: a padding query with no other key would otherwise
    get a row of -inf, a NaN, and NaNs spread to real positions through later layers.
    """
    t = valid.shape[1]
    mask = valid[:, None, None, :]  # [B, 1, 1, T]
    if causal:
        mask = mask & torch.ones(t, t, dtype=torch.bool, device=valid.device).tril()
    eye = torch.eye(t, dtype=torch.bool, device=valid.device)
    return mask | eye  # [B, 1, T, T]


def cross_attention_mask(src_valid: torch.Tensor, t_query: int) -> torch.Tensor:
    """``src_valid [B, S]`` -> ``[B, 1, t_query, S]``."""
    return src_valid[:, None, None, :].expand(-1, 1, t_query, -1)
