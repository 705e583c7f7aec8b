"""Modular arithmetic without brackets (regular): ``1 + 2 * 3 - 4`` mod 5."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, Vocab, check_range
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS
from toyformer.tasks.registry import register_task

OPS = ("+", "-", "*")


@register_task("modular_arithmetic_simple")
@dataclass(frozen=True)
class ModularArithmeticSimple:
    """Reduce an expression of digits ``0 .. modulus-1`` and operators ``+ - *`` (drawn uniformly)
    mod ``modulus``, ``*`` before ``+`` and ``-``. An expression has odd length: an even length is
    drawn one shorter, as the suite's reference code does. The suite calls this task
    ``modular_arithmetic``; that name here is the grokking task ``a op b mod p``.

    Worked example (``length=7, modulus=5``)::

        input  1 + 2 * 3 - 4      (1 + 6 - 4 = 3)
        target 3
    """

    length: int = 21
    modulus: int = 5

    kind: ClassVar[str] = "classify"
    default_layout: ClassVar[str] = "masked"
    holdout: ClassVar[bool] = True
    description: ClassVar[str] = "an expression with + - * reduced mod 5 (Chomsky suite, regular)"
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def __post_init__(self):
        check_range("task.length", self.length, 1)
        check_range("task.modulus", self.modulus, 2, 100)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(d) for d in range(self.modulus)] + list(OPS))

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length if length is None else length
        check_range("length", length, 1)
        length -= 1 - length % 2  # odd
        m = self.modulus
        digits = torch.randint(m, (n, length // 2 + 1), generator=generator)  # [n, terms]
        ops = torch.randint(len(OPS), (n, length // 2), generator=generator)  # [n, terms - 1]
        # left to right: a finished sum and the product term being multiplied, with its sign
        total, term = torch.zeros(n, dtype=torch.long), digits[:, 0]
        for i in range(length // 2):
            op, d = ops[:, i], digits[:, i + 1]
            times = op == OPS.index("*")
            total = torch.where(times, total, total + term)
            term = torch.where(times, term * d % m, torch.where(op == OPS.index("-"), -d, d))
        value = (total + term) % m
        tokens = torch.empty(n, length, dtype=torch.long)
        tokens[:, 0::2] = digits + self.vocab.id("0")
        tokens[:, 1::2] = ops + self.vocab.id(OPS[0])
        return Examples(tokens, (value + self.vocab.id("0")).unsqueeze(1))

    def domain(self) -> Examples | None:
        return None
