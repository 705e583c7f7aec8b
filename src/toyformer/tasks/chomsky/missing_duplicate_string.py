"""Missing duplicate (context-sensitive): the symbol hidden in a string written twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task


@register_task("missing_duplicate_string")
@dataclass(frozen=True)
class MissingDuplicateString(ChomskyTask):
    """A bit string of ``length // 2`` bits written twice, one of its ``2 * (length // 2)`` bits
    (uniform) replaced by ``?``; an odd length ends with the filler ``_``. The answer is the
    hidden bit. Length 1 is the input ``1`` with the answer ``1``, as in the reference code.

    Worked example (``length=7``)::

        input  1 0 1 1 ? 1 _      (101 twice, the fifth bit hidden)
        target 0
    """

    length: int = 20

    kind: ClassVar[str] = "classify"
    description: ClassVar[str] = "the hidden bit of a string written twice (Chomsky suite, context-sensitive)"
    tokens: ClassVar[tuple[str, ...]] = ("0", "1", "?", "_")
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        v = self.vocab
        if length == 1:
            return Examples(torch.full((n, 1), v.id("1")), torch.full((n, 1), v.id("1")))
        half = torch.randint(2, (n, length // 2), generator=generator) + v.id("0")
        twice = torch.cat([half, half], 1)  # [n, 2 * (L // 2)]
        hide = torch.randint(twice.shape[1], (n,), generator=generator)
        rows = torch.arange(n)
        answer = twice[rows, hide].unsqueeze(1)
        twice[rows, hide] = v.id("?")
        filler = torch.full((n, length % 2), v.id("_"))
        return Examples(torch.cat([twice, filler], 1), answer)
