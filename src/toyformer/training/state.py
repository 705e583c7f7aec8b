"""The loop state, as types: what the training loop keeps for each replica while it trains, and
what it writes into the checkpoint's metadata (JSON) so that a stopped run resumes.

    {"k": K, "step": 40, "wall_s": 1.2, "replicas": [{"solved_at_step": None, "solved_at_s": None,
     "stopped": None, "wall_s": None, "diverged_at_step": None, "held": 0, "evidence": None,
     "history": [record, ...]}, ...]}

A checkpoint written before a key existed lacks it; ``loop.restore`` fills it in.
"""

from __future__ import annotations

from typing import Any, TypedDict


class ReplicaState(TypedDict):
    """One replica: when it solved (step, seconds), when it stopped, when its loss stopped being
    finite; the confirming evaluations in a row (``held``) and the last one's evidence; its history
    of evaluation records (``metrics.jsonl``)."""

    solved_at_step: int | None
    solved_at_s: float | None
    stopped: int | None
    wall_s: float | None
    diverged_at_step: int | None
    held: int
    evidence: dict[str, Any] | None
    history: list[dict[str, Any]]


class LoopState(TypedDict):
    """The loop: K replicas, the steps taken, the training seconds so far, each replica's state."""

    k: int
    step: int
    wall_s: float
    replicas: list[ReplicaState]


def fresh_state(k: int) -> LoopState:
    """The state before the first step."""
    return {"k": k, "step": 0, "wall_s": 0.0, "replicas": [
        {"solved_at_step": None, "solved_at_s": None, "stopped": None, "wall_s": None, "diverged_at_step": None,
         "held": 0, "evidence": None, "history": []} for _ in range(k)]}
