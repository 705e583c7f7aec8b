"""Attention through a window without the ``[Tq, Tk]`` score matrix: each query is scored against
its candidate keys only. A windowed stack (``model.attention_window``) reads long inputs this way
at evaluation, where a 1,000-digit sum (3,000 tokens) would otherwise need 36 million scores per
head and row; the answers are those of the dense path (``tests/test_positional.py`` checks).

The keys within ``window`` positions of a query (positions may be digit places, so the keys of a
window are not neighbours in the sequence) are found by sorting the keys by position: they are
then one contiguous run, found by ``searchsorted``. With ``sink`` the keys at position 0 (the
tokens that are not digits, or the first token) are candidates of every query too. A ``Local``
plan holds, per query, the candidate key columns and the additive bias of each (the positional
score bias; ``-inf`` for a key the dense mask hides: padding, later tokens of a causal stack, or
the unused end of a short window), so every layer of a stack reuses it.

>>> allowed = torch.ones(1, 1, 5, 5, dtype=torch.bool)            # [B, 1, Tq, Tk]
>>> pos = torch.tensor([[0, 3, 1, 2, 3]])                         # the keys' (and queries') positions
>>> index, keep = window_keys(allowed, pos, pos, window=1, sink=False)
>>> sorted(index[0, 2][keep[0, 2]].tolist())                      # position 1 sees positions 0..2
[0, 2, 3]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOCAL_FROM = 256  # queries from which a windowed stack attends locally (evaluation: no gradient)


@dataclass(frozen=True)
class Local:
    """Candidate keys of every query: ``index [B, Tq, K]`` key columns and ``bias [B, 1 or H, Tq, K]``
    added to their scores (``-inf`` where a key is not seen)."""

    index: torch.Tensor
    bias: torch.Tensor


def window_keys(allowed: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor, window: int,
                sink: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate key columns ``[B, Tq, K]`` of each query and whether each is seen ``[B, Tq, K]``:
    the keys whose position is within ``window`` of the query's, allowed by the boolean mask
    ``allowed [B, 1, Tq, Tk]`` (and, with ``sink``, every key at position 0)."""
    b, tq = q_pos.shape
    tk = k_pos.shape[1]
    col = torch.arange(tk, device=k_pos.device)
    order = (k_pos * tk + col).argsort(-1)  # [B, Tk] keys by position, then column
    by_pos = k_pos.gather(1, order)
    lo = torch.searchsorted(by_pos, q_pos - window, side="left")  # [B, Tq]
    hi = torch.searchsorted(by_pos, q_pos + window, side="right")
    width = max(1, int((hi - lo).max()))
    cols = lo[..., None] + torch.arange(width, device=k_pos.device)  # [B, Tq, K] into the sorted keys
    inside = cols < hi[..., None]
    index = order.gather(1, cols.clamp(max=tk - 1).view(b, -1)).view(b, tq, width)
    if sink:  # position-0 keys come once, as sinks, not also through a window that reaches 0
        inside &= k_pos.gather(1, index.view(b, -1)).view(b, tq, width) != 0
        at0 = k_pos == 0  # [B, Tk]
        n0 = max(1, int(at0.sum(-1).max()))
        sinks = (~at0).long().argsort(dim=-1, stable=True)[:, :n0]  # [B, S] the position-0 columns first
        real = torch.arange(n0, device=k_pos.device)[None] < at0.sum(-1, keepdim=True)  # [B, S]
        index = torch.cat([index, sinks[:, None].expand(b, tq, n0)], -1)
        inside = torch.cat([inside, real[:, None].expand(b, tq, n0)], -1)
    keep = inside & allowed[:, 0].gather(2, index)
    return index, keep


def local_attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan: Local) -> tuple[torch.Tensor, torch.Tensor]:
    """``q [B, H, Tq, dh]`` over its candidate keys among ``k, v [B, H, Tk, dh]``: returns
    ``y [B, H, Tq, dh]`` and the weights ``[B, H, Tq, K]`` over the candidates."""
    b = q.shape[0]
    rows = torch.arange(b, device=q.device)[:, None, None]
    k_c = k.transpose(1, 2)[rows, plan.index]  # [B, Tq, K, H, dh]
    v_c = v.transpose(1, 2)[rows, plan.index]
    scores = torch.einsum("bhqd,bqkhd->bhqk", q, k_c) / math.sqrt(q.shape[-1]) + plan.bias  # [B, H, Tq, K]
    weights = scores.softmax(-1)
    return torch.einsum("bhqk,bqkhd->bhqd", weights, v_c), weights
