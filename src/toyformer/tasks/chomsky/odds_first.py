"""Odds first (context-sensitive): the symbols at odd positions, then those at even ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, SymbolTask
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task


@register_task("odds_first")
@dataclass(frozen=True)
class OddsFirst(SymbolTask, ChomskyTask):
    """Write the symbols at odd positions (0-based 1, 3, 5, ...) first, then those at even
    positions (0, 2, 4, ...): ``x[1::2] ++ x[0::2]``, the order the reference code produces.

    Worked example (``length=8``)::

        input  0 0 1 1 0 1 0 1
        target 0 1 1 1 0 1 0 0      (positions 1 3 5 7, then 0 2 4 6)
    """

    length: int = 20
    vocab_size: int = 2

    kind: ClassVar[str] = "tag"
    description: ClassVar[str] = "symbols at odd positions first, then even (Chomsky suite, context-sensitive)"
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        x = self.symbols(n, generator, length)  # [n, L]
        return Examples(x, torch.cat([x[:, 1::2], x[:, 0::2]], 1))
