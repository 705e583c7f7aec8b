"""The Chomsky-hierarchy suite (Deletang et al. 2023): its fifteen tasks by the names the papers
use, the toyformer task and parameters that draw each in the reference code's format, its level
of the hierarchy, and the accuracy of guessing.

Three of the suite's tasks already existed here and are reused with the suite's parameters:
``parity_check`` is ``parity``, ``reverse_string`` is ``reverse`` over 2 symbols and
``bucket_sort`` is ``sort`` over 5 symbols. The suite's ``modular_arithmetic`` (an expression
such as ``1 + 2 * 3 - 4`` mod 5) is registered as ``modular_arithmetic_simple``, beside the
grokking task ``modular_arithmetic``.

>>> SUITE["bucket_sort"].task, SUITE["bucket_sort"].params, SUITE["bucket_sort"].level
('sort', {'vocab_size': 5}, 'cs')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from toyformer.tasks.base import LengthTask

LEVELS = {"regular": "regular", "dcf": "deterministic context-free", "cs": "context-sensitive"}


@dataclass(frozen=True)
class SuiteTask:
    task: str  # the registered toyformer task
    level: str  # regular | dcf | cs
    chance: float  # the accuracy of a uniform guess over the answer symbols
    params: dict = field(default_factory=dict)


SUITE = {
    "even_pairs": SuiteTask("even_pairs", "regular", 0.5),
    "modular_arithmetic": SuiteTask("modular_arithmetic_simple", "regular", 0.2),
    "parity_check": SuiteTask("parity", "regular", 0.5),
    "cycle_navigation": SuiteTask("cycle_navigation", "regular", 0.2),
    "stack_manipulation": SuiteTask("stack_manipulation", "dcf", 0.5),
    "reverse_string": SuiteTask("reverse", "dcf", 0.5, {"vocab_size": 2}),
    "modular_arithmetic_brackets": SuiteTask("modular_arithmetic_brackets", "dcf", 0.2),
    "solve_equation": SuiteTask("solve_equation", "dcf", 0.2),
    "duplicate_string": SuiteTask("duplicate_string", "cs", 0.5),
    "missing_duplicate_string": SuiteTask("missing_duplicate_string", "cs", 0.5),
    "odds_first": SuiteTask("odds_first", "cs", 0.5),
    "binary_addition": SuiteTask("binary_addition", "cs", 0.5),
    "binary_multiplication": SuiteTask("binary_multiplication", "cs", 0.5),
    "compute_sqrt": SuiteTask("compute_sqrt", "cs", 0.5),
    "bucket_sort": SuiteTask("sort", "cs", 0.2, {"vocab_size": 5}),
}

# what every suite task's own file sets: the encoder reads ``input ++ <unk> * len(answer)`` and
# answers at the <unk> slots, in training as at evaluation (the reference code's protocol)
SUITE_DEFAULTS = {"data": {"masking": "answer"}}


class ChomskyTask(LengthTask):
    """What the suite's own tasks share: an encoder reads ``input ++ answer slots`` (``masked``)."""

    default_layout: ClassVar[str] = "masked"


def until_end(target: torch.Tensor, end_id: int) -> torch.Tensor:
    """The reference code's accuracy mask for answers closed by an end mark and filled up with
    zeros: every position up to and including the first ``end_id``, ``[n, T]`` bool.

    >>> until_end(torch.tensor([[6, 6, 9, 5], [9, 5, 5, 5]]), 9).tolist()
    [[True, True, True, False], [True, False, False, False]]
    """
    first = (target == end_id).long().argmax(1, keepdim=True)  # [n, 1]
    return torch.arange(target.shape[1]).unsqueeze(0) <= first
