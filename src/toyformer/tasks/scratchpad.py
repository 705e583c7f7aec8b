"""A regular task with a scratchpad: the answer is preceded by the automaton's state after every
input symbol, so that a decoder computes it one symbol at a time instead of in one step.

A regular language is recognised by a finite automaton that reads the input left to right; the
scratchpad writes out its state after each symbol (``q0``, ``q1``, ...), then the task's own
answer. Each scratchpad token depends only on the token before it and on one input symbol (and
the one before that), so with positions coupled by index (``model.symbol_positions``: the
``i``-th input symbol and the ``i``-th scratchpad token share position ``i``) and a one-position
attention window, a decoder meets the same small computation at every length: the route to
length generalisation that works for addition (``docs/guide/decoding.md``), applied to parity and
the suite's other regular tasks. The scored answer is the last token only (``accuracy_mask``),
the same answer the task has without a scratchpad; the scratchpad is extra supervision in
training and the model's own work at evaluation.

The base task (``of``) provides its automaton: ``n_states`` and ``running_states(inputs) ->
[n, L]`` (``parity``, ``even_pairs``, ``cycle_navigation``, ``modular_arithmetic_simple``).

Worked example (``of=parity, length=4``)::

    input  1 0 1 1
    target q1 q1 q0 q1 1          (the parity after each bit, then the answer)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.errors import ConfigError
from toyformer.tasks.base import PAD, SPECIALS, Examples, TaskBase, Vocab, check_range
from toyformer.tasks.registry import get_task, register_task

REGULAR = ("parity", "even_pairs", "cycle_navigation", "modular_arithmetic_simple")


@register_task("scratchpad")
@dataclass(frozen=True)
class Scratchpad(TaskBase):
    """``of`` (a regular task with an automaton) at ``length``, its running states written out
    before its answer.

    Worked example (``of=parity, length=4``)::

        input  1 0 1 1
        target q1 q1 q0 q1 1      (the parity after each bit, then the answer)
    """

    of: str = "parity"
    length: int = 20

    kind: ClassVar[str] = "seq2seq"
    default_layout: ClassVar[str] = "causal"
    description: ClassVar[str] = "a regular task with its automaton's state after every symbol before the answer"

    def __post_init__(self):
        if self.of not in REGULAR:
            raise ConfigError(f"task.of={self.of!r} has no automaton to write out; allowed: {', '.join(REGULAR)}")
        check_range("task.length", self.length, 1)

    @property
    def base(self):
        return get_task(self.of, length=self.length)

    @property
    def vocab(self) -> Vocab:
        base = self.base
        return Vocab([*base.vocab.tokens[len(SPECIALS):], *(f"q{i}" for i in range(base.n_states))])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        base = self.base
        ex = base.sample(n, generator, length=length)  # the base ids are this vocabulary's ids too
        states = base.running_states(ex.input) + len(base.vocab)  # [n, L] the q tokens
        states = states.masked_fill(ex.input == PAD, PAD)
        return Examples(ex.input, torch.cat([states, ex.target], 1))

    def accuracy_mask(self, target: torch.Tensor) -> torch.Tensor:
        """Only the answer counts (the last token before ``<pad>``), as without a scratchpad ``[n, T]``."""
        last = (target != PAD).sum(1, keepdim=True) - 1  # [n, 1]
        return torch.arange(target.shape[1], device=target.device)[None] == last
