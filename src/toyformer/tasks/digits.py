"""Vectorised decimal digits for the arithmetic tasks: numbers of any length as digit tensors.

Numbers are ``[n, D]`` digit tensors, least significant digit first, so operands far beyond
int64 (100-digit addition) work. ``n_digits`` counts the digits that are written out.
"""

from __future__ import annotations

import torch


def random_digits(n_digits: torch.Tensor, width: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform numbers with exactly ``n_digits[i]`` digits (1 digit includes 0): ``[n, width]``
    digits, least significant first, zero above the top digit."""
    n = len(n_digits)
    d = torch.randint(10, (n, width), generator=generator)  # [n, width]
    top = torch.randint(1, 10, (n,), generator=generator)  # a non-zero leading digit
    pos = torch.arange(width).unsqueeze(0)  # [1, width]
    d = torch.where(pos < n_digits.unsqueeze(1), d, 0)
    lead = (n_digits - 1).clamp(min=0).unsqueeze(1)
    d = torch.where((pos == lead) & (n_digits.unsqueeze(1) > 1), top.unsqueeze(1), d)
    return d


def add_digits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Digit-wise sum with carries: ``[n, D] + [n, D] -> [n, D + 1]`` (least significant first)."""
    out = torch.zeros(a.shape[0], a.shape[1] + 1, dtype=torch.long)
    carry = torch.zeros(a.shape[0], dtype=torch.long)
    for k in range(a.shape[1]):  # a loop over digit places, vectorised over the batch
        s = a[:, k] + b[:, k] + carry
        out[:, k], carry = s % 10, s // 10
    out[:, -1] = carry
    return out


def count_digits(d: torch.Tensor) -> torch.Tensor:
    """Written length of digit tensors ``[n, D] -> [n]`` (0 is written as one digit)."""
    nonzero = d != 0
    pos = torch.arange(1, d.shape[1] + 1).unsqueeze(0)
    return (nonzero * pos).max(1).values.clamp(min=1)


def to_tokens(d: torch.Tensor, n_digits: torch.Tensor, digit0: int, msb_first: bool = True) -> torch.Tensor:
    """Digits ``[n, D]`` -> token ids ``[n, D]``, left-aligned, ``<pad>`` (0) after ``n_digits``.

    >>> to_tokens(torch.tensor([[3, 2, 1, 0]]), torch.tensor([3]), digit0=5).tolist()
    [[6, 7, 8, 0]]
    """
    pos = torch.arange(d.shape[1]).unsqueeze(0)  # [1, D]
    src = (n_digits.unsqueeze(1) - 1 - pos) if msb_first else pos.expand(len(d), -1)  # [n, D]
    valid = pos < n_digits.unsqueeze(1)
    tok = torch.gather(d, 1, src.clamp(min=0, max=d.shape[1] - 1)) + digit0
    return torch.where(valid, tok, 0)
