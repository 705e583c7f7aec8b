"""Multi-digit decimal addition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import Examples, TaskBase, Vocab, check_range, place
from toyformer.tasks.digits import add_digits, count_digits, random_digits, to_tokens
from toyformer.tasks.registry import register_task


@register_task("addition")
@dataclass(frozen=True)
class Addition(TaskBase):
    """``a + b`` for operands of ``min_digits .. digits`` digits (each operand's digit count is
    uniform, then its value uniform among numbers of that many digits). The answer is the sum's
    digits, least significant first with ``reverse_answer`` (the default: the order in which
    carries are computed, which makes the task much easier for a causal model; answers are shown
    in reading order), or most significant first.

    Worked example (``digits=3``)::

        input  4 7 + 1 9 8
        target 5 4 2            (reverse_answer=false: 2 4 5)

    ``sample(..., length=L)`` draws two ``L``-digit operands: any ``L`` works (100-digit sums
    are computed digit by digit, never as int64).
    """

    digits: int = 3
    min_digits: int = 1
    reverse_answer: bool = True

    kind: ClassVar[str] = "seq2seq"
    default_layout: ClassVar[str] = "causal"
    description: ClassVar[str] = "multi-digit decimal addition"
    numeric: ClassVar[bool] = True  # digit tokens: model.positional=abacus applies
    length_param: ClassVar[str] = "digits"  # what `toyformer eval --lengths` varies
    min_length_param: ClassVar[str] = "min_digits"
    # `toyformer tune addition --seeds 3` (docs/results/time_to_solve.md): one pre-norm layer with a
    # wide feed-forward block and a place embedding (units, tens, hundreds of both operands share a
    # learned vector), a long cosine schedule with strong weight decay; with the answer least
    # significant digit first (``reverse_answer``, the task's default) a carry only needs the digits
    # already written.
    config_defaults: ClassVar[dict] = {
        "model": {"n_layers": 1, "d_ff": 512, "place_embedding": True},
        "train": {"lr": 1.6e-3, "warmup_steps": 5, "steps": 8000, "min_lr_ratio": 0.1, "weight_decay": 0.3,
                  "beta2": 0.98},
        "eval": {"every": 50},
    }
    # `toyformer tune addition --layout seq2seq --seeds 3`: two narrow layers with ALiBi and the
    # place embedding
    layout_defaults: ClassVar[dict] = {
        "seq2seq": {
            "model": {"d_model": 32, "n_layers": 2, "d_ff": 64, "positional": "alibi", "place_embedding": True},
            "train": {"lr": 3.4e-3, "warmup_steps": 60, "steps": 8000, "min_lr_ratio": 0.27, "weight_decay": 0.035},
            "eval": {"every": 50},
        },
    }

    def __post_init__(self):
        check_range("task.digits", self.digits, 1, 1000)
        check_range("task.min_digits", self.min_digits, 1, self.digits)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(10)] + ["+"])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        if length is None:
            nd = torch.randint(self.min_digits, self.digits + 1, (2, n), generator=generator)  # [2, n]
            width = self.digits
        else:
            check_range("length", length, 1)
            nd, width = torch.full((2, n), length), length
        a = random_digits(nd[0], width, generator)  # [n, width], least significant first
        b = random_digits(nd[1], width, generator)
        s = add_digits(a, b)  # [n, width + 1]
        digit0, plus = self.vocab.id("0"), self.vocab.id("+")
        x = torch.zeros(n, 2 * width + 1, dtype=torch.long)
        x[:, :width] = to_tokens(a, nd[0], digit0)
        rows = torch.arange(n)
        x[rows, nd[0]] = plus
        place(x, to_tokens(b, nd[1], digit0), nd[1], nd[0] + 1)
        y = to_tokens(s, count_digits(s), digit0, msb_first=not self.reverse_answer)  # [n, width + 1]
        return Examples(x, y)
