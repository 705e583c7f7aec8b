"""Duplicate a string (context-sensitive): ``s`` -> ``s s``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, Vocab, check_range
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS
from toyformer.tasks.registry import register_task


@register_task("duplicate_string")
@dataclass(frozen=True)
class DuplicateString:
    """Write a string of ``length`` symbols (of ``vocab_size``) twice, without a separator.

    Worked example (``length=3``)::

        input  1 0 1
        target 1 0 1 1 0 1
    """

    length: int = 20
    vocab_size: int = 2

    kind: ClassVar[str] = "seq2seq"
    default_layout: ClassVar[str] = "masked"
    holdout: ClassVar[bool] = True
    description: ClassVar[str] = "write a string twice (Chomsky suite, context-sensitive)"
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def __post_init__(self):
        check_range("task.length", self.length, 1)
        check_range("task.vocab_size", self.vocab_size, 2, 1000)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(self.vocab_size)])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length if length is None else length
        check_range("length", length, 1)
        x = torch.randint(self.vocab_size, (n, length), generator=generator) + self.vocab.id("0")  # [n, L]
        return Examples(x, torch.cat([x, x], 1))

    def domain(self) -> Examples | None:
        return None
