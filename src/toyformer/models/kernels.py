"""The speed paths, in one place: how attention is computed (``attend`` and the choice among its
implementations), and CPU versions of the ops that dominate small models. How much each path
gains is measured by ``toyformer bench kernels`` (``docs/results/kernels.md``).

Attention has three implementations, chosen by ``choose``:

========== ======================================================= =============================
impl       what                                                    used
========== ======================================================= =============================
sdpa       ``F.scaled_dot_product_attention``, the fused kernel    by default
explicit   scores, ``softmax`` below, dropout below, ``@ v``      weights recorded; dropout on
                                                                   the CPU; under ``vmap``
                                                                   (replicas: sdpa has no
                                                                   batching rule)
few_keys   broadcast products and sums                             ``torch.compile`` on the CPU
                                                                   with at most ``SHORT_ROW`` keys
========== ======================================================= =============================

The CPU ops:

- ``softmax(-1)`` over rows shorter than 16 (one AVX-512 vector) runs in a scalar loop in ATen;
  four whole-tensor ops (max, subtract-exp, sum, divide) are faster there. From 16 keys on
  ATen's kernel is the faster, so it is used there.
- ``F.dropout`` draws one Bernoulli variable per element; here four 16-bit uniform numbers come
  from each 64-bit draw of the generator and one comparison makes the mask. The drop
  probability is rounded to a multiple of 1/65536 (0.01 -> 0.0099945) and the kept values are
  scaled by the exact inverse of the kept fraction, so the expected output is the input, as
  with ``F.dropout``.
- Under ``torch.compile`` ``relu`` takes its backward from the sign of its output: inductor
  stores boolean tensors slowly, and its partitioner would save ReLU's mask for the backward.

On other devices the ops fall back to PyTorch's own kernels (fused there). All are
deterministic under ``torch.manual_seed`` like everything else in a run.

>>> x = torch.randn(4, 2, 9, 9, requires_grad=True)
>>> torch.allclose(softmax(x), x.softmax(-1), atol=1e-6)
True
>>> drop = Dropout(0.1).train()
>>> y = drop(torch.ones(10_000))
>>> round(float((y == 0).float().mean()), 1), round(float(y.mean()), 1)
(0.1, 1.0)
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

SHORT_ROW = 15  # softmax rows up to this many keys take the whole-tensor path on the CPU
Impl = Literal["auto", "sdpa", "explicit", "few_keys"]
IMPLS: tuple[str, ...] = typing.get_args(Impl)
_LEVELS = 1 << 16  # dropout draws 16-bit uniform numbers


class _FromOutput(torch.autograd.Function):
    """An op whose backward needs only its output (saved here), batched under ``vmap``;
    ``backward`` stays a staticmethod in each subclass, as ``torch.compile`` traces only those."""

    generate_vmap_rule = True

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)


class _ShortSoftmax(_FromOutput):
    """Softmax over the last dimension from whole-tensor ops."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        e = (x - x.amax(-1, keepdim=True)).exp()  # out of place: vmap's generated rule replays it
        return e / e.sum(-1, keepdim=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        gy = grad * y
        return gy.sub_(y * gy.sum(-1, keepdim=True))  # y * (grad - <grad, y>)


def softmax(x: torch.Tensor) -> torch.Tensor:
    """``x.softmax(-1)``, faster on the CPU for short rows (computed there in float32 and returned
    in ``x``'s dtype)."""
    if x.device.type != "cpu" or x.shape[-1] > SHORT_ROW:
        return x.softmax(-1)
    if x.dtype != torch.float32:
        return _ShortSoftmax.apply(x.float()).to(x.dtype)
    return _ShortSoftmax.apply(x)


def keep_mask(x: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """A boolean mask like ``x``, False with probability ``p`` rounded to a multiple of 1/65536,
    and the scale ``1 / (1 - p_rounded)`` of the kept values. Uses the default generator."""
    n = x.numel()
    dropped = round(p * _LEVELS)
    bits = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    uniform = bits.view(torch.int16)[:n].view(x.shape)  # each value in -32768..32767, uniform
    return uniform >= dropped - _LEVELS // 2, _LEVELS / (_LEVELS - dropped)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)``, with a faster mask on the CPU (see the module docstring)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    keep, scale = keep_mask(x, p)
    return x.mul(keep).mul_(scale)  # the backward multiplies by the same mask and scale


class _ReLU(_FromOutput):
    """ReLU whose backward multiplies by the sign of the output (0 or 1), not by a saved mask."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * ctx.saved_tensors[0].sign()


def relu(x: torch.Tensor) -> torch.Tensor:
    """``torch.relu``; under ``torch.compile`` on the CPU its backward needs no boolean mask."""
    if x.device.type == "cpu" and torch.compiler.is_compiling():
        return _ReLU.apply(x)
    return torch.relu(x)


class ReLU(nn.Module):
    """``nn.ReLU`` on ``relu``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu(x)


class Dropout(nn.Module):
    """``nn.Dropout`` on ``dropout`` (batched by ``vmap``: each replica draws its own mask)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def choose(impl: Impl, q: torch.Tensor, k: torch.Tensor, p: float, need_weights: bool) -> str:
    """The implementation that computes attention of ``q [B, H, Tq, dh]`` over ``k [B, H, Tk, dh]``:
    ``impl`` itself unless it is ``auto`` (or the weights are needed, which only ``explicit``
    returns); for ``auto`` the fastest one for the device, the number of keys and the dropout
    probability ``p``."""
    if need_weights:
        return "explicit"
    if impl != "auto":
        return impl
    if q.device.type == "cpu":
        if torch.compiler.is_compiling() and k.shape[-2] <= SHORT_ROW:
            return "few_keys"
        if p > 0:  # the fused kernel falls back to a slower explicit path of its own here
            return "explicit"
    return "sdpa"


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, p: float,
           impl: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention by implementation ``impl`` (``sdpa``, ``explicit`` or
    ``few_keys``; see ``choose``): ``q [B, H, Tq, dh]``, ``k, v [B, H, Tk, dh]``, ``mask``
    boolean (True where a query may see a key) or additive (``-inf`` hides a key)
    ``[B, 1 or H, Tq, Tk]``; ``p`` the dropout probability on the weights (0 at evaluation).
    Returns ``y [B, H, Tq, dh]`` and, for ``explicit``, the weights ``[B, H, Tq, Tk]`` (before
    dropout)."""
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
    if impl == "few_keys":
        return few_keys_attention(q, k, v, mask, p), None
    weights = attention_weights(q, k, mask)
    return dropout(weights, p) @ v, weights


def attention_scores(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The scores before the softmax ``[B, H, Tq, Tk]`` of the ``explicit`` implementation
    (arguments as ``attend``): scaled dot products, hidden keys at ``-inf``."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # [B, H, Tq, Tk]
    return scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The attention pattern ``[B, H, Tq, Tk]`` of the ``explicit`` implementation (arguments as
    ``attend``): ``softmax`` of ``attention_scores``."""
    return softmax(attention_scores(q, k, mask))


def few_keys_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                       dropout: float = 0.0) -> torch.Tensor:
    """Attention over a few keys as broadcast products and sums, for ``torch.compile`` on the CPU:
    inductor fuses these into a handful of loops, forward and backward, where the fused kernel
    and the batched matmuls pay per-(row, head) overheads on tiny matrices. Arguments as
    ``attend``; returns ``[B, H, Tq, dh]``."""
    scores = (q.unsqueeze(3) * k.unsqueeze(2)).sum(-1) / math.sqrt(q.shape[-1])  # [B, H, Tq, Tk]
    scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = F.dropout(scores.softmax(-1), dropout) if dropout > 0 else scores.softmax(-1)
    return (weights.unsqueeze(-1) * v.unsqueeze(2)).sum(3)  # [B, H, Tq, dh]
