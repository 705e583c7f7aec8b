"""R2: reverse a sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, SymbolTask
from toyformer.tasks.registry import register_task


@register_task("reverse")
@dataclass(frozen=True)
class Reverse(SymbolTask):
    """Reverse a sequence of ``length`` symbols drawn uniformly from ``vocab_size`` symbols.

    Worked example (``length=4, vocab_size=10``)::

        input  3 1 4 1
        target 1 4 1 3

    Symbols are the tokens ``"0" .. str(vocab_size - 1)``. R2 scales ``length`` to 1000 and
    ``vocab_size`` to 20; ``sample(..., length=L)`` draws other lengths for length generalisation.
    """

    length: int = 20
    vocab_size: int = 10

    kind: ClassVar[str] = "tag"
    default_layout: ClassVar[str] = "tagger"
    description: ClassVar[str] = "reverse a sequence of symbols (R2)"
    # evaluation is one cheap pass: check often, so that training stops soon after it is solved
    config_defaults: ClassVar[dict] = {"eval": {"every": 20}}

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        x = self.symbols(n, generator, length)  # [n, length]
        return Examples(x, x.flip(1))
