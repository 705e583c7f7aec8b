"""R4's levers: what makes toyformer's R4 configuration (``recipes/r4.py`` ``IMPROVED``) fast
against the reference code, one change at a time.

The reference (``r4_arithmetic.py`` as written, 100 epochs) runs once and sets the finish line:
its validation exact match and its training seconds. Each lever is toyformer's configuration with
one setting changed back (or the whole previous configuration), trained on ``--seeds`` seeds with
an evaluation every 250 steps on 5,000 validation formulas; its time is the training seconds
(evaluations included) of the first evaluation at the reference's accuracy, at most the
reference's own time (a lever that does not get there within it is slower than the reference).
The ratio is the reference's seconds over the slowest seed's.

``toyformer bench levers --reference ../shared/reference-code --threads 1 --markdown docs/results/race_levers.md``
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from toyformer.bench.race import RACES, run_reference
from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.experiments.recipes import r4
from toyformer.training import train

# lever -> the settings changed from r4.IMPROVED (None: r4.PREVIOUS, the configuration before)
LEVERS: dict[str, dict[str, Any] | None] = {
    "toyformer's R4 configuration": {},
    "answer most significant digit first": {"task.reverse_answer": False},
    "no place embedding": {"model.place_embedding": False},
    "GPT-2's small initialisation": {"model.init": "small"},
    "batch 125, lr 2e-3, no clipping": {"data.batch_size": 125, "train.lr": 2e-3, "train.grad_clip": None},
    "feed-forward 256": {"model.d_ff": 256},
    "pre-norm": {"model.norm": "pre"},
    "the previous configuration": None,
}


def lever_config(change: dict | None, reference_acc: float, cap_s: float, quick: bool) -> RunConfig:
    base = RunConfig.from_dict(r4.PREVIOUS if change is None else r4.IMPROVED)
    cfg = base.with_overrides({**(change or {}), "eval.target": reference_acc, "eval.hold": 1, "eval.every": 250,
                               "eval.val_size": 5000, "train.max_time_s": cap_s})
    if quick:
        cfg = cfg.with_overrides({"train.steps": 20, "eval.every": 10, "eval.val_size": 64, "eval.test_size": 64,
                                  "eval.confirm_size": 64})
    return cfg


def time_to(cfg: RunConfig, level: float) -> dict:
    run = train(cfg)
    first = next((r for r in run.metrics if r["val_exact_match"] >= level), None)
    return {"seed": cfg.seed, "reached_s": first["wall_s"] if first else None,
            "reached_step": first["step"] if first else None,
            "steps": run.summary["steps"], "final_val": run.metrics[-1]["val_exact_match"] if run.metrics else None,
            "ms_per_step": round(1000 * run.summary["wall_s"] / max(1, run.summary["steps"]), 1)}


def run(args) -> dict:
    ref_dir = Path(args.reference or "../shared/reference-code")
    script, env, pattern, field, _, _ = RACES["r4"]
    if not (ref_dir / script).is_file():
        raise ConfigError(f"--reference {str(ref_dir)!r} has no {script}; pass the folder of the reference code")
    ref = run_reference(ref_dir / script, env(args.quick), pattern)
    acc, ref_s = ref[field], ref.get("wall_s", ref["process_s"])
    seeds = args.seeds or (1 if args.quick else 2)
    rows = []
    for name, change in LEVERS.items():
        runs = [time_to(lever_config(change, acc, ref_s, args.quick).with_overrides({"seed": s}),
                        acc) for s in range(seeds)]
        times = [r["reached_s"] for r in runs]
        slowest = None if any(t is None for t in times) else max(times)
        rows.append({"lever": name, "change": change, "runs": runs, "slowest_s": slowest,
                     "ratio": ref_s / slowest if slowest else None})
        print(f"levers {name}: {times}", file=sys.stderr, flush=True)
    return {"reference": ref, "reference_acc": acc, "reference_s": ref_s, "seeds": seeds, "rows": rows}


def render(result: dict) -> str:
    lines = [f"### R4's levers: seconds to the reference's validation exact match ({result['reference_acc']:.3f}, "
             f"which the reference reached in {result['reference_s']:.1f} s), {result['seeds']} seed(s)", "",
             "| lever | seconds per seed (steps) | slowest | ratio to the reference |", "|---|---|---|---|"]
    for r in result["rows"]:
        per = ", ".join(f"{x['reached_s']:.1f} ({x['reached_step']})" if x["reached_s"] is not None else
                        f"not within the reference's time (val {x['final_val']:.3f})" for x in r["runs"])
        slowest = f"{r['slowest_s']:.1f}" if r["slowest_s"] else "-"
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "< 1x"
        lines.append(f"| {r['lever']} | {per} | {slowest} | {ratio} |")
    return "\n".join(lines)
