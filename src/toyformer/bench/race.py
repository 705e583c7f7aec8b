"""The race: each reference experiment as its author wrote it against toyformer's best
configuration for the same task, in one process, interleaved, at the same thread count.

The reference side is the reference code itself (``--reference DIR``: the folder of
``r0_count_ones.py``, ``r1_lookup_table.py``, ``r2_reverse.py``, ``r4_arithmetic.py``), run
in this process with ``runpy`` and its own budget, set by the environment variables it reads:

======= ============================================== ===================================
race    reference budget                               the accuracy it reports (metric)
======= ============================================== ===================================
R0      its own default, one epoch (3,125 steps)       test accuracy (exact match)
R1      3,000 steps, the 2-layer padded model          accuracy over the table (exact match)
R2      20 epochs, N=200, M=20                         test token accuracy
R4      100 epochs, sinusoidal positions               validation exact match (greedy)
======= ============================================== ===================================

Then toyformer trains its best configuration for the task (the recipes' improved ones) until
validation reaches both 99.9% and the reference's accuracy (the reference can report 1.000);
from its ``metrics.jsonl`` the race reads the first evaluation
at which validation reached the reference's accuracy on the same metric (toyformer's held-out
data are drawn from the same distribution as the reference's), and when the run reached 99.9%.
The ratio is the reference's training seconds over toyformer's seconds to the same accuracy.

``toyformer bench race --reference ../shared/reference-code --threads 1 --markdown docs/results/race.md``
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.experiments.recipes import r1, r2, r4
from toyformer.training import train

R0_CAP_S = 600.0
TARGET = 0.999


# R1's improved configuration with a cosine schedule short enough to settle the table within a
# fraction of the reference's steps, evaluated every 50 steps so the race reads the time to the
# reference's accuracy at a fine grain
R1_FAST = {**r1.IMPROVED, "train": {**r1.IMPROVED["train"], "steps": 1000}, "eval": {**r1.IMPROVED["eval"],
                                                                                     "every": 50}}


def _r0_steps(quick: bool) -> int:
    """R0's budget is "until it solves or ``R0_CAP_S``": the reference does not solve, and its own
    default of one epoch is its longest run (the race reports its wall time against the cap)."""
    return 20 if quick else 3125


RACES: dict[str, tuple[str, Callable[[bool], dict[str, str]], str, str, dict[str, Any], str]] = {
    # name -> (script, env, line pattern, accuracy field, toyformer config, metric)
    "r0": ("r0_count_ones.py", lambda q: {"STEPS": str(_r0_steps(q))}, r"^r0 ", "test_acc",
           {"task": {"name": "count_ones"}}, "exact_match"),
    "r1": ("r1_lookup_table.py", lambda q: {"EPOCHS": "20" if q else "3000"}, r"^r1 2layer_pad ", "acc",
           R1_FAST, "exact_match"),
    "r2": ("r2_reverse.py", lambda q: {"N": "200", "M": "20", "EPOCHS": "20", **({"MAX_STEPS": "20"} if q else {})},
           r"^r2 ", "test_token_acc", r2.improved_config(200, 20), "token_acc"),
    "r4": ("r4_arithmetic.py", lambda q: {"EPOCHS": "1" if q else "100", "POS": "1"}, r"^r4 ", "val_exact_match",
           {**r4.IMPROVED}, "exact_match"),
}


def run_reference(path: Path, env: dict, pattern: str) -> dict:
    """Run a reference script in this process with ``env`` set; its result line as numbers."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out = io.StringIO()
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(path), run_name="__main__")
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    total = time.perf_counter() - t0
    line = next((x for x in out.getvalue().splitlines() if re.match(pattern, x)), None)
    if line is None:
        raise ConfigError(f"{path}: no result line matching {pattern!r} in its output")
    numbers = {k: float(v) for k, v in re.findall(r"(\w+)=([-0-9.]+)", line)}
    return {**numbers, "line": line, "process_s": round(total, 1)}


def run_toyformer(config: dict, metric: str, reference_acc: float, quick: bool) -> dict:
    """Train ``config`` until validation ``metric`` reaches both the reference's accuracy and
    99.9%; when it first reached each."""
    target = max(TARGET, reference_acc)
    cfg = RunConfig.from_dict(config).with_overrides({"eval.target_metric": metric, "eval.target": target})
    if quick:
        cfg = cfg.with_overrides({"train.steps": 20, "eval.every": 10, "eval.val_size": 64, "eval.test_size": 64})
    run = train(cfg)
    key = f"val_{metric}"

    def first(level: float) -> dict:
        return next((r for r in run.metrics if r.get(key) is not None and r[key] >= level), {})

    same, solved = first(reference_acc), first(TARGET)
    s: Mapping[str, Any] = run.summary
    return {"config": cfg.to_dict(), "reached_reference_s": same.get("wall_s"),
            "reached_reference_step": same.get("step"), "solved_at_s": solved.get("wall_s"),
            "solved_at_step": solved.get("step"), "wall_s": s["wall_s"], f"test_{metric}": s[f"test_{metric}"]}


def run(args) -> dict:
    """``toyformer bench race --reference DIR [--races r0,r1,r2,r4] [--quick]``."""
    ref_dir = Path(args.reference or "../shared/reference-code")
    names = args.races.split(",") if args.races else list(RACES)
    bad = [n for n in names if n not in RACES]
    if bad:
        raise ConfigError(f"--races: unknown race {bad[0]!r}; allowed: {', '.join(RACES)}")
    missing = [RACES[n][0] for n in names if not (ref_dir / RACES[n][0]).is_file()]
    if missing:
        raise ConfigError(f"--reference {str(ref_dir)!r} has no {missing[0]}; pass the folder of the reference code")
    rows = []
    for name in names:
        script, env, pattern, field, config, metric = RACES[name]
        ref = run_reference(ref_dir / script, env(args.quick), pattern)
        acc = ref[field]
        tf = run_toyformer(config, metric, acc, args.quick)
        ref_s = ref.get("wall_s", ref["process_s"])
        ratio = ref_s / tf["reached_reference_s"] if tf["reached_reference_s"] else None
        rows.append({"race": name, "metric": metric, "reference": ref, "reference_acc": acc, "reference_s": ref_s,
                     "toyformer": tf, "ratio": ratio, **({"reference_cap_s": R0_CAP_S} if name == "r0" else {})})
        print(f"race {name}: reference {acc:.3f} in {ref_s:.1f} s; toyformer {tf['reached_reference_s']} s",
              file=sys.stderr,
              flush=True)
    return {"quick": args.quick, "target": TARGET, "rows": rows}


def render(result: dict) -> str:
    head = ["race", "metric", "reference accuracy (its budget)", "reference s", "toyformer s to the same",
            "ratio", "toyformer s to 99.9%", "goal >= 10x"]
    lines = ["### The race: the reference code against toyformer's best configuration", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        t = r["toyformer"]
        same = f"{t['reached_reference_s']:.1f}" if t["reached_reference_s"] is not None else "not reached"
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "-"
        solved = f"{t['solved_at_s']:.1f}" if t["solved_at_s"] is not None else "not reached"
        goal = "met" if r["ratio"] and r["ratio"] >= 10 else "NOT met"
        lines.append(f"| {r['race'].upper()} | {r['metric']} | {r['reference_acc']:.3f} | {r['reference_s']:.1f} | "
                     f"{same} | {ratio} | {solved} | {goal} |")
    for r in result["rows"]:
        if "reference_cap_s" in r:
            within = "within" if r["reference_s"] <= r["reference_cap_s"] else "OVER"
            lines.append(f"\n{r['race'].upper()}'s reference ran {r['reference']['steps']:.0f} steps in "
                         f"{r['reference_s']:.1f} s, {within} its {r['reference_cap_s']:g} s cap.")
    return "\n".join(lines)
