"""What a finished run reports: the test numbers, time-to-solve, the diagnosis; for replicas
each replica's headline numbers and their mean with a 95% confidence interval (for an accuracy,
``interval95``: ``stats.seeds_interval``, inside [0, 1]; for the rest, ``ci95``: a t-interval's
half-width).

>>> run.summary["test_exact_match"], run.summary["solved_at_step"]            # doctest: +SKIP
(1.0, 200)
>>> print(format_table(replicas.summary))                                      # doctest: +SKIP
replica   seed        lr   test_token_acc  test_exact_match  test_n  solved_at_step  steps
      0      0     0.003           1.0000            1.0000    2000             200    200
...
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any, cast

import torch

from toyformer import numerics
from toyformer.eval import by_length, by_position, chance_level, diagnose, evaluate_config, solved
from toyformer.run import ReplicaSummary, Run, Summary
from toyformer.training.state import ReplicaState
from toyformer.stats import accuracy_text, mean_ci, proportion_ci, seeds_interval

HEADLINE = ("test_token_acc", "test_exact_match", "test_loss", "val_exact_match", "train_loss", "steps",
            "solved_at_step", "solved_at_s")
ACCURACIES = ("test_token_acc", "test_exact_match", "val_exact_match")  # their means get interval95, not ci95


def finish(run: Run, state: ReplicaState) -> Summary:
    """Test the trained ``run`` and build its summary. ``state``: one replica's loop state
    (``stopped``, ``wall_s``, ``solved_at_step``, ``solved_at_s``, ``diverged_at_step``)."""
    cfg = run.config
    stopped, wall_s = state["stopped"], state["wall_s"]
    assert stopped is not None and wall_s is not None, "a replica is summed up after the loop stopped it"
    test = evaluate_config(run.model, run.splits.test, cfg, run.device)
    last = run.metrics[-1] if run.metrics else {}
    summary: Summary = {
        "task": cfg.task.name,
        "layout": cfg.layout,
        "params": sum(p.numel() for p in run.model.parameters()),
        "steps": stopped,
        "wall_s": round(wall_s, 3),
        "train_loss": last.get("train_loss"),
        "test_token_acc": test["token_acc"],
        "test_exact_match": test["exact_match"],
        "test_loss": test["loss"],
        "test_n": test["n"],
        "test_exact_match_ci95": list(proportion_ci(int(test["row_correct"].sum()), test["n"])),
        "val_token_acc": last.get("val_token_acc"),
        "val_exact_match": last.get("val_exact_match"),
        "solved": state["solved_at_step"] is not None,
        "solved_at_step": state["solved_at_step"],
        "solved_at_s": state["solved_at_s"],
        "target": {"metric": cfg.eval.target_metric, "value": cfg.eval.target, "hold": cfg.eval.hold,
                   "evidence": state.get("evidence") if state["solved_at_step"] is not None else None},
        "splits": {**run.splits.sizes(), "note": solved.note(run.splits, cfg.eval.target)},
        "task_params": cfg.task.params,
        "seed": cfg.seed,
        "device": str(run.device),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.machine(),
                    **numerics.code_path()},
        "chance": chance_level(run.splits.test, cfg.layout, cfg.data.sep),
        "test_by_position": by_position(test),
        "test_by_length": by_length(test),
    }
    step = state.get("diverged_at_step")
    if step is not None:
        last_good = last.get("step", 0)
        summary["diverged"] = {"step": step, "weights_from_step": last_good,
                               "reason": f"the training loss was NaN or infinite at step {step}; the weights are "
                                         f"those of step {last_good}, the last evaluation before it"}
    summary["diagnosis"] = diagnose(cfg, run.metrics, summary)
    return summary


def combine(runs: list[Run], values: dict[str, list] | None = None) -> ReplicaSummary:
    """The replica run's summary: each replica's headline numbers (with ``test_n`` and ``solved``),
    their ``mean``, ``interval95`` (the accuracies: ``[low, high]``, ``stats.seeds_interval``) and
    ``ci95`` (the other numbers: half-width of a 95% t-interval; ``solved_at_*`` over the replicas
    that solved), and with a swept key one ``groups`` entry per value."""
    rows = [{"replica": i, "seed": r.config.seed, "lr": r.config.train.lr,
             "run_dir": str(r.run_dir) if r.run_dir else None,
             **{m: r.summary.get(m) for m in HEADLINE}, "test_n": r.summary.get("test_n"),
             "solved": r.summary.get("solved", r.summary.get("solved_at_step") is not None),
             **({"diverged_at_step": r.summary["diverged"]["step"]} if "diverged" in r.summary else {})}
            for i, r in enumerate(runs)]
    first = runs[0].summary
    summary: ReplicaSummary = {
        "task": first["task"], "layout": first["layout"], "k": len(runs), "params": first["params"],
        "solved": sum(bool(r["solved"]) for r in rows), "diverged": sum("diverged" in r.summary for r in runs),
        "replicas": rows, **aggregate(rows), "wall_s": max(r.summary["wall_s"] for r in runs),
        "target": first["target"], "machine": first["machine"], "device": first["device"]}
    if values:
        summary["groups"] = [{"lr": lr, "replicas": [r["replica"] for r in rows if r["lr"] == lr],
                              **aggregate([r for r in rows if r["lr"] == lr])}
                             for lr in dict.fromkeys(r["lr"] for r in rows)]
    return summary


def aggregate(rows: list[dict]) -> dict:
    """``{"mean": {metric: ...}, "interval95": {accuracy: [low, high]}, "ci95": {other: half-width}}``
    over the rows' non-missing values; a test accuracy pools the rows' ``test_n`` examples when
    each row knows it (a summary written before ``test_n`` was: the bootstrap over seeds alone)."""
    mean, interval, ci = {}, {}, {}
    for m in HEADLINE:
        have = [r for r in rows if r.get(m) is not None]
        if not have:
            continue
        if m in ACCURACIES:
            sizes = [r.get("test_n") for r in have] if m.startswith("test_") else []
            counts = cast("list[int]", sizes) if sizes and all(sizes) else None
            mean[m], *interval[m] = seeds_interval([r[m] for r in have], counts)
        else:
            mean[m], ci[m] = mean_ci([r[m] for r in have])
    return {"mean": mean, "interval95": interval, "ci95": ci}


def format_table(summary: Mapping[str, Any]) -> str:
    """The replicas one per line, then the mean line: each accuracy with its 95% interval and the
    test examples of all replicas, the rest ± a 95% CI (``toyformer train --replicas``)."""
    cols = ("test_token_acc", "test_exact_match", "test_n", "solved_at_step", "steps")
    fmt = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = [f"{'replica':>7} {'seed':>6} {'lr':>9} " + " ".join(f"{c:>16}" for c in cols)]
    for r in summary["replicas"]:
        lines.append(f"{r['replica']:>7} {r['seed']:>6} {r['lr']:>9.3g} "
                     + " ".join(f"{fmt(r.get(c)):>16}" for c in cols))
    groups = summary.get("groups") or [{"lr": None, **summary}]
    for g in groups:
        label = "mean" if g["lr"] is None else f"lr {g['lr']:.3g}"
        members = [r for r in summary["replicas"] if g["lr"] is None or r["lr"] == g["lr"]]
        n = sum(r.get("test_n") or 0 for r in members) or None
        of = f"{len(members)} seeds"
        parts = [f"{c} " + accuracy_text(g["mean"][c], g.get("interval95", {}).get(c),
                                         n if c.startswith("test_") else None, of)
                 for c in ACCURACIES if c in g["mean"]]
        parts += [f"{c} {g['mean'][c]:.1f} +- {g['ci95'][c]:.1f}" for c in ("solved_at_step", "steps")
                  if c in g.get("ci95", {})]
        lines.append(f"{label:>24}: " + "; ".join(parts))
    return "\n".join(lines)
