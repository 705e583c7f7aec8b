"""RoPE (Su et al. 2021): queries and keys rotated by their positions, so that every score
``q_i . k_j`` depends on the positions only through ``i - j``.

Plug point: queries and keys (self-attention only). Pairs of channels ``(x_a, x_{a+d/2})`` are
rotated by the angle ``position * base^(-2a/d)``.

>>> rot = Rotary(d_head=8)
>>> q, k = torch.randn(1, 1, 3, 8), torch.randn(1, 1, 3, 8)
>>> pos = torch.arange(3)[None]
>>> s0 = rot.at(pos)(q) @ rot.at(pos)(k).transpose(-2, -1)
>>> s5 = rot.at(pos + 5)(q) @ rot.at(pos + 5)(k).transpose(-2, -1)
>>> torch.allclose(s0, s5, atol=1e-5)
True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Rotary(nn.Module):
    """Rotary position embedding for heads of width ``d_head`` (even)."""

    inv_freq: torch.Tensor  # [dh/2], a buffer

    def __init__(self, d_head: int, base: float = 10000.0):
        super().__init__()
        if d_head % 2:
            raise ValueError(f"RoPE needs an even head width, got {d_head}")
        inv_freq = base ** (-torch.arange(0, d_head, 2, dtype=torch.float32) / d_head)  # [dh/2]
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @classmethod
    def from_config(cls, cfg) -> Rotary:
        """The rotation of a model's heads (``d_model / n_heads`` wide)."""
        return cls(cfg.d_model // cfg.n_heads)

    def at(self, pos: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``pos [B, T]`` -> a function rotating ``x [B, H, T, dh]`` by those positions."""
        angle = pos.unsqueeze(-1).float() * self.inv_freq  # [B, T, dh/2]
        cos = angle.cos().repeat(1, 1, 2).unsqueeze(1)  # [B, 1, T, dh]
        sin = angle.sin().repeat(1, 1, 2).unsqueeze(1)

        def rotate(x: torch.Tensor) -> torch.Tensor:
            x1, x2 = x.chunk(2, dim=-1)
            return x * cos + torch.cat([-x2, x1], dim=-1) * sin

        return rotate
