"""Arithmetic on arbitrarily long binary numbers held as bit tensors, vectorised over the batch.

The suite's binary tasks reach 500 bits at its longest test length, far past ``int64``; these
functions work on ``[n, W]`` tensors of 0/1 (``torch.long``), **least significant bit first**,
with loops over bit positions (at most ``W``) and never over examples.

>>> a, b = to_bits(torch.tensor([6, 3]), 4), to_bits(torch.tensor([7, 5]), 4)
>>> from_bits(add(a, b)).tolist(), from_bits(multiply(a, b)).tolist()
([13, 8], [42, 15])
>>> from_bits(isqrt(to_bits(torch.tensor([37, 7, 1]), 6))).tolist()
[6, 2, 1]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_bits(x: torch.Tensor, width: int) -> torch.Tensor:
    """Non-negative int64 ``[n]`` -> ``[n, width]`` bits, least significant first (tests, docs)."""
    return (x.unsqueeze(1) >> torch.arange(width)) & 1


def from_bits(bits: torch.Tensor) -> torch.Tensor:
    """``[n, W]`` bits (W < 63), least significant first -> int64 ``[n]`` (tests, docs)."""
    return (bits << torch.arange(bits.shape[1])).sum(1)


def random_nonzero(n: int, lengths: torch.Tensor, width: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform integers in ``1 .. 2**lengths[i] - 1`` as ``[n, width]`` bits (zero from bit
    ``lengths[i]`` on): random bits, drawn again for the rows that came out all zero."""
    keep = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)  # [n, width]
    bits = torch.randint(2, (n, width), generator=generator) * keep
    zero = bits.sum(1) == 0
    while zero.any():
        again = torch.randint(2, (int(zero.sum()), width), generator=generator) * keep[zero]
        bits[zero] = again
        zero = bits.sum(1) == 0
    return bits


def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` for ``[n, W]`` bit tensors: ``[n, W + 1]`` bits (ripple carry over positions)."""
    width = max(a.shape[1], b.shape[1])
    a, b = F.pad(a, (0, width - a.shape[1])), F.pad(b, (0, width - b.shape[1]))
    out = torch.zeros(a.shape[0], width + 1, dtype=torch.long)
    carry = torch.zeros(a.shape[0], dtype=torch.long)
    for i in range(width):
        total = a[:, i] + b[:, i] + carry
        out[:, i], carry = total & 1, total >> 1
    out[:, width] = carry
    return out


def multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a * b`` for ``[n, Wa]`` and ``[n, Wb]`` bits: ``[n, Wa + Wb]`` bits. The column sums of
    the schoolbook product are one grouped convolution (exact in float64: each is at most
    ``min(Wa, Wb)``); the carries then ripple through them."""
    n, wa = a.shape
    wb = b.shape[1]
    # cross-correlation with the flipped b is the convolution: column k sums a[i] * b[k - i]
    columns = F.conv1d(F.pad(a.double(), (wb - 1, wb - 1)).unsqueeze(0), b.double().flip(1).unsqueeze(1),
                       groups=n)[0].round().long()  # [n, wa + wb - 1]
    out = torch.zeros(n, wa + wb, dtype=torch.long)
    carry = torch.zeros(n, dtype=torch.long)
    for k in range(wa + wb - 1):
        total = columns[:, k] + carry
        out[:, k], carry = total & 1, total >> 1
    out[:, wa + wb - 1] = carry  # the product fits: carry < 2 here
    return out


def at_least(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a >= b`` per row for equal-width bit tensors: decided by the highest differing bit."""
    differ = a != b  # [n, W]
    top = a.shape[1] - 1 - differ.flip(1).long().argmax(1)  # highest differing position
    rows = torch.arange(a.shape[0])
    return ~differ.any(1) | (a[rows, top] > b[rows, top])


def subtract(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a - b`` for equal-width bit tensors with ``a >= b``, without a loop: the borrow out of a
    position is the one generated (``a=0, b=1``) at the nearest position at or below it whose bits
    differ (equal bits pass the borrow on)."""
    width = a.shape[1]
    generate = (a == 0) & (b == 1)
    idx = torch.where(a != b, torch.arange(width), -1)
    nearest = idx.cummax(1).values  # [n, W], -1: no differing bit at or below
    borrow_out = (nearest >= 0) & generate.gather(1, nearest.clamp(min=0))
    borrow_in = F.pad(borrow_out[:, :-1], (1, 0)).to(a.dtype)
    return a ^ b ^ borrow_in


def isqrt(x: torch.Tensor) -> torch.Tensor:
    """``floor(sqrt(x))`` for ``[n, W]`` bits: ``[n, ceil(W / 2)]`` bits, by the digit-by-digit
    method (two bits of ``x`` per bit of the root, most significant first). The remainder and the
    root are held as ``uint8`` bits only as wide as they can be at each step (the remainder stays
    below ``4 * root + 4``), which keeps 500-bit square roots fast."""
    n, width = x.shape
    steps = (width + 1) // 2
    x = F.pad(x, (0, 2 * steps - width)).to(torch.uint8)  # an even number of bits
    rem = torch.zeros(n, 2, dtype=torch.uint8)
    root = torch.zeros(n, 0, dtype=torch.uint8)
    one_zero = torch.tensor([1, 0], dtype=torch.uint8).expand(n, 2)
    for s in range(steps - 1, -1, -1):
        w = steps - s + 2  # the widest the remainder and the trial value get at this step
        rem = torch.cat([x[:, 2 * s : 2 * s + 2], rem], 1)[:, :w]  # rem * 4 + the next two bits
        trial = F.pad(torch.cat([one_zero, root], 1), (0, w - 2 - root.shape[1]))  # 4 * root + 1
        fits = at_least(rem, trial)  # [n]
        rem = torch.where(fits.unsqueeze(1), subtract(rem, trial), rem)
        root = torch.cat([fits.to(torch.uint8).unsqueeze(1), root], 1)  # root * 2 + fits
    return root.long()
