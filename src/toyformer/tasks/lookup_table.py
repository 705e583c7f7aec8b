"""R1: memorise a lookup table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.errors import ConfigError
from toyformer.tasks.base import Examples, TaskBase, Vocab, check_range
from toyformer.tasks.registry import register_task


@register_task("lookup_table")
@dataclass(frozen=True)
class LookupTable(TaskBase):
    """Memorise a fixed random ``size x size`` table ``M``: input ``i j``, answer ``M[i][j]``.

    Keys and values are the same tokens ``"0" .. str(size - 1)``; the table is drawn from
    ``table_seed``. Worked example (``size=30``, ``M[4][17] = 9``)::

        input  4 17
        target 9

    A causal model without positional encoding cannot tell ``i j`` from ``j i`` when it reads
    the answer at a third, empty position (R1): ``symmetric()`` marks the cells where that
    does not matter (``M[i][j] == M[j][i]``).
    """

    size: int = 30
    table_seed: int = 0

    kind: ClassVar[str] = "classify"
    default_layout: ClassVar[str] = "causal"
    holdout: ClassVar[bool] = False  # memorisation: the test set is the whole table
    description: ClassVar[str] = "memorise a random lookup table (R1)"
    # evaluation is one cheap pass: check often, so that training stops soon after it is solved
    config_defaults: ClassVar[dict] = {"eval": {"every": 20}}

    def __post_init__(self):
        check_range("task.size", self.size, 2, 1000)
        check_range("task.table_seed", self.table_seed, 0)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(self.size)])

    @property
    def table(self) -> torch.Tensor:
        """``[size, size]`` values (as numbers, not token ids)."""
        g = torch.Generator().manual_seed(self.table_seed)
        return torch.randint(self.size, (self.size, self.size), generator=g)

    def _examples(self, i: torch.Tensor, j: torch.Tensor) -> Examples:
        zero = self.vocab.id("0")
        return Examples(torch.stack([i, j], 1) + zero, self.table[i, j].unsqueeze(1) + zero)  # [n, 2], [n, 1]

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        if length is not None:
            raise ConfigError(f"task {self.name!r} has no length; sample it without length=")
        ij = torch.randint(self.size, (2, n), generator=generator)  # [2, n]
        return self._examples(ij[0], ij[1])

    def domain(self) -> Examples | None:
        idx = torch.arange(self.size * self.size)
        return self._examples(idx // self.size, idx % self.size)

    def symmetric(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[n, 2]`` input ids -> ``[n]`` bool: is ``M[i][j] == M[j][i]``?"""
        zero = self.vocab.id("0")
        i, j = inputs[:, 0] - zero, inputs[:, 1] - zero
        m = self.table
        return m[i, j] == m[j, i]
