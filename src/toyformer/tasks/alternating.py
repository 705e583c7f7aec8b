"""R3: continue an alternating sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, LengthTask
from toyformer.tasks.registry import register_task


@register_task("alternating")
@dataclass(frozen=True)
class Alternating(LengthTask):
    """Continue ``1 0 1 0 ...``: the input is ``length`` alternating bits starting with a random
    bit, the answer the next ``length`` bits. R3's tiny task for the smallest encoder-decoder.

    Worked example (``length=4``)::

        input  1 0 1 0
        target 1 0 1 0
    """

    length: int = 8

    kind: ClassVar[str] = "seq2seq"
    default_layout: ClassVar[str] = "seq2seq"
    holdout: ClassVar[bool] = False  # two distinct examples per length
    description: ClassVar[str] = "continue an alternating 1 0 1 0 sequence (R3)"
    tokens: ClassVar[tuple[str, ...]] = ("0", "1")
    # evaluation is one cheap pass: check often, so that training stops soon after it is solved
    config_defaults: ClassVar[dict] = {"eval": {"every": 20}}

    def _examples(self, first: torch.Tensor, length: int) -> Examples:
        pos = torch.arange(2 * length).unsqueeze(0)  # [1, 2L]
        seq = (first.unsqueeze(1) + pos) % 2 + self.vocab.id("0")  # [n, 2L]
        return Examples(seq[:, :length], seq[:, length:])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        return self._examples(torch.randint(2, (n,), generator=generator), length)

    def domain(self) -> Examples | None:
        return self._examples(torch.tensor([1, 0]), self.length)
