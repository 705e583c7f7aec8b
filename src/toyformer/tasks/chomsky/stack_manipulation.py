"""Stack manipulation (deterministic context-free): run push and pop actions on a stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask, until_end
from toyformer.tasks.registry import register_task


@register_task("stack_manipulation")
@dataclass(frozen=True)
class StackManipulation(ChomskyTask):
    """A stack of bits (given bottom to top) and then actions ``pop``, ``push0``, ``push1``; the
    answer is the final stack top to bottom, closed by ``end`` and filled with ``0`` up to
    ``length + 1`` tokens. A pop on an empty stack does nothing. The stack's length is uniform in
    ``1 .. length-1`` and each action uniform, as in the reference code; the suite scores the
    answer up to and including ``end`` (``accuracy_mask``).

    Worked example (``length=7``)::

        input  0 1 1 0 push1 pop pop      (stack 0 1 1 0 -> 0 1 1 0 1 -> 0 1 1 0 -> 0 1 1)
        target 1 1 0 end 0 0 0 0          (top to bottom, end, filled to 8 tokens)
    """

    length: int = 20

    kind: ClassVar[str] = "seq2seq"
    description: ClassVar[str] = "the stack after push and pop actions (Chomsky suite, deterministic context-free)"
    tokens: ClassVar[tuple[str, ...]] = ("0", "1", "pop", "push0", "push1", "end")
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        col = torch.arange(length).unsqueeze(0)  # [1, L]
        bits = torch.randint(2, (n, length), generator=generator)
        if length == 1:  # a one-bit stack and no actions
            stack_len = torch.ones(n, dtype=torch.long)
        else:
            stack_len = torch.randint(1, length, (n,), generator=generator)  # 1 .. L-1
        actions = torch.randint(3, (n, length), generator=generator)  # 0 pop, 1 push0, 2 push1
        is_stack = col < stack_len.unsqueeze(1)  # [n, L]
        # run the stack: pushes write at the height, pops lower it (never below 0)
        stack = torch.zeros(n, length + 1, dtype=torch.long)
        height = torch.zeros(n, dtype=torch.long)
        rows = torch.arange(n)
        for t in range(length):
            push = is_stack[:, t] | (actions[:, t] > 0)
            value = torch.where(is_stack[:, t], bits[:, t], actions[:, t] - 1)
            stack[rows[push], height[push]] = value[push]
            height = torch.where(push, height + 1, (height - 1).clamp(min=0))
        j = torch.arange(length + 1).unsqueeze(0)  # [1, L+1]
        top_first = stack.gather(1, (height.unsqueeze(1) - 1 - j).clamp(min=0))  # stack[height-1-j]
        v = self.vocab
        target = torch.where(j < height.unsqueeze(1), top_first + v.id("0"), v.id("0"))
        target[rows, height] = v.id("end")
        tokens = torch.where(is_stack, bits + v.id("0"), actions + v.id("pop"))
        return Examples(tokens, target)

    def accuracy_mask(self, target: torch.Tensor) -> torch.Tensor:
        """The positions the suite scores: up to and including ``end``."""
        return until_end(target, self.vocab.id("end"))
