"""Modular arithmetic without brackets (regular): ``1 + 2 * 3 - 4`` mod 5."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, Vocab, check_range
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task

OPS = ("+", "-", "*")


@register_task("modular_arithmetic_simple")
@dataclass(frozen=True)
class ModularArithmeticSimple(ChomskyTask):
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
    description: ClassVar[str] = "an expression with + - * reduced mod 5 (Chomsky suite, regular)"
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def __post_init__(self):
        super().__post_init__()
        check_range("task.modulus", self.modulus, 2, 100)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(d) for d in range(self.modulus)] + list(OPS))

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
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

    @property
    def n_states(self) -> int:  # the automaton's states: (finished sum, product term) mod the modulus
        return self.modulus**2

    def running_states(self, inputs: torch.Tensor) -> torch.Tensor:
        """After each symbol, ``sum * modulus + term`` ``[n, L]``: the finished sum and the signed
        product term being multiplied (unchanged by an operator, which the next digit reads from the
        input); the value so far is ``sum + term`` (``tasks/scratchpad.py``).

        >>> ModularArithmeticSimple().running_states(torch.tensor([[6, 10, 7, 12, 8]])).tolist()  # 1 + 2 * 3
        [[1, 1, 7, 7, 6]]
        """
        m, zero = self.modulus, self.vocab.id("0")
        plus, minus, times = (self.vocab.id(op) for op in OPS)
        total, term = torch.zeros_like(inputs[:, 0]), inputs[:, 0] - zero  # [n]
        out = [total * m + term]
        for i in range(1, inputs.shape[1]):
            x, op = inputs[:, i], inputs[:, i - 1]
            d = x - zero
            digit = (x >= zero) & (x < zero + m)
            new_total = torch.where(op == times, total, (total + term) % m)
            new_term = torch.where(op == times, term * d % m, torch.where(op == minus, -d % m, d))
            total, term = torch.where(digit, new_total, total), torch.where(digit, new_term, term)
            out.append(total * m + term)
        return torch.stack(out, 1)
