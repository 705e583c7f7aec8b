"""How many confirming evaluations in a row (``eval.hold``) a solve needs: each hold against the
true error of the runs it calls solved, and what it costs in time.

Every (task, seed, hold) is trained at the task's defaults until solved (``eval/solved.py``); the
solved model is then measured on ``--n-fresh`` fresh rows (a seed no run uses, tasks whose input
space is far larger than anything a run sees), which estimates its true error far more finely
than the test set does. A hold is good when the runs it calls solved have an error at or below
``1 - eval.target`` (a *false solve* otherwise), at the lowest cost in seconds.

>>> [round(v, 4) for v in false_rate([0.0, 0.002, 0.0005])]   # one false solve of three
[0.3333, 0.0615, 0.7923]
"""

from __future__ import annotations

import sys

import torch

from toyformer.config import RunConfig
from toyformer.eval import evaluate_config
from toyformer.stats import mean_ci, proportion_ci
from toyformer.training import train

TASKS = ("reverse", "copy")  # input spaces of 10^8 and 10^20: fresh rows are unseen rows
LAYOUTS = {"reverse": "tagger", "copy": "causal"}
TARGET = 0.999
FRESH_SEED = 987_654


def false_rate(errors: list[float]) -> tuple[float, float, float]:
    """The share of runs whose fresh error exceeds ``1 - TARGET``, with its 95% interval."""
    bad = sum(e > 1 - TARGET for e in errors)
    return (bad / len(errors), *proportion_ci(bad, len(errors)))


def one(task: str, seed: int, hold: int, n_fresh: int, quick: bool) -> dict:
    cfg = RunConfig.from_dict({"task": task, "layout": LAYOUTS[task], "seed": seed,
                               "eval": {"target": TARGET, "hold": hold}})
    if quick:
        cfg = cfg.with_overrides(["train.steps=30", "eval.every=10"])
    run = train(cfg)
    fresh = run.task.sample(n_fresh, torch.Generator().manual_seed(FRESH_SEED))
    result = evaluate_config(run.model, fresh, cfg, run.device)
    return {"task": task, "seed": seed, "hold": hold, "solved": run.summary["solved"],
            "solved_at_s": run.summary["solved_at_s"], "steps": run.summary["steps"],
            "test_exact_match": run.summary["test_exact_match"], "fresh_n": n_fresh,
            "fresh_error": 1 - result["exact_match"]}


def run(args) -> dict:
    seeds = 2 if args.quick else (args.seeds or 20)
    n_fresh = 200 if args.quick else 20_000
    rows = []
    tasks = args.tasks.split(",") if args.tasks else list(TASKS)
    for task in tasks:
        for seed in range(seeds):
            for hold in (1, 2, 3):
                rows.append(one(task, seed, hold, n_fresh, args.quick))
                r = rows[-1]
                print(f"hold {task} seed {seed} hold {hold}: solved {r['solved']} at {r['solved_at_s']} s, fresh error "
                      f"{r['fresh_error']:.5f}", file=sys.stderr, flush=True)
    return {"target": TARGET, "n_fresh": n_fresh, "seeds": seeds, "rows": rows, "holds": summarise(rows)}


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        for hold in (1, 2, 3):
            runs = [r for r in rows if r["task"] == task and r["hold"] == hold]
            solved = [r for r in runs if r["solved"]]
            entry = {"task": task, "hold": hold, "runs": len(runs), "solved": len(solved)}
            if solved:
                entry["false"] = dict(zip(("share", "lo", "hi"), false_rate([r["fresh_error"] for r in solved])))
                entry["solved_at_s"] = dict(zip(("mean", "ci95"), mean_ci([r["solved_at_s"] for r in solved])))
                entry["worst_fresh_error"] = max(r["fresh_error"] for r in solved)
            out.append(entry)
    return out


def render(result: dict) -> str:
    lines = [f"### eval.hold: false solves (fresh error > {1 - result['target']:.1%} on {result['n_fresh']:,} fresh "
             f"rows) and seconds to solve, {result['seeds']} seeds", "",
             "| task | hold | solved | false solves (share, 95% CI) | worst fresh error "
             "| seconds to solve (mean ± 95% CI) |",
             "|---|---|---|---|---|---|"]
    for h in result["holds"]:
        if "false" not in h:
            lines.append(f"| {h['task']} | {h['hold']} | 0/{h['runs']} | - | - | - |")
            continue
        f, t = h["false"], h["solved_at_s"]
        lines.append(f"| {h['task']} | {h['hold']} | {h['solved']}/{h['runs']} | {f['share']:.2f} "
                     f"({f['lo']:.2f}-{f['hi']:.2f}) | {h['worst_fresh_error']:.4%} | {t['mean']:.1f} ± "
                     f"{t['ci95']:.1f} |")
    return "\n".join(lines)
