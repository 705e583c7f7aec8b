"""Time-to-solve: every task at its defaults (but the Chomsky suite's, ``bench chomsky``), at its
default layout and (``--layouts all``) at every other layout it fits except ``masked``, on
``--seeds`` seeds, one after the other, each trained as ``toyformer train TASK --layout L`` would
(the task's ``config_defaults`` and ``layout_defaults``) with ``eval.target=0.999`` on exact match.

No run is capped (unless ``--cap-s``): whether the defaults solve a pair comes first, how fast
second. A run is *solved* as the training loop decides it (``eval/solved.py``: the confirmation
set bounds the error at 0.1%, held for ``eval.hold`` evaluations); ``solved_at_s`` is the
training seconds to it (evaluations included, set-up excluded), and the test set (disjoint from
training) gives the reported exact match, with its n and 95% interval. A pair is *solved* when
every seed is, with test exact match >= 99.9%, and *meets its time target* when, besides, the
slowest seed took at most ``TARGET_S`` seconds (``arithmetic``: ``ARITHMETIC_S``).

>>> row = solve("parity", "classifier", seed=0)   # doctest: +SKIP
>>> row["solved"], row["test_n"]                 # doctest: +SKIP
(True, 51)
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, cast

from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.models import FITS
from toyformer.stats import mean_ci
from toyformer.tasks import list_tasks, task_class
from toyformer.training import train

if TYPE_CHECKING:
    from toyformer.tasks import Task

TARGET = 0.999
TARGET_S = 30.0
ARITHMETIC_S = 120.0


def layouts_of(task: str, which: str) -> list[str]:
    """``default``: the task's own layout; ``all``: every layout it fits but masked; or a list."""
    cls = cast("type[Task]", task_class(task))  # a registered task class follows the Task protocol
    fitting = [layout for layout, kinds in FITS.items() if cls.kind in kinds and layout != "masked"]
    if which == "default":
        return [cls.default_layout]
    if which == "all":
        return [cls.default_layout] + [layout for layout in fitting if layout != cls.default_layout]
    chosen = [layout.strip() for layout in which.split(",")]
    return [layout for layout in chosen if layout in fitting]


def solve(task: str, layout: str | None = None, seed: int = 0, cap_s: float | None = None, device: str = "cpu",
          overrides: list[str] | None = None) -> dict:
    """Train ``task`` in ``layout`` (default: its own) at its defaults to ``TARGET`` exact match
    (with ``cap_s``, at most that many seconds)."""
    layout = layout or cast("type[Task]", task_class(task)).default_layout
    cap = [f"train.max_time_s={cap_s}"] if cap_s else []
    cfg = RunConfig.from_dict({"task": task, "layout": layout, "seed": seed}).with_overrides(
        ["eval.target_metric=exact_match", f"eval.target={TARGET}", *cap, *(overrides or [])])
    t0 = time.perf_counter()
    s = train(cfg, device=device).summary
    total = time.perf_counter() - t0
    solved = s["solved_at_step"] is not None and s["test_exact_match"] >= TARGET
    return {"task": task, "layout": layout, "seed": seed, "params": s["params"], "steps": s["steps"],
            "solved_at_step": s["solved_at_step"], "solved_at_s": s["solved_at_s"], "solved": solved,
            "test_exact_match": s["test_exact_match"], "test_n": s["test_n"],
            "test_exact_match_ci95": s["test_exact_match_ci95"], "val_exact_match": s["val_exact_match"],
            "evidence": s["target"]["evidence"], "splits": s["splits"],
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
                rows.append(solve(task, layout, seed, args.cap_s, args.device, overrides))
                r = rows[-1]
                seconds = r["solved_at_s"] if r["solved"] else "not solved"
                print(f"time-to-solve {task} {layout} seed {seed}: {seconds} s",
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
        lowest = min(runs, key=lambda r: r["test_exact_match"])
        pair = {"task": key[0], "layout": key[1], "seeds": len(runs), "solved": len(solved), "limit_s": limit,
                "min_test_exact_match": lowest["test_exact_match"], "min_test_n": lowest.get("test_n"),
                "min_test_ci95": lowest.get("test_exact_match_ci95")}
        if solved:
            pair["solved_at_s"] = dict(zip(("mean", "ci95"), mean_ci([r["solved_at_s"] for r in solved])))
            pair["slowest_s"] = max(r["solved_at_s"] for r in solved)
        pair["all_solved"] = len(solved) == len(runs)
        pair["met"] = pair["all_solved"] and pair.get("slowest_s", float("inf")) <= limit
        out.append(pair)
    return out


def render(result: dict) -> str:
    head = ["task", "layout", "seeds solved", "seconds to solve (mean ± 95% CI)", "slowest seed s",
            "lowest test EM (n, 95% CI)", "time target"]
    cap = f"capped at {result['cap_s']:g} s per run" if result["cap_s"] else "no cap"
    lines = [f"### Time to solve at {100 * result['target']:g}% exact match ({cap}, {result.get('seeds', 1)} seed(s))",
             "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    all_pairs = result.get("pairs") or pairs(result["rows"])
    for p in all_pairs:
        t = p.get("solved_at_s")
        when = f"{t['mean']:.1f} ± {t['ci95']:.1f}" if t else "-"
        slowest = f"{p['slowest_s']:.1f}" if "slowest_s" in p else "-"
        ci = p.get("min_test_ci95")
        test = f"{p['min_test_exact_match']:.4f}" + (f" (n={p['min_test_n']}, {ci[0]:.4f}-{ci[1]:.4f})" if ci else "")
        lines.append(f"| {p['task']} | {p['layout']} | {p['solved']}/{p['seeds']} | {when} | {slowest} | {test} | "
                     f"<= {p['limit_s']:g} s: {'met' if p['met'] else 'NOT met'} |")
    solved = sum(p.get("all_solved", p["solved"] == p["seeds"]) for p in all_pairs)
    met = sum(p["met"] for p in all_pairs)
    lines.append(f"\n{solved} of {len(all_pairs)} (task, layout) pairs solved on every seed; {met} of {len(all_pairs)} "
                 f"within their time target.")
    return "\n".join(lines)
