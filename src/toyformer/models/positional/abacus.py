"""Abacus positions for digit tasks (McLeish et al. 2024; position coupling, Cho et al. 2024):
every digit is indexed by its significance within its own number, so that the digits that must
be combined (units with units, tens with tens) share a position embedding however long the
numbers are.

A number is a maximal run of digit tokens; a digit's place is ``1`` for the units digit, ``2``
for tens, and so on; every other token gets 0. Numbers in a prompt are complete and written most
significant digit first, so their places count from the right. An answer is being generated
digit by digit, so its places count from the left (causal: a token's place never depends on
later tokens); they are its significances when the answer is written least significant digit
first (``addition`` with ``reverse_answer=true``), which is the format this scheme is for.
Which tokens form the answer: the whole stream of a seq2seq decoder; everything after the
first ``<sep>`` of a causal model (which therefore needs ``data.sep=true``).

During training every row adds one random offset to all its places (``1 + offset ...``), so the
embeddings of high places are trained too: a model trained on 10-digit numbers has seen the
places of 100-digit ones (``model.max_len`` bounds them).

>>> digits = torch.tensor([5, 6, 7])          # the ids of "0" "1" "2" in some vocabulary
>>> sep, plus = 3, 9
>>> x = torch.tensor([[5, 6, 7, plus, 7, 7, sep, 6, 5, 6, 7]])   # 012 + 22 <sep> 1012
>>> digit_places(x, digits, answer="after_sep").tolist()
[[3, 2, 1, 0, 2, 1, 0, 1, 2, 3, 4]]
"""

from __future__ import annotations

from typing import Literal

import torch

from toyformer.tasks.base import SEP

Answer = Literal["none", "all", "after_sep"]


def digit_places(tokens: torch.Tensor, digit_ids: torch.Tensor, answer: Answer = "none") -> torch.Tensor:
    """``[B, T]`` token ids -> ``[B, T]`` place of each digit in its number (0: not a digit).

    ``answer``: which tokens are answer (places counted from the left): ``none`` (an encoder
    input), ``all`` (a seq2seq decoder), ``after_sep`` (a causal model's ``prompt <sep> answer``).
    """
    is_digit = (tokens.unsqueeze(-1) == digit_ids).any(-1)  # [B, T] (isin has no vmap rule: replicas)
    t = tokens.shape[1]
    col = torch.arange(t, device=tokens.device).expand_as(tokens)  # [B, T]
    prev_break = torch.where(is_digit, torch.full_like(col, -1), col).cummax(-1).values  # [B, T]
    next_break = torch.where(is_digit, torch.full_like(col, t), col).flip(-1).cummin(-1).values.flip(-1)
    from_left, from_right = col - prev_break, next_break - col  # [B, T], 1-based inside a number
    if answer == "all":
        places = from_left
    elif answer == "after_sep":
        places = torch.where((tokens == SEP).cumsum(-1) > 0, from_left, from_right)
    else:
        places = from_right
    return torch.where(is_digit, places, torch.zeros_like(places))


def random_offset(places: torch.Tensor, max_len: int) -> torch.Tensor:
    """Training: shift each row's digit places by one random offset, keeping them < ``max_len``."""
    room = (max_len - 1 - places.amax(-1)).clamp(min=0)  # [B]
    offset = (torch.rand(places.shape[0], device=places.device) * (room + 1)).long()  # [B] in 0..room
    return torch.where(places > 0, places + offset[:, None], places)
