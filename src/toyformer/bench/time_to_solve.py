"""Time-to-solve: every task at its defaults (but the Chomsky suite's, ``bench chomsky``), at its default layout and (``--layouts all``) at
every other layout it fits except ``masked``, on ``--seeds`` seeds, trained until 99.9% exact
match, one after the other, with a time cap per run.

Each run uses the task's defaults for that layout (what ``toyformer train TASK --layout L``
does: the task's ``config_defaults`` and ``layout_defaults``), plus ``eval.target=0.999`` on
exact match and ``train.max_time_s`` = the cap (``--cap-s``; by default the task's own limit,
since a run past it cannot meet the target). The loop stops at the first evaluation whose
validation exact match reaches the target; ``solved_at_step`` / ``solved_at_s`` are that step
and the training seconds to it (evaluations included, set-up excluded); the test set (disjoint
from training) then gives the reported exact match. A (task, layout) pair meets its target when
every seed solves with test exact match >= 99.9% within ``TARGET_S`` seconds (``arithmetic``:
``ARITHMETIC_S``).

>>> row = solve("parity", "classifier", seed=0, cap_s=60)   # doctest: +SKIP
>>> row["solved"], row["solved_at_s"] <= row["cap_s"]       # doctest: +SKIP
(True, True)
"""

from __future__ import annotations

import sys
import time

from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.models import FITS
from toyformer.stats import mean_ci
from toyformer.tasks import list_tasks, task_class
from toyformer.training import train

TARGET = 0.999
TARGET_S = 30.0
ARITHMETIC_S = 120.0


def layouts_of(task: str, which: str) -> list[str]:
    """``default``: the task's own layout; ``all``: every layout it fits but masked; or a list."""
    cls = task_class(task)
    fitting = [layout for layout, kinds in FITS.items() if cls.kind in kinds and layout != "masked"]
    if which == "default":
        return [cls.default_layout]
    if which == "all":
        return [cls.default_layout] + [layout for layout in fitting if layout != cls.default_layout]
    chosen = [layout.strip() for layout in which.split(",")]
    return [layout for layout in chosen if layout in fitting]


def solve(task: str, layout: str | None = None, seed: int = 0, cap_s: float = 300.0, device: str = "cpu",
          overrides: list[str] | None = None) -> dict:
    """Train ``task`` in ``layout`` (default: its own) at its defaults to ``TARGET`` exact match
    (at most ``cap_s`` seconds)."""
    layout = layout or task_class(task).default_layout
    cfg = RunConfig.from_dict({"task": task, "layout": layout, "seed": seed}).with_overrides(
        ["eval.target_metric=exact_match", f"eval.target={TARGET}", f"train.max_time_s={cap_s}", *(overrides or [])])
    t0 = time.perf_counter()
    s = train(cfg, device=device).summary
    total = time.perf_counter() - t0
    solved = s["solved_at_step"] is not None and s["test_exact_match"] >= TARGET
    return {"task": task, "layout": layout, "seed": seed, "params": s["params"], "steps": s["steps"],
            "solved_at_step": s["solved_at_step"], "solved_at_s": s["solved_at_s"], "solved": solved,
            "test_exact_match": s["test_exact_match"], "val_exact_match": s["val_exact_match"],
            "wall_s": s["wall_s"], "total_s": round(total, 3), "batch_size": cfg.data.batch_size,
            "max_steps": cfg.train.steps, "eval_every": cfg.eval.every, "cap_s": cap_s}


def run(args) -> dict:
    """``toyformer bench time-to-solve [--tasks a,b] [--layouts default|all|L,..] [--seeds K] [--cap-s S]``."""
    # by default every task but the Chomsky suite's twelve, which measure length generalisation
    # (toyformer bench chomsky), not time to solve at one length
    suite = {t for t in list_tasks() if task_class(t).__module__.startswith("toyformer.tasks.chomsky.")}
    tasks = args.tasks.split(",") if args.tasks else sorted(set(list_tasks()) - suite)
    unknown = [t for t in tasks if t not in list_tasks()]
    if unknown:
        raise ConfigError(f"--tasks: unknown task {unknown[0]!r}; allowed: {', '.join(list_tasks())}")
    overrides = ["train.steps=4", "eval.every=2", "eval.val_size=16", "eval.test_size=16"] if args.quick else []
    overrides += args.set
    rows = []
    seeds = args.seeds or 1
    for task in tasks:
        for layout in layouts_of(task, args.layouts):
            for seed in range(seeds):
                rows.append(solve(task, layout, seed, args.cap_s or limit_s(task), args.device, overrides))
                r = rows[-1]
                print(f"time-to-solve {task} {layout} seed {seed}: {r['solved_at_s'] if r['solved'] else 'not solved'} s",
                      file=sys.stderr, flush=True)
    return {"target": TARGET, "cap_s": args.cap_s, "quick": args.quick, "overrides": overrides, "seeds": seeds,
            "layouts": args.layouts, "rows": rows, "pairs": pairs(rows)}


def limit_s(task: str) -> float:
    """The seconds within which every seed of ``task`` must solve."""
    return ARITHMETIC_S if task == "arithmetic" else TARGET_S


def pairs(rows: list[dict]) -> list[dict]:
    """One entry per (task, layout): seeds solved, mean ± 95% CI of seconds to solve, the slowest
    seed, the lowest test exact match, and whether the target is met."""
    out = []
    for key in dict.fromkeys((r["task"], r["layout"]) for r in rows):
        runs = [r for r in rows if (r["task"], r["layout"]) == key]
        limit = limit_s(key[0])
        solved = [r for r in runs if r["solved"]]
        pair = {"task": key[0], "layout": key[1], "seeds": len(runs), "solved": len(solved), "limit_s": limit,
                "min_test_exact_match": min(r["test_exact_match"] for r in runs)}
        if solved:
            pair["solved_at_s"] = dict(zip(("mean", "ci95"), mean_ci([r["solved_at_s"] for r in solved])))
            pair["slowest_s"] = max(r["solved_at_s"] for r in solved)
        pair["met"] = len(solved) == len(runs) and pair.get("slowest_s", float("inf")) <= limit
        out.append(pair)
    return out


def render(result: dict) -> str:
    head = ["task", "layout", "seeds solved", "seconds to 99.9% (mean ± 95% CI)", "slowest seed s", "lowest test EM",
            "target"]
    cap = f"{result['cap_s']:g} s" if result["cap_s"] else "each task's limit"
    lines = [f"### Time to {100 * result['target']:g}% exact match (cap {cap} per run, "
             f"{result.get('seeds', 1)} seed(s))", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in result.get("pairs") or pairs(result["rows"]):
        t = p.get("solved_at_s")
        when = f"{t['mean']:.1f} ± {t['ci95']:.1f}" if t else "-"
        slowest = f"{p['slowest_s']:.1f}" if "slowest_s" in p else "-"
        lines.append(f"| {p['task']} | {p['layout']} | {p['solved']}/{p['seeds']} | {when} | {slowest} | "
                     f"{p['min_test_exact_match']:.4f} | <= {p['limit_s']:g} s: {'met' if p['met'] else 'NOT met'} |")
    met = sum(p["met"] for p in result.get("pairs") or pairs(result["rows"]))
    lines.append(f"\n{met} of {len(result.get('pairs') or pairs(result['rows']))} (task, layout) pairs meet their target.")
    return "\n".join(lines)
