"""Cycle navigation (regular): where does a walk on a cycle of 5 states end?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, Vocab, check_range
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask
from toyformer.tasks.registry import register_task


@register_task("cycle_navigation")
@dataclass(frozen=True)
class CycleNavigation(ChomskyTask):
    """Walk on a cycle of ``states`` positions, starting at 0: action ``0`` steps left, ``1``
    stays, ``2`` steps right (the reference code's action ids). The answer is the final position.

    Worked example (``length=5, states=5``)::

        input  2 0 1 0 0          (+1 -1 0 -1 -1 = -2)
        target 3                  (-2 mod 5)
    """

    length: int = 20
    states: int = 5

    kind: ClassVar[str] = "classify"
    description: ClassVar[str] = "the end of a walk on a cycle of 5 states (Chomsky suite, regular)"
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def __post_init__(self):
        super().__post_init__()
        check_range("task.states", self.states, 3, 100)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(s) for s in range(self.states)])  # actions 0 1 2 and the states

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        actions = torch.randint(3, (n, length), generator=generator)  # [n, L]
        final = (actions - 1).sum(1, keepdim=True) % self.states  # [n, 1]
        zero = self.vocab.id("0")
        return Examples(actions + zero, final + zero)

    @property
    def n_states(self) -> int:  # the automaton's states: the positions on the cycle
        return self.states

    def running_states(self, inputs: torch.Tensor) -> torch.Tensor:
        """The position after each action ``[n, L]`` (``tasks/scratchpad.py``).

        >>> CycleNavigation().running_states(torch.tensor([[7, 5, 6, 5]])).tolist()   # +1 -1 0 -1
        [[1, 0, 0, 4]]
        """
        return (inputs - self.vocab.id("0") - 1).cumsum(1) % self.states
