"""The suite's protocol (Deletang et al. 2023; Ruoss et al. 2023) as toyformer configurations.

Training draws one length per step uniformly from 1..40 (``data.min_length=1``,
``data.max_length=40``, ``data.length_sampling=batch``); every model reads
``input ++ <unk> * len(answer)`` and answers at the ``<unk>`` slots (``layout=masked``,
``data.masking=answer``), as the reference code's encoder-only models read the input followed by
empty output cells. Adam without weight decay at a constant learning rate, gradient norm clipped
at 1, no early stop. Scoring: ``score.py``, at every length 41..``max_test_length``.

A **budget** sets what the papers ran (``full``: 1,000,000 steps of batch 128 for each of 10 seeds
and 3 learning rates, tested to length 500 on 512 examples per length, the 5-layer transformer and
the 256-unit LSTM) or what a small machine can (``cpu``, ``quick``); every number the bench
writes names its budget. The papers report, per cell, the **maximum** score over seeds and
learning rates.

A **column** of the table is a recurrent family (``lstm``; ``rnn``, ``stack_rnn`` and ``tape_rnn``,
Deletang et al.'s other baselines) or ``transformer/<scheme>``; the schemes are toyformer's
positional schemes (``SCHEMES``), ``randomised`` being Ruoss et al.'s random positions
(``model.random_positions``) on a base scheme.

>>> cell_config("parity_check", "transformer/rope", BUDGETS["quick"], seed=0, lr=1e-3).model.positional
'rope'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from toyformer.config import RunConfig, positional
from toyformer.errors import ConfigError
from toyformer.models.recurrent import RECURRENT
from toyformer.tasks import get_task
from toyformer.tasks.chomsky import SUITE

TRAIN_LENGTHS = (1, 40)
NO_POSITIONS = positional.names(lambda s: s.plug == "none")[0]

SCHEMES: dict[str, dict[str, Any]] = {  # name -> model settings over the budget's transformer
    # every scheme of the table that does not need digits (config/positional.py)
    **{name: {"positional": name} for name in positional.names(lambda s: not s.digit_places)},
    # Ruoss et al.: sorted random positions from 0..max_len-1 while training (on relative
    # distances, their best base scheme); random_<base> picks another base
    "randomised": {"positional": "relative", "random_positions": True},
    **{f"random_{base}": {"positional": base, "random_positions": True} for base in positional.sequence_schemes()},
    # toyformer's own options beyond the papers' schemes
    "both_ends": {"positional": "sinusoidal", "positions_from": "both"},  # distance to the end too (R2)
    # a decoder that writes the automaton's state after every symbol before the answer (regular
    # tasks only: tasks/scratchpad.py), its positions coupled by index, attention one position wide
    "scratchpad": {"positional": "relative", "symbol_positions": True, "relative_max_distance": 3,
                   "attention_window": 1, "window_sink": True, "number_embedding": True},
}
SCRATCHPAD_TASKS = ("parity_check", "even_pairs", "cycle_navigation", "modular_arithmetic")
# the default columns: every plain scheme (the papers' columns, and any scheme added since) and randomised
DEFAULT_SCHEMES = (*positional.names(lambda s: not s.digit_places), "randomised")
# RECURRENT (models/recurrent.py): the budget's "lstm" steps, rates and width serve them all
MODELS = (*RECURRENT, "transformer")
DEFAULT_MODELS = ("lstm", "transformer")


def steps_key(column: str) -> str:
    """The key of a column's steps and learning rates in a ``Budget``: ``transformer``, or ``lstm``
    for every recurrent family (the papers train them all alike)."""
    return "transformer" if column.startswith("transformer") else "lstm"


@dataclass(frozen=True)
class Budget:
    """What one bench invocation trains and tests, per cell."""

    name: str
    steps: dict  # model family -> training steps
    batch_size: int
    lrs: dict  # model family -> learning rates (each trains every seed)
    seeds: int
    max_test_length: int
    n_per_length: int  # test examples per length
    transformer: dict = field(default_factory=dict)
    lstm_hidden: int = 256
    length_sampling: str = "batch"  # batch: a uniform length per step (the papers); curriculum: growing
    note: str = ""


REFERENCE_TRANSFORMER = {"d_model": 64, "n_heads": 8, "n_layers": 5, "d_ff": 256, "dropout": 0.1, "norm": "post",
                         "activation": "relu"}
BUDGETS = {
    "full": Budget("full", {"transformer": 1_000_000, "lstm": 1_000_000}, 128, {"transformer": (1e-4, 3e-4, 5e-4),
                                                                                "lstm": (1e-4, 3e-4, 5e-4)}, 10, 500,
                   512, REFERENCE_TRANSFORMER, 256, "batch",
                   "the papers' protocol: 1,000,000 steps of batch 128, lengths 1..40 drawn uniformly, 10 seeds x 3 "
                   "learning rates, the 5-layer transformer and the 256-unit LSTM, by default 512 examples per length "
                   "41..500"),
    # a shared 2-core CPU (its run time is in docs/results/chomsky.md): 1,000 transformer and
    # 1,500 LSTM steps of batch 32 instead of 1,000,000 of 128, so the lengths 1..40 come in a
    # growing order, which needs far fewer steps than a uniform draw from the start
    "cpu": Budget("cpu", {"transformer": 1000, "lstm": 1500}, 32, {"transformer": (1e-3,), "lstm": (3e-3, 1e-2)}, 1,
                  100, 32,
                  {"d_model": 64, "n_heads": 4, "n_layers": 2, "d_ff": 128, "dropout": 0.0, "norm": "pre",
                   "activation": "relu"}, 128, "curriculum",
                  "1,000 (transformer) and 1,500 (LSTM) steps of batch 32 on lengths 1..40 in a growing order "
                  "(the curriculum), a 2-layer transformer (d_model 64) and a 128-unit LSTM, one seed, by default "
                  "tested on 32 examples per length 41..100"),
    "quick": Budget("quick", {"transformer": 4, "lstm": 4}, 8, {"transformer": (1e-3,), "lstm": (1e-3,)}, 2, 43, 4,
                    {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}, 16, "batch",
                    "a pipeline check (4 steps, lengths 41..43): its numbers mean nothing"),
}
# the cpu budget's recurrent cells, trained 13 times longer at one learning rate: whether the
# recurrent verdicts that differ from the papers' move towards them with training alone
BUDGETS["long"] = replace(BUDGETS["cpu"], name="long", steps={"transformer": 1000, "lstm": 20_000},
                          lrs={"transformer": (1e-3,), "lstm": (3e-3,)},
                          note="the cpu budget with 20,000 recurrent steps (13x) at one learning rate, 0.003: 1,000 "
                               "(transformer) and 20,000 (recurrent) steps of batch 32 on lengths 1..40 in a growing "
                               "order, one seed, by default tested on 32 examples per length 41..100")


def column_model(column: str, budget: Budget) -> dict:
    """The ``model`` section of a column: a recurrent family (one layer of the budget's width) or
    ``transformer/<scheme>``."""
    family, _, scheme = column.partition("/")
    if family in RECURRENT and not scheme:
        return {"family": family, "d_model": budget.lstm_hidden, "n_layers": 1, "positional": NO_POSITIONS}
    if family == "transformer" and scheme in SCHEMES:
        return {**budget.transformer, **SCHEMES[scheme]}
    raise ConfigError(f"unknown column {column!r}; allowed: {', '.join(RECURRENT)}, "
                      + ", ".join(f"transformer/{s}" for s in SCHEMES))


def longest_sequence(task_name: str, max_test_length: int) -> int:
    """Tokens the model reads at the longest test length: ``input ++ answer slots``."""
    entry = SUITE[task_name]
    ex = get_task(entry.task, **entry.params).sample(1, _probe(), length=max_test_length)
    return ex.input.shape[1] + ex.target.shape[1]


def task_and_layout(task_name: str, column: str) -> tuple[dict, str]:
    """The task section and layout of a cell: the suite's task read by an encoder with answer
    slots (``masked``), or, for ``transformer/scratchpad``, its scratchpad read and written by a
    decoder (``causal``)."""
    entry = SUITE[task_name]
    if column != "transformer/scratchpad":
        return {"name": entry.task, **entry.params}, "masked"
    if task_name not in SCRATCHPAD_TASKS:
        raise ConfigError(f"column transformer/scratchpad needs a regular task with an automaton, not {task_name!r}; "
                          f"allowed: {', '.join(SCRATCHPAD_TASKS)}")
    return {"name": "scratchpad", "of": entry.task}, "causal"


def cell_config(task_name: str, column: str, budget: Budget, seed: int, lr: float,
                max_test_length: int | None = None) -> RunConfig:
    """The run of one seed and learning rate of a (task, column) cell. ``model.max_len`` covers
    the longest test sequence, so that no test position is clamped (learned positions beyond
    the training lengths are untrained rows, and random positions are drawn from the whole range)."""
    if task_name not in SUITE:
        raise ConfigError(f"unknown suite task {task_name!r}; allowed: {', '.join(SUITE)}")
    model = column_model(column, budget)
    family = steps_key(column)
    task, layout = task_and_layout(task_name, column)
    if family == "transformer":  # a scratchpad's decoder reads input, <sep>, a state per symbol, answer, <eos>
        longest = longest_sequence(task_name, max_test_length or budget.max_test_length)
        model["max_len"] = (2 * longest if layout == "causal" else longest) + 8
    lo, hi = TRAIN_LENGTHS
    return RunConfig.from_dict({
        "task": task,
        "layout": layout,
        "model": model,
        "data": {"batch_size": budget.batch_size, "min_length": lo, "max_length": hi,
                 "length_sampling": budget.length_sampling,
                 "masking": "answer", "holdout": "no"},
        "train": {"steps": budget.steps[family], "lr": lr, "weight_decay": 0.0, "beta2": 0.999, "warmup_steps": 0,
                  "schedule": "constant", "grad_clip": 1.0},
        "eval": {"every": budget.steps[family], "val_size": 64, "test_size": 64, "target": None, "batch_size": 64},
        "seed": seed,
        "device": "auto",
    })


def chance_band(chance: float) -> float:
    """Scores below ``chance + CHANCE_MARGIN`` count as chance (max over many runs drifts above it)."""
    return chance + CHANCE_MARGIN


SOLVED = 0.9
CHANCE_MARGIN = 0.05


def verdict(score: float, chance: float) -> str:
    """``solved`` (>= 90%), ``chance`` (below chance + 5 points) or ``between``.

    >>> verdict(0.964, 0.5), verdict(0.524, 0.5), verdict(0.623, 0.5)
    ('solved', 'chance', 'between')
    """
    if score >= SOLVED:
        return "solved"
    return "chance" if score < chance_band(chance) else "between"


def borderline(score: float, chance: float, width: float = 0.02) -> bool:
    """Within ``width`` of a verdict's boundary: a small change of the score flips the verdict."""
    return min(abs(score - SOLVED), abs(score - chance_band(chance))) < width


def _probe():
    import torch

    return torch.Generator().manual_seed(0)
