"""Abacus positions for digit tasks (McLeish et al. 2024): every digit is indexed by its place
within its own number, so that digits of equal significance in the operands and the answer
share a position embedding however long the numbers are.

A number is a maximal run of digit tokens. A digit's index is ``1, 2, 3 ...`` from the start of
its run; every other token gets 0. During training every row adds a random offset to its digit
indices (``1 + offset ...``), so the embeddings of high places are trained too and a model
trained on 10-digit numbers has seen the indices of 100-digit ones.

The places line up with significance when numbers are written least significant digit first
(the addition task's ``reverse_operands`` and ``reverse_answer``).

>>> digits = torch.tensor([5, 6, 7])            # the ids of "0" "1" "2" in some vocabulary
>>> digit_places(torch.tensor([[5, 6, 9, 7, 7, 7, 3]]), digits).tolist()   # 01+222<sep>
[[1, 2, 0, 1, 2, 3, 0]]
"""

from __future__ import annotations

import torch


def digit_places(tokens: torch.Tensor, digit_ids: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` token ids -> ``[B, T]`` index of each digit within its number (0: not a digit).

    Causal: a token's index depends only on the tokens before it (decoding appends digits).
    """
    is_digit = torch.isin(tokens, digit_ids)  # [B, T]
    col = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)  # [B, T]
    last_break = torch.where(is_digit, torch.full_like(col, -1), col).cummax(-1).values  # [B, T]
    return torch.where(is_digit, col - last_break, torch.zeros_like(col))


def random_offset(places: torch.Tensor, max_len: int) -> torch.Tensor:
    """Training: shift each row's digit indices by a random offset, keeping them < ``max_len``."""
    room = (max_len - 1 - places.amax(-1)).clamp(min=0)  # [B]
    offset = (torch.rand(places.shape[0], device=places.device) * (room + 1)).long()  # [B] in 0..room
    return torch.where(places > 0, places + offset[:, None], places)
