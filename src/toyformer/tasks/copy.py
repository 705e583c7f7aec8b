"""Copy a sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, SymbolTask
from toyformer.tasks.registry import register_task


@register_task("copy")
@dataclass(frozen=True)
class Copy(SymbolTask):
    """Copy a sequence of ``length`` symbols from ``vocab_size`` symbols.

    Worked example (``length=4``)::

        input  3 1 4 1
        target 3 1 4 1
    """

    length: int = 20
    vocab_size: int = 10

    kind: ClassVar[str] = "tag"
    default_layout: ClassVar[str] = "tagger"
    description: ClassVar[str] = "copy a sequence of symbols"
    # evaluation is one cheap pass: check often, so that training stops soon after it is solved
    config_defaults: ClassVar[dict] = {"eval": {"every": 20}}

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        x = self.symbols(n, generator, length)  # [n, length]
        return Examples(x, x.clone())
