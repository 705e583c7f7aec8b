"""Time-to-solve: every registered task at its default configuration, trained until 99.9%
exact match, one after the other, with a time cap per task.

Each task runs with its default layout and its ``config_defaults`` (what ``toyformer train
TASK`` does), plus ``eval.target=0.999`` on exact match and ``train.max_time_s`` = the cap.
The loop stops at the first evaluation whose validation exact match reaches the target;
``solved_at_step`` / ``solved_at_s`` are that step and the training seconds to it (evaluations
included, set-up excluded); the test set (disjoint from training) then gives the reported
exact match. ``total_s`` is the whole ``toyformer.train`` call, set-up and test included.

>>> row = solve("parity", cap_s=60)          # doctest: +SKIP
>>> row["solved_at_s"], row["test_exact_match"]   # doctest: +SKIP
(3.1, 1.0)
"""

from __future__ import annotations

import sys
import time

from toyformer.config import RunConfig
from toyformer.tasks import list_tasks
from toyformer.training import train

TARGET = 0.999


def solve(task: str, cap_s: float, device: str = "cpu", overrides: list[str] | None = None) -> dict:
    """Train ``task`` at its defaults to ``TARGET`` exact match (at most ``cap_s`` seconds)."""
    cfg = RunConfig.from_dict({"task": task}).with_overrides(
        ["eval.target_metric=exact_match", f"eval.target={TARGET}", f"train.max_time_s={cap_s}", *(overrides or [])])
    t0 = time.perf_counter()
    s = train(cfg, device=device).summary
    total = time.perf_counter() - t0
    solved = s["solved_at_step"] is not None and s["test_exact_match"] >= TARGET
    return {"task": task, "layout": cfg.layout, "params": s["params"], "steps": s["steps"],
            "solved_at_step": s["solved_at_step"], "solved_at_s": s["solved_at_s"], "solved": solved,
            "test_exact_match": s["test_exact_match"], "val_exact_match": s["val_exact_match"],
            "wall_s": s["wall_s"], "total_s": round(total, 3), "batch_size": cfg.data.batch_size,
            "max_steps": cfg.train.steps, "eval_every": cfg.eval.every, "cap_s": cap_s}


def run(args) -> dict:
    """``python -m benchmarks time-to-solve [--tasks a,b] [--cap-s S] [--quick]``."""
    tasks = args.tasks.split(",") if args.tasks else sorted(list_tasks())
    overrides = ["train.steps=4", "eval.every=2", "eval.val_size=16", "eval.test_size=16"] if args.quick else []
    overrides += args.set
    rows = []
    for task in tasks:
        rows.append(solve(task, args.cap_s, args.device, overrides))
        print(f"time-to-solve {task}: {rows[-1]['solved_at_s']} s", file=sys.stderr, flush=True)
    return {"target": TARGET, "cap_s": args.cap_s, "quick": args.quick, "overrides": overrides, "rows": rows}


def render(result: dict) -> str:
    head = ["task", "layout", "params", "steps", "seconds to 99.9% (val)", "test exact match", "whole run s",
            "batch", "eval every"]
    lines = [f"### Time to {100 * result['target']:g}% exact match (cap {result['cap_s']:g} s per task)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        when = (f"{r['solved_at_s']:.1f}" if r["solved"] else
                f"not solved ({r['steps']} steps, {r['wall_s']:.0f} s)"
                if r["solved_at_step"] is None else f"{r['solved_at_s']:.1f} (test below target)")
        lines.append(f"| {r['task']} | {r['layout']} | {r['params']:,} | {r['solved_at_step'] or r['steps']} | "
                     f"{when} | {r['test_exact_match']:.4f} | {r['total_s']:.1f} | {r['batch_size']} | "
                     f"{r['eval_every']} |")
    return "\n".join(lines)
