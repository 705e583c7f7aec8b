"""Transformer blocks and stacks shared by every layout.

A block is self-attention (+ cross-attention in a seq2seq decoder) + feed-forward, each a
residual branch with the norm either before it (``pre``: ``x + f(norm(x))``) or after the sum
(``post``: ``norm(x + f(x))``, the original Transformer and ``nn.TransformerEncoder``'s default).
Post-norm stacks are what make deep models hard to train without warm-up (R0).

Hook points (``hookpoints``): each block's residual stream ``resid_pre``, ``resid_mid`` (after
self-attention), ``resid_cross`` (after cross-attention) and ``resid_post``; the feed-forward
block's ``in`` (the residual as it reads it, before its norm), ``hidden`` (after the activation)
and ``out``; the stack's ``final_norm``.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from toyformer.models.attention import SPLIT, Attention, KVCache, with_bias
from toyformer.models.hookpoints import Hookable, hookable
from toyformer.models.kernels import Dropout, ReLU
from toyformer.models.local_attention import LOCAL_FROM, Local, window_keys
from toyformer.models.positional import RotatedPositions, ScoreBias, build


class FeedForward(Hookable):
    def __init__(self, d_model: int, d_ff: int, dropout: float, activation: str, name: str = "ff"):
        super().__init__()
        self.up, self.down = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.act = nn.GELU() if activation == "gelu" else ReLU()
        self.drop = Dropout(dropout)
        hookable(self, name, ("in", "hidden", "out"))  # "in" is applied by the block, before its norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, d] -> [B, T, d]
        if self.tap is None:
            return self.down(self.drop(self.act(self.up(x))))
        return self.tap("out", self.down(self.drop(self.tap("hidden", self.act(self.up(x))))))


class Block(Hookable):
    def __init__(self, cfg, name: str, cross: bool):
        super().__init__()
        d = cfg.d_model
        self.pre = cfg.norm == "pre"
        self.attn = Attention(d, cfg.n_heads, cfg.dropout, f"{name}.attn", cfg.attention)
        self.norm1 = nn.LayerNorm(d)
        self.cross_attn = Attention(d, cfg.n_heads, cfg.dropout, f"{name}.cross_attn", cfg.attention) if cross else None
        self.norm_cross = nn.LayerNorm(d) if cross else None
        self.ff = FeedForward(d, cfg.d_ff, cfg.dropout, cfg.activation, f"{name}.ff")
        self.norm2 = nn.LayerNorm(d)
        self.drop = Dropout(cfg.dropout)
        hookable(self, name, ("resid_pre", "resid_mid", *(("resid_cross",) if cross else ()), "resid_post"))

    def _residual(self, x, norm, f):
        if self.pre:
            return x + self.drop(f(norm(x)))
        return norm(x + self.drop(f(x)))

    def _attend(self, attn: Attention, x, norm, context, mask, rotary, cache):
        """The attention branch; while a hook asks for its per-head inputs the module gets ``x``
        before the norm (and the norm: pre-norm applies it per head; post-norm reads ``x`` as it is)."""
        if attn.tap is None or not attn.tap.wants_any(SPLIT):
            return self._residual(x, norm, lambda h: attn(h, context, mask, rotary, cache))
        if self.pre:
            return x + self.drop(attn(x, context, mask, rotary, cache, norm=norm))
        return norm(x + self.drop(attn(x, context, mask, rotary, cache, norm=_same)))

    def _feed_forward(self, x):
        """The feed-forward branch; a hook on ``ff.in`` may change what it reads, not the residual."""
        tap = self.ff.tap
        if tap is None or not tap.wants("in"):
            return self._residual(x, self.norm2, self.ff)
        h = tap("in", x)
        if self.pre:
            return x + self.drop(self.ff(self.norm2(h)))
        return self.norm2(x + self.drop(self.ff(h)))

    def forward(self, x, mask, rotary=None, memory=None, cross_mask=None, cache=None):
        """``x [B, T, d]``; ``mask [B, 1 or H, T, Tk]``; ``memory [B, S, d]`` with ``cross_mask``."""
        tap = self.tap
        if tap is not None:
            x = tap("resid_pre", x)
        x = self._attend(self.attn, x, self.norm1, None, mask, rotary, cache)
        if tap is not None:
            x = tap("resid_mid", x)
        if self.cross_attn is not None:
            x = self._attend(self.cross_attn, x, self.norm_cross, memory, cross_mask, None, cache)
            if tap is not None:
                x = tap("resid_cross", x)
        x = self._feed_forward(x)
        return x if tap is None else tap("resid_post", x)


def _same(x):
    return x


class Stack(Hookable):
    """``n`` blocks named ``{name}.blocks.{i}``; pre-norm stacks end with a final LayerNorm.

    The stack owns the positional schemes that act inside attention (plugged in at ``rotation``:
    queries and keys, as RoPE; at ``scores``: a bias on the scores, as ALiBi or a learned relative bias) and builds
    them once per forward, and the sliding window of ``model.attention_window`` (keys at most that many positions
    away). With ``model.window_sink`` the keys at position 0 stay visible through the window (attention sinks,
    Xiao et al. 2024): with digit positions these are the tokens that are not digits (``+``,
    ``<sep>``), so a head whose digit is missing (past the end of an operand) has a fixed place
    to look, the same at every length.
    """

    def __init__(self, cfg, n_layers: int, name: str, causal: bool, cross: bool = False):
        super().__init__()
        self.blocks = nn.ModuleList(Block(cfg, f"{name}.blocks.{i}", cross) for i in range(n_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()
        scheme = cfg.positions.scheme
        self.rotary: RotatedPositions | None = build(scheme, cfg) if scheme.plug == "rotation" else None
        self.window, self.sink = cfg.attention_window, cfg.window_sink
        self.score_bias: ScoreBias | None = None
        hookable(self, name, ("final_norm",))
        self.hooks_last = True  # listed after its blocks
        if scheme.plug == "scores":
            self.score_bias = build(scheme, cfg, causal=causal)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, k_pos: torch.Tensor | None = None,
                memory=None, cross_mask=None, cache: KVCache | None = None) -> torch.Tensor:
        """``x [B, T, d]`` at positions ``pos [B, T]``; ``k_pos [B, Tk]`` the positions of all keys
        (with a cache: the whole history; default ``pos``). Returns ``[B, T, d]``."""
        k_pos = pos if k_pos is None else k_pos
        plan: torch.Tensor | Local = mask
        if self._local(pos):  # a long input through the window: candidate keys only
            plan = self.local_plan(mask, pos, k_pos)
        else:
            if self.window is not None:  # sliding window: every query keeps itself (distance 0)
                near = (pos[:, :, None] - k_pos[:, None, :]).abs() <= self.window  # [B, T, Tk]
                if self.sink:
                    near = near | (k_pos == 0)[:, None, :]
                mask = mask & near[:, None]
            if self.score_bias is not None:
                mask = with_bias(mask, self.score_bias(pos, k_pos))  # [B, H, T, Tk]
            plan = mask
        rotary = self.rotary.at(pos) if self.rotary is not None else None
        for block in self.blocks:
            x = block(x, plan, rotary, memory, cross_mask, cache)
        return self.final_norm(x) if self.tap is None else self.tap("final_norm", self.final_norm(x))

    def _local(self, pos: torch.Tensor) -> bool:
        """Whether to attend through ``local_attention``: a window, many queries, evaluation (no
        gradient, no dropout), and no hook that asks for a dense attention pattern."""
        if self.window is None or pos.shape[1] < LOCAL_FROM or self.training or torch.is_grad_enabled():
            return False
        blocks = cast("list[Block]", self.blocks)
        return not any(b.attn.tap is not None and b.attn.tap.wants("pattern") for b in blocks)

    def local_plan(self, mask: torch.Tensor, pos: torch.Tensor, k_pos: torch.Tensor) -> Local:
        """The candidate keys of every query within the window (and the sinks), with their score
        bias; ``mask [B, 1, Tq, Tk]`` is the boolean mask of padding and causality."""
        index, keep = window_keys(mask, pos, k_pos, self.window, self.sink)  # [B, Tq, K]
        b, tq, k = index.shape
        if self.score_bias is not None:
            bias = self.score_bias.pairs(pos, k_pos.gather(1, index.view(b, -1)).view(b, tq, k))  # [B, H, Tq, K]
        else:
            bias = torch.zeros(b, 1, tq, k, device=pos.device)
        return Local(index, bias.masked_fill(~keep[:, None], float("-inf")))
