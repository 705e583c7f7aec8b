"""R4: signed addition and subtraction in R4's exact format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from toyformer.tasks.base import EOS, Examples, TaskBase, Vocab, check_range, number_tokens, place
from toyformer.tasks.registry import register_task


@register_task("arithmetic")
@dataclass(frozen=True)
class Arithmetic(TaskBase):
    """Formulas ``a+b`` or ``a-b`` (each half the time), ``a`` uniform in ``[-10^c, 10^c]``,
    ``b`` uniform in ``[0, 10^c]`` (both ends included), ``c = complexity``; the answer is the
    decimal result. One token per character ``0-9 + -``; question and answer end with
    ``<eos>``, then are padded or trimmed to ``2c+3`` and ``c+2`` tokens as in R4 (``trim=false``
    pads to the longest possible, ``2c+5`` and ``c+3``, so nothing is ever cut).

    Worked example (``complexity=3``)::

        input  - 4 2 + 9 7 0 <eos>
        target 8 2 9 <eos>            (reverse_answer=false: 9 2 8 <eos>; -17 is - 7 1 <eos>)

    ``reverse_answer`` (the default) writes the answer's digits least significant first (the sign
    stays in front): the order in which a carry or a borrow is computed, so the decoder's n-th
    digit is the n-th place of both operands; answers are shown in reading order. Exact match is
    unchanged (one answer, one token sequence); ``reverse_answer=false`` is R4's own order.
    """

    complexity: int = 3
    trim: bool = True
    reverse_answer: bool = True

    kind: ClassVar[str] = "seq2seq"
    default_layout: ClassVar[str] = "seq2seq"
    description: ClassVar[str] = "signed a+b / a-b in R4's format (R4)"
    numeric: ClassVar[bool] = True  # digit tokens: model.positional=abacus applies
    length_param: ClassVar[str] = "complexity"

    # The encoder-decoder of R4's improved configuration (``recipes/r4.py``), trained longer: with
    # the answer least significant digit first (the default) and a place embedding, the n-th digit
    # is the n-th place of both operands. The model ends with an error near the 0.1% that *solved*
    # allows, so the confirmation set is 20,000 formulas (12 errors for the same bound). The causal
    # layout needs four layers for the comparison that decides the sign.
    config_defaults: ClassVar[dict] = {
        "model": {"d_ff": 64, "norm": "post", "activation": "relu", "positional": "sinusoidal",
                  "place_embedding": True},
        "train": {"lr": 2e-3, "steps": 12_000, "warmup_steps": 300, "grad_clip": 1.0, "min_lr_ratio": 0.0,
                  "weight_decay": 0.0, "beta2": 0.999},
        "eval": {"every": 250, "val_size": 1000, "confirm_size": 20_000},
    }
    layout_defaults: ClassVar[dict] = {
        "causal": {
            "model": {"n_layers": 4, "d_ff": 128, "norm": "post", "activation": "relu", "positional": "sinusoidal",
                      "place_embedding": True, "init": "torch"},
            "train": {"lr": 2e-3, "steps": 12_000, "warmup_steps": 300, "grad_clip": 1.0, "min_lr_ratio": 0.0,
                      "weight_decay": 0.0},
            "eval": {"every": 250, "val_size": 1000, "confirm_size": 20_000},
        },
    }

    def __post_init__(self):
        check_range("task.complexity", self.complexity, 1, 17)

    @property
    def vocab(self) -> Vocab:
        return Vocab([str(i) for i in range(10)] + ["+", "-"])

    def sample(self, n: int, generator: torch.Generator, length: int | None = None) -> Examples:
        c = self.complexity if length is None else length
        check_range("length (complexity)", c, 1, 17)
        top = 10**c
        a = torch.randint(-top, top + 1, (n,), generator=generator)
        b = torch.randint(0, top + 1, (n,), generator=generator)
        minus = torch.randint(2, (n,), generator=generator).bool()
        r = torch.where(minus, a - b, a + b)
        v = self.vocab
        plus_id, minus_id, digit0 = v.id("+"), v.id("-"), v.id("0")
        one = torch.ones(n, dtype=torch.long)

        def signed(x: torch.Tensor, dst: torch.Tensor, start: torch.Tensor, reverse: bool = False) -> torch.Tensor:
            """Write ``x`` as ``[-]digits`` into ``dst`` at ``start`` (digits least significant
            first with ``reverse``); return the end column."""
            neg = (x < 0).long()
            place(dst, torch.full((n, 1), minus_id), neg, start)
            tok, width = number_tokens(x.abs(), digit0, c + 2)  # [n, c+2], [n]
            if reverse:
                back = (width.unsqueeze(1) - 1 - torch.arange(c + 2)).clamp(min=0)  # [n, c+2]
                tok = torch.gather(tok, 1, back)
            place(dst, tok, width, start + neg)
            return start + neg + width

        q = torch.zeros(n, 2 * c + 5, dtype=torch.long)  # [n, 2c+5]: the longest question
        end = signed(a, q, torch.zeros(n, dtype=torch.long))
        place(q, torch.where(minus, minus_id, plus_id).unsqueeze(1), one, end)
        end = signed(b, q, end + 1)
        place(q, torch.full((n, 1), EOS), one, end)
        ans = torch.zeros(n, c + 3, dtype=torch.long)  # [n, c+3]: the longest answer
        end = signed(r, ans, torch.zeros(n, dtype=torch.long), self.reverse_answer)
        place(ans, torch.full((n, 1), EOS), one, end)
        if self.trim:
            q, ans = q[:, : 2 * c + 3], ans[:, : c + 2]
        return Examples(q, ans)
