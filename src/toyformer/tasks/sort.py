"""Sort a sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, SymbolTask
from toyformer.tasks.registry import register_task


@register_task("sort")
@dataclass(frozen=True)
class Sort(SymbolTask):
    """Sort a sequence of ``length`` symbols from ``vocab_size`` symbols, smallest first.

    Worked example (``length=4``)::

        input  3 1 4 1
        target 1 1 3 4
    """

    length: int = 20
    vocab_size: int = 10

    kind: ClassVar[str] = "tag"
    default_layout: ClassVar[str] = "tagger"
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

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        x = self.symbols(n, generator, length)  # [n, length]
        return Examples(x, x.sort(1).values)
