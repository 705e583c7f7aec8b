"""ALiBi (Press et al. 2022): no position embedding; every head adds ``-slope * distance`` to
its attention scores, with one fixed slope per head (a geometric sequence).

Plug point: the scores. The bias depends on positions only through ``|i - j|``, so attention is
unchanged when every position shifts by the same amount. In a bidirectional encoder the
distance is symmetric (keys on either side are penalised alike).

>>> alibi_slopes(4).tolist()
[0.25, 0.0625, 0.015625, 0.00390625]
"""

from __future__ import annotations

import math

import torch
from torch import nn


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """The paper's slopes ``2^(-8 i / n)``, i = 1..n; for a head count that is not a power of
    two, the slopes of the next lower power of two plus every other slope of the next higher."""
    def powers(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    low = 2 ** math.floor(math.log2(n_heads))
    slopes = powers(low) + powers(2 * low)[0::2][: n_heads - low]
    return torch.tensor(slopes)  # [H]


class ALiBi(nn.Module):
    """Additive score bias ``[B, H, Tq, Tk] = -slope_h * |q_pos - k_pos|``."""

    slopes: torch.Tensor  # [H], a buffer

    def __init__(self, n_heads: int):
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    @classmethod
    def from_config(cls, cfg, causal: bool) -> ALiBi:
        return cls(cfg.n_heads)

    def forward(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        return self.pairs(q_pos, k_pos[:, None, :])  # [B, H, Tq, Tk]

    def pairs(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """``q_pos [B, Tq]`` and each query's own keys ``k_pos [B, Tq or 1, K]`` -> ``[B, H, Tq, K]``."""
        dist = (q_pos[:, :, None] - k_pos).abs().float()  # [B, Tq, K]
        return -self.slopes[None, :, None, None] * dist[:, None]
