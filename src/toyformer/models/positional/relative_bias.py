"""A learned relative position bias, T5-style (Raffel et al. 2020): each head adds a learned
scalar per bucket of the relative distance ``k_pos - q_pos`` to its scores.

Plug point: the scores. Small distances get a bucket each; larger ones share logarithmically
wider buckets up to ``max_distance``, beyond which all distances share the last bucket (which is
what lets the bias apply to lengths never trained on). One table is shared by every layer of a
stack, as in T5. A bidirectional stack keeps separate buckets for keys before and after the
query.

>>> relative_buckets(-torch.tensor([0, 1, 7, 8, 20, 500]), bidirectional=False, n_buckets=16,
...                  max_distance=64).tolist()
[0, 1, 7, 8, 11, 15]
"""

from __future__ import annotations

import math

import torch
from torch import nn

N_BUCKETS, MAX_DISTANCE = 32, 128


def relative_buckets(rel: torch.Tensor, bidirectional: bool, n_buckets: int = N_BUCKETS,
                     max_distance: int = MAX_DISTANCE) -> torch.Tensor:
    """Bucket ids of relative positions ``rel = k_pos - q_pos`` (any shape, integer).

    A ``max_distance`` of at most half the buckets (per direction) clips instead (Shaw et al.
    2018): one bucket per distance below ``max_distance``, one for every distance from it on.

    >>> relative_buckets(torch.tensor([-9, -2, 0, 1, 3, 50]), bidirectional=True, max_distance=3).tolist()
    [3, 2, 0, 17, 19, 19]
    """
    out = torch.zeros_like(rel)
    if bidirectional:
        n_buckets //= 2
        out = out + (rel > 0).long() * n_buckets  # keys after the query: the upper half
        dist = rel.abs()
    else:
        dist = (-rel).clamp(min=0)  # a causal stack only sees keys at or before the query
    exact = n_buckets // 2
    if max_distance <= exact:
        return out + dist.clamp(max=max_distance)
    log_bucket = exact + (
        torch.log(dist.float().clamp(min=1) / exact) / math.log(max_distance / exact) * (n_buckets - exact)
    ).long()
    log_bucket = log_bucket.clamp(max=n_buckets - 1)
    return out + torch.where(dist < exact, dist, log_bucket)


class RelativeBias(nn.Module):
    """Additive score bias ``[B, H, Tq, Tk]`` from a learned ``[n_buckets, H]`` table."""

    def __init__(self, n_heads: int, bidirectional: bool, max_distance: int = MAX_DISTANCE):
        super().__init__()
        self.bidirectional, self.max_distance = bidirectional, max_distance
        self.table = nn.Embedding(N_BUCKETS, n_heads)

    @classmethod
    def from_config(cls, cfg, causal: bool) -> RelativeBias:
        """A causal stack sees keys on one side only; coupled positions (digit places, symbol
        indices) are not ordered like the sequence, so keys may sit on either side of the query."""
        return cls(cfg.n_heads, not causal or cfg.positions.coupled, cfg.relative_max_distance)

    def forward(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        return self.pairs(q_pos, k_pos[:, None, :])  # [B, H, Tq, Tk]

    def pairs(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """``q_pos [B, Tq]`` and each query's own keys ``k_pos [B, Tq or 1, K]`` -> ``[B, H, Tq, K]``."""
        rel = k_pos - q_pos[:, :, None]  # [B, Tq, K]
        bias = self.table(relative_buckets(rel, self.bidirectional, max_distance=self.max_distance))  # [B, Tq, K, H]
        return bias.permute(0, 3, 1, 2)
