"""Faster CPU versions of ops that dominate small models: softmax over short rows, dropout, ReLU.

Measured on this project's 2-core CPU (torch 2.13, one thread, AVX-512):

- ``softmax(-1)`` over rows shorter than 16 (one AVX-512 vector) runs in a scalar loop in ATen:
  forward + backward of 20,000 rows of 9 take 4.8 ms there and 1.0 ms from four whole-tensor
  ops (max, subtract-exp, sum, divide); 2.3x-5.2x faster for rows of 2-15. From 16 keys on
  ATen's kernel is 1.3x-2.8x the faster, so it is used there.
- ``F.dropout`` draws one Bernoulli variable per element (600 us for ``[125, 9, 64]``); here
  four 16-bit uniform numbers come from each 64-bit draw of the generator and one comparison
  makes the mask (about 200 us with the multiply). The drop probability is rounded to a
  multiple of 1/65536 (0.01 -> 0.0099945) and the kept values are scaled by the exact inverse
  of the kept fraction, so the expected output is the input, as with ``F.dropout``.

On other devices both fall back to PyTorch's own kernels (fused there). Both are deterministic
under ``torch.manual_seed`` like everything else in a run.

Under ``torch.compile`` on the CPU, ``relu`` takes its backward from the sign of its output:
inductor (torch 2.13) stores boolean tensors at about 9 ns an element (a ``[900, 64]`` mask
takes 540 us, 27 us in eager mode), and its partitioner saved ReLU's mask for the backward,
which made R1's compiled forward 1.6 ms instead of 0.5 ms.

>>> x = torch.randn(4, 2, 9, 9, requires_grad=True)
>>> torch.allclose(softmax(x), x.softmax(-1), atol=1e-6)
True
>>> drop = Dropout(0.1).train()
>>> y = drop(torch.ones(10_000))
>>> round(float((y == 0).float().mean()), 1), round(float(y.mean()), 1)
(0.1, 1.0)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHORT_ROW = 15  # softmax rows up to this many keys take the whole-tensor path on the CPU
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
