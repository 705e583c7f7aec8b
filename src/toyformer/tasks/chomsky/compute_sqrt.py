"""Square root (context-sensitive): the floor of the square root of a binary number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples
from toyformer.tasks.chomsky import bits
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task


@register_task("compute_sqrt")
@dataclass(frozen=True)
class ComputeSqrt(ChomskyTask):
    """A number uniform in ``1 .. 2**length - 1`` in big-endian binary (``length`` bits, leading
    zeros kept); the answer is the floor of its square root in ``ceil(length / 2)`` bits.

    Worked example (``length=6``)::

        input  1 0 0 1 0 1      (37)
        target 1 1 0            (6: 6 * 6 <= 37 < 7 * 7)
    """

    length: int = 20

    kind: ClassVar[str] = "seq2seq"
    description: ClassVar[str] = "the integer square root of a binary number (Chomsky suite, context-sensitive)"
    tokens: ClassVar[tuple[str, ...]] = ("0", "1")
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        x = bits.random_nonzero(n, torch.full((n,), length), length, generator)  # little-endian
        root = bits.isqrt(x)  # [n, ceil(L / 2)], little-endian
        zero = self.vocab.id("0")
        return Examples(x.flip(1) + zero, root.flip(1) + zero)
