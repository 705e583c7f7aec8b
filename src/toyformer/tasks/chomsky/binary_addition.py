"""Binary addition (context-sensitive): ``n + m`` in little-endian binary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples
from toyformer.tasks.chomsky import bits
from toyformer.tasks.chomsky.suite import SUITE_DEFAULTS, ChomskyTask, until_end
from toyformer.tasks.registry import register_task


def operands(n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The suite's two operands in ``length - 1`` bits: ``len(a)`` uniform in ``1 .. length-2``,
    each operand uniform in ``1 .. 2**len - 1`` (``length >= 3``). Returns the bits of ``a`` and
    ``b`` ``[n, length]`` (little-endian, zero above their lengths) and ``len(a)`` ``[n]``."""
    len_a = torch.randint(1, length - 1, (n,), generator=generator)
    a = bits.random_nonzero(n, len_a, length, generator)
    b = bits.random_nonzero(n, length - 1 - len_a, length, generator)
    return a, b, len_a


def expression(a: torch.Tensor, b: torch.Tensor, len_a: torch.Tensor, op_id: int, zero_id: int) -> torch.Tensor:
    """``a op b`` as token ids ``[n, L]``: ``len_a`` bits of ``a``, the operator, the rest ``b``."""
    n, length = a.shape
    col = torch.arange(length).unsqueeze(0)
    b_part = b.gather(1, (col - len_a.unsqueeze(1) - 1).clamp(min=0))
    tokens = torch.where(col < len_a.unsqueeze(1), a, b_part) + zero_id
    tokens[torch.arange(n), len_a] = op_id
    return tokens


def answer(value: torch.Tensor, width: int, end_id: int, zero_id: int) -> torch.Tensor:
    """The suite's answer: the bits of ``value`` ``[n, W]`` up to its highest 1 (one ``0`` for
    zero), then ``end``, then zeros, ``width`` tokens in all."""
    n = value.shape[0]
    value = torch.nn.functional.pad(value, (0, max(0, width - value.shape[1])))[:, :width]
    col = torch.arange(width).unsqueeze(0)
    top = torch.where(value == 1, col, -1).max(1).values  # highest 1, -1 for zero
    n_bits = top.clamp(min=0) + 1
    out = torch.where(col < n_bits.unsqueeze(1), value, 0) + zero_id
    out[torch.arange(n), n_bits] = end_id
    return out


@register_task("binary_addition")
@dataclass(frozen=True)
class BinaryAddition(ChomskyTask):
    """Add two numbers in little-endian binary (least significant bit first), written
    ``a + b`` in ``length`` tokens; the answer is the sum's bits (no leading zeros), ``end``, and
    ``0`` up to ``length + 1`` tokens, scored up to ``end`` (``accuracy_mask``). Operand lengths
    and values are drawn as in the reference code (``operands``); lengths 1 and 2 hold one number
    and answer it.

    Worked example (``length=9``)::

        input  0 0 1 + 0 1 1 0 1      (4 + 22)
        target 0 1 0 1 1 end 0 0 0 0      (26, little-endian)
    """

    length: int = 20

    kind: ClassVar[str] = "seq2seq"
    description: ClassVar[str] = "add two little-endian binary numbers (Chomsky suite, context-sensitive)"
    tokens: ClassVar[tuple[str, ...]] = ("0", "1", "+", "end")
    config_defaults: ClassVar[dict] = SUITE_DEFAULTS

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        length = self.length_of(length)
        v = self.vocab
        zero, end = v.id("0"), v.id("end")
        if length <= 2:  # one number in 0 .. 2**length - 2, fixed width; the answer is itself
            value = torch.randint(2**length - 1, (n,), generator=generator)
            x = (value.unsqueeze(1) >> torch.arange(length)) & 1
            return Examples(x + zero, answer(x, length + 1, end, zero))
        a, b, len_a = operands(n, length, generator)
        return Examples(expression(a, b, len_a, v.id("+"), zero), answer(bits.add(a, b), length + 1, end, zero))

    def accuracy_mask(self, target: torch.Tensor) -> torch.Tensor:
        """The positions the suite scores: up to and including ``end``."""
        return until_end(target, self.vocab.id("end"))
