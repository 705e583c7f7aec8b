"""Sort a sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, Vocab, check_range
from toyformer.tasks.registry import register_task


@register_task("sort")
@dataclass(frozen=True)
class Sort:
    """Sort a sequence of ``length`` symbols from ``vocab_size`` symbols, smallest first.

    Worked example (``length=4``)::

        input  3 1 4 1
        target 1 1 3 4
    """

    length: int = 20
    vocab_size: int = 10

    kind: ClassVar[str] = "tag"
    default_layout: ClassVar[str] = "tagger"
    holdout: ClassVar[bool] = True
    description: ClassVar[str] = "sort a sequence of symbols"
    # A long schedule decaying to 0 gets the last few sequences right. The model ends with an error
    # near the 0.1% that *solved* allows, where 2,995 rows that must all be right would turn a
    # solved model away by chance: 10,000 confirmation rows allow 4 errors for the same bound.
    config_defaults: ClassVar[dict] = {
        "train": {"steps": 6000, "min_lr_ratio": 0.0},
        "eval": {"every": 100, "confirm_size": 10_000},
    }
    layout_defaults: ClassVar[dict] = {
        layout: {"train": {"steps": 6000, "min_lr_ratio": 0.0}, "eval": {"every": 200, "confirm_size": 10_000}}
        for layout in ("causal", "seq2seq")
    }

    def __post_init__(self):
        check_range("task.length", self.length, 1)
        check_range("task.vocab_size", self.vocab_size, 2, 1000)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(self.vocab_size)])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length if length is None else length
        check_range("length", length, 1)
        x = torch.randint(self.vocab_size, (n, length), generator=generator) + self.vocab.id("0")  # [n, length]
        return Examples(x, x.sort(1).values)

    def domain(self) -> Examples | None:
        return None
