"""Duplicate a string (context-sensitive): ``s`` -> ``s s``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, SymbolTask
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task


@register_task("duplicate_string")
@dataclass(frozen=True)
class DuplicateString(SymbolTask, ChomskyTask):
    """Write a string of ``length`` symbols (of ``vocab_size``) twice, without a separator.

    Worked example (``length=3``)::

        input  1 0 1
        target 1 0 1 1 0 1
    """

    length: int = 20
    vocab_size: int = 2

    kind: ClassVar[str] = "seq2seq"
    description: ClassVar[str] = "write a string twice (Chomsky suite, context-sensitive)"
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        x = self.symbols(n, generator, length)  # [n, L]
        return Examples(x, torch.cat([x, x], 1))
