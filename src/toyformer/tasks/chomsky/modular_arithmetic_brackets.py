"""Modular arithmetic with brackets (deterministic context-free): ``((1+2)*(-3))`` mod 5."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, Vocab, check_range
from toyformer.tasks.chomsky.expressions import SYMBOLS, random_expressions
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task


@register_task("modular_arithmetic_brackets")
@dataclass(frozen=True)
class ModularArithmeticBrackets(ChomskyTask):
    """Reduce a fully bracketed expression of exactly ``length`` symbols mod ``modulus``: digits,
    unary ``-``, and ``+ - *`` (``mult=false``: ``+ -`` only), drawn by the suite's grammar
    (``expressions.py``: ``d``, ``-d``, ``(d)``, ``(-d)`` or ``(left op right)``, the split
    uniform).

    Worked example (``length=8, modulus=5``)::

        input  ( ( - 3 ) * 4 )      written ((-3)*4): -12
        target 3                    (-12 mod 5)
    """

    length: int = 21
    modulus: int = 5
    mult: bool = True

    kind: ClassVar[str] = "classify"
    description: ClassVar[str] = "a bracketed expression reduced mod 5 (Chomsky suite, deterministic context-free)"
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def __post_init__(self):
        super().__post_init__()
        check_range("task.modulus", self.modulus, 2, 100)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(d) for d in range(self.modulus)] + list(SYMBOLS))

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        ops = ("+", "-", "*") if self.mult else ("+", "-")
        codes, values = random_expressions(n, length, self.modulus, ops, generator)
        zero = self.vocab.id("0")  # codes are digits, then SYMBOLS: the vocabulary's order
        return Examples(codes + zero, (values + zero).unsqueeze(1))
