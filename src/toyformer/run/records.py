"""What a run directory reports, as types: ``Summary`` is ``summary.json`` of a single run (what
``training.summary.finish`` writes), ``ReplicaSummary`` that of a replica run (``combine``).

They are ``TypedDict``: the files stay the plain JSON they have always been, old ones included
(a key added later is simply absent from an old file: every key is optional to a reader), and a
type checker knows every key a reader may ask for.

>>> summary: Summary = load_run("runs/rev").summary              # doctest: +SKIP
>>> summary["test_exact_match"], summary["test_n"]              # doctest: +SKIP
(1.0, 2000)
"""

from __future__ import annotations

from typing import Any, TypedDict


class Target(TypedDict):
    """The target a run was judged by (``eval.target_metric``, ``eval.target``, ``eval.hold``) and
    the evidence that confirmed it (``eval/solved.py``; None unless solved)."""

    metric: str
    value: float | None
    hold: int
    evidence: dict[str, Any] | None


class Diverged(TypedDict):
    """A run whose training loss stopped being finite: the step, and whose weights it kept."""

    step: int
    weights_from_step: int
    reason: str


class Summary(TypedDict, total=False):
    """``summary.json`` of a single run: test numbers (with the test set's size and the 95%
    interval of exact match), time-to-solve, the splits, where it ran, accuracy by position and
    length, and the diagnosis of a run that missed its target."""

    task: str
    layout: str
    params: int
    steps: int
    wall_s: float
    train_loss: float | None
    test_token_acc: float
    test_exact_match: float
    test_loss: float
    test_n: int
    test_exact_match_ci95: list[float]
    val_token_acc: float | None
    val_exact_match: float | None
    solved: bool
    solved_at_step: int | None
    solved_at_s: float | None
    target: Target
    splits: dict[str, Any]
    task_params: dict[str, Any]
    seed: int
    device: str
    machine: dict[str, Any]
    chance: dict[str, Any]
    test_by_position: dict[str, Any]
    test_by_length: dict[str, Any]
    diverged: Diverged
    diagnosis: list[dict[str, Any]]


class ReplicaSummary(TypedDict, total=False):
    """``summary.json`` of a replica run: each replica's headline numbers (``replicas``), their
    ``mean``, ``interval95`` (accuracies) and ``ci95`` (the rest), and with a swept learning rate
    one ``groups`` entry per value."""

    task: str
    layout: str
    k: int
    params: int
    solved: int  # replicas that solved
    diverged: int  # replicas that diverged
    replicas: list[dict[str, Any]]
    mean: dict[str, float]
    interval95: dict[str, list[float]]
    ci95: dict[str, float]
    wall_s: float
    target: Target
    machine: dict[str, Any]
    device: str
    groups: list[dict[str, Any]]
