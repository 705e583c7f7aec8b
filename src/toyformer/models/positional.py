"""Token embedding plus positional schemes that add to the embeddings.

Positions count real tokens: ``position = (number of non-pad tokens so far) - 1``, so a
left-padded causal prompt and a right-padded encoder input both start at position 0.
Schemes that act on queries/keys (RoPE) or scores (ALiBi) plug into attention instead.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from toyformer.tasks.base import PAD


def positions(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` token ids -> ``[B, T]`` position ids, counted from the first non-pad token."""
    return ((tokens != PAD).long().cumsum(-1) - 1).clamp(min=0)


def sinusoidal(pos: torch.Tensor, d_model: int) -> torch.Tensor:
    """The fixed encoding of "Attention is all you need": ``[B, T]`` positions -> ``[B, T, d]``."""
    half = torch.arange(0, d_model, 2, device=pos.device, dtype=torch.float32)  # [d/2]
    freq = torch.exp(-math.log(10000.0) * half / d_model)
    angle = pos.unsqueeze(-1).float() * freq  # [B, T, d/2]
    out = torch.zeros(*pos.shape, d_model, device=pos.device)
    out[..., 0::2] = angle.sin()
    out[..., 1::2] = angle.cos()[..., : d_model // 2]
    return out


class Embedder(nn.Module):
    """Token embedding (the ``<pad>`` row is zero) plus an additive positional encoding."""

    def __init__(self, vocab_size: int, d_model: int, positional: str, max_len: int, dropout: float):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.positional, self.max_len, self.d_model = positional, max_len, d_model
        self.pos = nn.Embedding(max_len, d_model) if positional == "learned" else None
        self.drop = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, d]
        x = self.tok(tokens)
        if self.positional != "none":
            pos = positions(tokens)
            if self.positional == "learned":
                x = x + self.pos(pos.clamp(max=self.max_len - 1))
            else:
                x = x + sinusoidal(pos, self.d_model)
        return self.drop(x)
