"""Binary multiplication (context-sensitive): ``n * m`` in little-endian binary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples
from toyformer.tasks.chomsky import bits
from toyformer.tasks.chomsky.binary_addition import answer, expression, operands
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask, until_end
from toyformer.tasks.registry import register_task


@register_task("binary_multiplication")
@dataclass(frozen=True)
class BinaryMultiplication(ChomskyTask):
    """Multiply two numbers in little-endian binary, written ``a * b`` in ``length`` tokens
    (operands drawn as for ``binary_addition``); the answer is the product's bits, ``end``, and
    ``0`` up to ``length`` tokens, scored up to ``end`` (``accuracy_mask``). Lengths 1 and 2 hold
    random bits and answer ``end`` (length 1) or ``0 end``, as in the reference code.

    Worked example (``length=9``)::

        input  0 0 1 * 0 1 1 0 1      (4 * 22)
        target 0 0 0 1 1 0 1 end 0     (88, little-endian)
    """

    length: int = 20

    kind: ClassVar[str] = "tag"
    description: ClassVar[str] = "multiply two little-endian binary numbers (Chomsky suite, context-sensitive)"
    tokens: ClassVar[tuple[str, ...]] = ("0", "1", "*", "end")
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        v = self.vocab
        zero, end = v.id("0"), v.id("end")
        if length <= 2:
            value = torch.randint(2**length - 1, (n,), generator=generator)
            x = ((value.unsqueeze(1) >> torch.arange(length)) & 1) + zero
            target = torch.full((n, length), zero)
            target[:, length - 1] = end
            return Examples(x, target)
        a, b, len_a = operands(n, length, generator)
        return Examples(expression(a, b, len_a, v.id("*"), zero), answer(bits.multiply(a, b), length, end, zero))

    def accuracy_mask(self, target: torch.Tensor) -> torch.Tensor:
        """The positions the suite scores: up to and including ``end``."""
        return until_end(target, self.vocab.id("end"))
