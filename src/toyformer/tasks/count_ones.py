"""R0: count the ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, TaskBase, Vocab, check_range
from toyformer.tasks.registry import register_task


@register_task("count_ones")
@dataclass(frozen=True)
class CountOnes(TaskBase):
    """Count the ones in a bit string of ``length`` bits; the answer is one class token.

    As in R0, ``n`` is uniform in 1..length and the input is ``n`` ones followed by zeros
    (``shuffled=true`` puts the ones at random places). Worked example (``length=6``)::

        input  1 1 1 0 0 0
        target 3
    """

    length: int = 10
    shuffled: bool = False

    kind: ClassVar[str] = "classify"
    default_layout: ClassVar[str] = "classifier"
    holdout: ClassVar[bool] = False  # 10 distinct inputs: the test set is all of them
    description: ClassVar[str] = "count the ones in a bit string (R0)"
    # evaluation is one cheap pass: check often, so that training stops soon after it is solved
    config_defaults: ClassVar[dict] = {"eval": {"every": 20}}

    def __post_init__(self):
        check_range("task.length", self.length, 1, 512)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(self.length + 1)])  # "0", "1" double as the bits

    def _examples(self, n_ones: torch.Tensor, generator: torch.Generator | None, length: int) -> Examples:
        zero = self.vocab.id("0")
        if self.shuffled:
            ranks = torch.rand(len(n_ones), length, generator=generator).argsort(1).argsort(1)  # [n, L]
            bits = ranks < n_ones.unsqueeze(1)
        else:
            bits = torch.arange(length).unsqueeze(0) < n_ones.unsqueeze(1)  # [n, L]
        return Examples(bits.long() + zero, (n_ones + zero).unsqueeze(1))

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length if length is None else length
        check_range("length", length, 1, self.length)  # the classes stop at self.length
        n_ones = torch.randint(1, length + 1, (n,), generator=generator)
        return self._examples(n_ones, generator, length)

    def domain(self) -> Examples | None:
        if self.shuffled:
            return None
        return self._examples(torch.arange(1, self.length + 1), None, self.length)
