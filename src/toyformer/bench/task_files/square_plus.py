"""A user's task, written as a task file (``toyformer train square_plus --task-file THIS``): a small
finite domain with no tuned defaults, the case ``bench diagnose`` uses for a task it has never seen.

Worked example (``modulus=7``)::

    input  3 5
    target 0        # 3 * 3 + 5 = 14 = 0 (mod 7)
"""

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer import Examples, Vocab, register_task


@register_task("square_plus")
@dataclass(frozen=True)
class SquarePlus:
    """``a * a + b (mod p)`` for ``a, b`` in ``0 .. p - 1``: ``p * p`` distinct inputs."""

    modulus: int = 23

    kind: ClassVar[str] = "classify"
    default_layout: ClassVar[str] = "classifier"
    holdout: ClassVar[bool] = True  # never train on a test input
    description: ClassVar[str] = "a * a + b mod p, a user's small finite domain"

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(self.modulus)])

    def _examples(self, a: torch.Tensor, b: torch.Tensor) -> Examples:
        first = len(self.vocab) - self.modulus  # id of the symbol "0"
        c = (a * a + b) % self.modulus
        return Examples(torch.stack([a, b], 1) + first, c[:, None] + first)  # input [n, 2], target [n, 1]

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        a, b = torch.randint(self.modulus, (2, n), generator=generator)
        return self._examples(a, b)

    def domain(self) -> Examples | None:
        a, b = torch.cartesian_prod(torch.arange(self.modulus), torch.arange(self.modulus)).T
        return self._examples(a, b)
