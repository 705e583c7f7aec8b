"""Solve an equation (deterministic context-free): find ``x`` in ``((1+x)-(-3))=2`` mod 5."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, Vocab, check_range
from toyformer.tasks.chomsky.expressions import SYMBOLS, random_expressions
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task


@register_task("solve_equation")
@dataclass(frozen=True)
class SolveEquation(ChomskyTask):
    """A bracketed ``+ -`` expression of ``length - 2`` symbols (the grammar of
    ``modular_arithmetic_brackets``) with one digit replaced by ``x``, then ``=`` and its value
    mod ``modulus``; the answer is the replaced digit. Which digit: a position drawn uniformly,
    then the first digit from there on (wrapping around), as in the reference code. Lengths
    below 3 are all ``0`` with the answer ``0``, also as there.

    Worked example (``length=10, modulus=5``)::

        input  ( x - ( - 3 ) ) = 0      x + 3 = 0
        target 2                        (x = 2 mod 5)
    """

    length: int = 21
    modulus: int = 5

    kind: ClassVar[str] = "classify"
    description: ClassVar[str] = ("the unknown x of a bracketed equation mod 5 (Chomsky suite, deterministic "
                                  "context-free)")
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def __post_init__(self):
        super().__post_init__()
        check_range("task.modulus", self.modulus, 2, 10)  # the value after '=' is one digit

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(d) for d in range(self.modulus)] + [s for s in SYMBOLS if s != "*"] + ["x", "="])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        v, m = self.vocab, self.modulus
        zero = v.id("0")
        if length < 3:
            return Examples(torch.full((n, length), zero), torch.full((n, 1), zero))
        codes, values = random_expressions(n, length - 2, m, ("+", "-"), generator)  # [n, L-2], [n]
        width = length - 2
        start = torch.randint(width, (n, 1), generator=generator)
        col = torch.arange(width).unsqueeze(0)
        is_digit = codes < m
        # the first digit at or after start, else the first digit of the row (wrapping around)
        after = torch.where(is_digit & (col >= start), col, width).min(1).values
        first = torch.where(is_digit, col, width).min(1).values
        pick = torch.where(after < width, after, first)  # [n]
        rows = torch.arange(n)
        answer = codes[rows, pick]
        symbol_ids = torch.tensor([v.id(s) if s in v.index else -1 for s in SYMBOLS])
        tokens = torch.where(is_digit, codes + zero, symbol_ids[(codes - m).clamp(min=0)])
        tokens[rows, pick] = v.id("x")
        eq = torch.stack([torch.full((n,), v.id("=")), values + zero], 1)
        return Examples(torch.cat([tokens, eq], 1), (answer + zero).unsqueeze(1))
