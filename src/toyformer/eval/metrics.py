"""Honest metrics as pure tensor functions: per-token accuracy (ignoring padding) and exact match.

>>> pred = torch.tensor([[5, 6, 2], [5, 7, 2]])
>>> ref = torch.tensor([[5, 6, 2], [5, 6, 2]])
>>> token_accuracy(pred, ref), exact_match(pred, ref).tolist()
(0.8333333333333334, [True, False])
"""

from __future__ import annotations

import torch

from toyformer.data import IGNORE


def token_hits(pred: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Correct and counted tokens (labels equal to IGNORE are skipped), as 0-d tensors."""
    counted = labels != IGNORE
    return ((pred == labels) & counted).sum(), counted.sum()


def token_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    hits, count = token_hits(pred, labels)
    return hits.item() / max(count.item(), 1)


def exact_match(pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per row: every counted token right. ``[B]`` or ``[B, T]`` -> ``[B]`` bool."""
    if labels.dim() == 1:
        return pred == labels
    return ((pred == labels) | (labels == IGNORE)).all(-1)
