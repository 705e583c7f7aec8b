"""Even pairs (regular): is the number of ``01`` and ``10`` pairs even?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task


@register_task("even_pairs")
@dataclass(frozen=True)
class EvenPairs(ChomskyTask):
    """Count the neighbouring pairs ``01`` and ``10`` of a bit string: ``0`` if their number is
    even, ``1`` if it is odd (the same as: do the first and last bit differ?).

    Worked example (``length=7``)::

        input  0 1 0 1 0 0 1      (2 x 10, 3 x 01: 5 pairs)
        target 1                  (odd)
    """

    length: int = 20

    kind: ClassVar[str] = "classify"
    description: ClassVar[str] = "is the number of 01 and 10 pairs even (Chomsky suite, regular)"
    tokens: ClassVar[tuple[str, ...]] = ("0", "1")
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        bits = torch.randint(2, (n, length), generator=generator)  # [n, L]
        odd = (bits[:, 1:] != bits[:, :-1]).sum(1, keepdim=True) % 2  # [n, 1]
        zero = self.vocab.id("0")
        return Examples(bits + zero, odd + zero)

    n_states: ClassVar[int] = 2  # the automaton's states: the parity of the pairs so far

    def running_states(self, inputs: torch.Tensor) -> torch.Tensor:
        """The parity of the ``01`` and ``10`` pairs up to each bit ``[n, L]`` (``tasks/scratchpad.py``).

        >>> EvenPairs().running_states(torch.tensor([[5, 6, 6, 5]])).tolist()   # 0 1 1 0
        [[0, 1, 1, 0]]
        """
        bits = inputs - self.vocab.id("0")
        flips = (bits[:, 1:] != bits[:, :-1]).long()  # [n, L - 1]
        return torch.cat([torch.zeros_like(bits[:, :1]), flips.cumsum(1) % 2], 1)
