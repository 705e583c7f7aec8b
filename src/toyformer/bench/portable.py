"""What the portable mode (``train.portable=true``) costs: training steps per second on the pinned
code paths against the CPU's own, at the same single thread.

Each contender is a fresh ``toyformer train`` process (the code paths are fixed when torch loads),
timed by the run's own ``wall_s`` (training only, evaluations included); the contenders alternate
over the rounds so that a busy machine slows both alike. The third contender, the native path at
torch's default thread count, shows what a run gives up by pinning one thread.

>>> [name for name, _ in CONTENDERS]
['native, 1 thread', 'portable', 'native, default threads']
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from toyformer.numerics import PORTABLE_ENV

# (task, layout, overrides): a small classifier, a tagger and R4's encoder-decoder at their defaults
MODELS: list[tuple[str, str, list[str]]] = [("count_ones", "classifier", []), ("reverse", "tagger", []),
                                             ("arithmetic", "seq2seq", [])]
CONTENDERS = [("native, 1 thread", {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, []),
              ("portable", {}, ["train.portable=true"]),
              ("native, default threads", {}, [])]


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in PORTABLE_ENV}


def time_run(task: str, layout: str, overrides: list[str], env: dict, steps: int, tmp: Path) -> float:
    """Seconds per 1,000 training steps of one ``toyformer train`` process."""
    out = tmp / f"run{len(list(tmp.iterdir()))}"
    sets = [f"train.steps={steps}", f"eval.every={steps}", "eval.target=none", *overrides]
    command = [sys.executable, "-m", "toyformer", "train", task, "--layout", layout, "--out", str(out), "--quiet",
               "--no-live-plot", "--store", str(tmp / "store.sqlite"), *[a for s in sets for a in ("--set", s)]]
    done = subprocess.run(command, env={**_clean_env(), **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
    return json.loads((out / "summary.json").read_text())["wall_s"] * 1000 / steps


def run(args) -> dict:
    steps, rounds = (20, 1) if args.quick else (400, 3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task, layout, overrides in MODELS:
            times: dict[str, list[float]] = {name: [] for name, _, _ in CONTENDERS}
            for r in range(rounds):
                order = CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]
                for name, env, extra in order:
                    times[name].append(time_run(task, layout, overrides + extra, env, steps, Path(tmp)))
            medians = {name: statistics.median(v) for name, v in times.items()}
            rows.append({"task": task, "layout": layout, "steps": steps, "rounds": rounds, "s_per_1000_steps": times,
                         "median_s_per_1000_steps": medians,
                         "portable_over_native_1_thread": medians["portable"] / medians["native, 1 thread"]})
    return {"models": rows, "portable_env": PORTABLE_ENV}


def render(result: dict) -> str:
    names = [name for name, _, _ in CONTENDERS]
    head = "| task, layout | " + " | ".join(f"{n}: s / 1,000 steps" for n in names) + " | portable / native 1 thread |"
    rows = [f"| {m['task']} {m['layout']} | " + " | ".join(f"{m['median_s_per_1000_steps'][n]:.2f}" for n in names)
            + f" | {m['portable_over_native_1_thread']:.2f}x |" for m in result["models"]]
    first = result["models"][0]
    return "\n".join([
        "### The portable mode's cost (train.portable=true)", "",
        f"Medians of {first['rounds']} alternating rounds of {first['steps']} steps; each contender a fresh process.",
        "", head, "|---|" + "---|" * (len(names) + 1), *rows])
