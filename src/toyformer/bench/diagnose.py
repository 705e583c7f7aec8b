"""``toyformer bench diagnose``: how often ``diagnose --try`` finds the fix of a run broken in a
known way, and how long it takes.

Each case is a configuration broken in one way whose fixes are known (``CASES``). The benchmark
trains it (one seed, as a user would), runs ``try_fixes`` on it within ``--budget-s`` seconds
(``--seeds`` seeds per change) and records the symptoms, the top recommendation, its verdict on
fresh seeds (*fixes it*: every fresh seed solved), whether it is one of the case's known fixes
(a change of one of their keys), and the seconds the search took. A case counts as fixed when
the recommendation fixes it; the table says how many cases were, and whether each search stayed
within ``LIMIT_S``.

``--quick`` trains every run for a few steps and gives each search at most ``QUICK_BUDGET_S``
seconds: it checks the pipeline, not the numbers. Run directories go to ``--runs-dir`` (default
``runs/bench/diagnose``): ``CASE/`` is the broken run, with its ``try/`` and ``try.json``; a broken run that finished
before is reused.

>>> r = run_case("lr_too_high", budget_s=300)   # doctest: +SKIP
>>> r["fixed"], r["recommendation"]["change"]   # doctest: +SKIP
(True, 'train.lr=0.003')
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from toyformer.config import RunConfig
from toyformer.errors import ConfigError

BUDGET_S = 480.0
LIMIT_S = 600.0  # each search within 10 minutes on the benchmark's machine

# name -> (what is broken, the config, the keys whose change is a known fix)
CASES: dict[str, tuple[str, dict, set[str]]] = {
    "r0_as_described": (
        "R0 as written (examples/configs/r0_as_described.yaml, seed 1): 12 post-norm layers, no warm-up, flattened "
        "outputs; it stays at chance", {"seed": 1}, {"model.norm", "model.n_layers", "train.warmup_steps"}),
    "memorising": (
        "a small finite domain (modular addition, p=23) on half of it with no weight decay: it memorises the half it "
        "sees", {"task": {"name": "modular_arithmetic"}, "data": {"train_share": 0.5}, "train": {"weight_decay": 0.0}},
        {"train.weight_decay", "data.train_share"}),
    "lr_too_high": (
        "reverse (tagger) at a learning rate a hundred times the default", {"task": {"name": "reverse"},
                                                                           "train": {"lr": 0.3}}, {"train.lr"}),
    "too_few_steps": (
        "reverse (causal) stopped after 40 steps, before it left chance",
        {"task": {"name": "reverse"}, "layout": "causal", "train": {"steps": 40}, "eval": {"every": 10}},
        {"train.steps", "train.lr", "data.batch_size", "train.schedule"}),
    "post_norm_deep": (
        "reverse (tagger) in an 8-layer post-norm stack without warm-up",
        {"task": {"name": "reverse"}, "model": {"norm": "post", "n_layers": 8}, "train": {"warmup_steps": 0}},
        {"model.norm", "model.n_layers", "train.warmup_steps", "train.lr"}),
    "memorising_task_file": (
        "a task it has never seen: a user's small finite domain written as a task file (a * a + b mod 23, "
        "bench/task_files/square_plus.py; no tuned defaults), trained on half of it: it memorises",
        {"task": {"name": "square_plus"}, "data": {"train_share": 0.5}},
        {"train.weight_decay", "data.train_share"}),
    "no_positions": (
        "reverse (tagger) at lengths 1-12 without a positional scheme: an encoder that sees a bag of tokens cannot "
        "put them in reverse order at any test length", {"task": {"name": "reverse"}, "model": {"positional": "none"},
                                                          "data": {"min_length": 1, "max_length": 12}},
        {"model.positional"}),
}
QUICK = {"train.steps": 20, "eval.every": 10, "eval.val_size": 32, "eval.test_size": 32}
QUICK_BUDGET_S = 8.0  # --quick checks the pipeline: each search gets at most this


TASK_FILES = {"square_plus": Path(__file__).parent / "task_files" / "square_plus.py"}  # loaded as a user's would be


def case_config(name: str, quick: bool = False) -> RunConfig:
    """The broken configuration of case ``name`` (R0's is the recipe's, as the example file writes it;
    a task of ``TASK_FILES`` is registered from its file first, as ``--task-file`` does)."""
    if name not in CASES:
        raise ConfigError(f"--cases: unknown case {name!r}; allowed: {', '.join(CASES)}")
    data = CASES[name][1]
    task_file = TASK_FILES.get(data.get("task", {}).get("name"))
    if task_file is not None:
        from toyformer.tasks.registry import load_task_file

        load_task_file(task_file)
    if name == "r0_as_described":
        from toyformer.experiments.recipes.r0 import ORIGINAL

        data = {**ORIGINAL, **data}
    cfg = RunConfig.from_dict(data)
    return cfg.with_overrides(QUICK) if quick else cfg


def run_case(name: str, budget_s: float = BUDGET_S, seeds: int = 3, runs_dir: str | Path = "runs/bench/diagnose",
             quick: bool = False, log=None) -> dict:
    """Train case ``name``'s broken run (or reuse it), then ``try_fixes`` on it; the case's numbers."""
    from toyformer.experiments.trial_fixes import try_fixes
    from toyformer.training import train_into

    what, _, known = CASES[name] if name in CASES else (None, None, None)
    config = case_config(name, quick)
    run_dir = Path(runs_dir) / name
    run, status = train_into(run_dir, config)
    s = run.summary
    broken = {"status": status, "test_exact_match": s["test_exact_match"], "test_n": s.get("test_n"),
              "test_exact_match_ci95": s.get("test_exact_match_ci95"), "solved": s.get("solved"),
              "train_s": s["wall_s"], "symptoms": [f["symptom"] for f in s.get("diagnosis") or []]}
    assert known is not None  # case_config has refused a name not in CASES
    row = {"case": name, "what": what, "known": sorted(known), "broken": broken}
    if not s.get("diagnosis"):
        return {**row, "fixed": None, "note": "the broken run reached its target: nothing to fix"}
    t0 = time.perf_counter()
    result = try_fixes(run_dir, budget_s, seeds, log=log)
    spent = time.perf_counter() - t0
    rec = result["recommendation"] or {}
    return {**row, "try_s": round(spent, 1), "within_limit": spent <= LIMIT_S, "candidates": result["candidates"],
            "rungs": [{k: r[k] for k in ("stage", "rung", "cap_s", "trained")} for r in result["rungs"]],
            "recommendation": rec, "fixed": rec.get("verdict") == "fixes it",
            "known_fix": bool(set(rec.get("overrides", {})) & known)}


def run(args) -> dict:
    """``toyformer bench diagnose [--cases a,b] [--budget-s S] [--seeds K] [--runs-dir DIR] [--quick]``."""
    names = args.cases.split(",") if args.cases else list(CASES)
    for name in names:
        case_config(name)  # every name checked before anything trains
    budget = min(args.budget_s or QUICK_BUDGET_S, QUICK_BUDGET_S) if args.quick else (args.budget_s or BUDGET_S)
    seeds = args.seeds or (2 if args.quick else 3)
    if not budget > 0 or seeds < 1:
        raise ConfigError(f"--budget-s {budget:g} and --seeds {seeds}: allowed: --budget-s > 0 and --seeds >= 1")
    runs_dir = Path(args.runs_dir or ("runs/bench/diagnose" + ("-quick" if args.quick else "")))
    load = [os.getloadavg()[0]] if hasattr(os, "getloadavg") else []
    rows = []
    for name in names:
        print(f"bench diagnose: {name}", file=sys.stderr, flush=True)
        rows.append(run_case(name, budget, seeds, runs_dir, args.quick,
                             log=lambda line: print(f"  {line}", file=sys.stderr, flush=True)))
    load += [os.getloadavg()[0]] if load else []
    tried = [r for r in rows if r["fixed"] is not None]
    return {"budget_s": budget, "seeds": seeds, "quick": args.quick, "limit_s": LIMIT_S, "cases": rows,
            "fixed": sum(bool(r["fixed"]) for r in tried), "tried": len(tried),
            "within_limit": sum(bool(r.get("within_limit")) for r in tried), "load_average_1min": load}


def _test(r: dict) -> str:
    from toyformer.stats import accuracy_text

    b = r["broken"]
    return accuracy_text(b["test_exact_match"], b["test_exact_match_ci95"], b["test_n"], digits=3)


def render(result: dict) -> str:
    from toyformer.report.tried import final_text, time_text

    head = ["case", "broken: symptoms", "broken: test exact match (n, 95% CI)", "top recommendation",
            "known fix", "on fresh seeds", "seconds to solve (solved seeds)", "final test metric (n, 95% CI)",
            "search s"]
    lines = [f"### Diagnose --try on runs broken in a known way (budget {result['budget_s']:g} s, "
             f"{result['seeds']} seeds per change)", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["cases"]:
        rec = r.get("recommendation") or {}
        if r["fixed"] is None:
            lines.append(f"| {r['case']} | - | {_test(r)} | {r['note']} | - | - | - | - | - |")
            continue
        measured = "error" not in rec and "final" in rec
        lines.append(f"| {r['case']} | {', '.join(r['broken']['symptoms'])} | {_test(r)} | `{rec.get('change', '-')}` "
                     f"| {'yes' if r['known_fix'] else 'no'} | {rec.get('verdict') or '-'} "
                     f"({rec.get('solved', 0)}/{rec.get('seeds', result['seeds'])}) | "
                     f"{time_text(rec) if measured else '-'} | {final_text(rec) if measured else '-'} | "
                     f"{r['try_s']:.0f} |")
    load = result.get("load_average_1min") or []
    lines += ["", f"The top recommendation fixes {result['fixed']} of {result['tried']} cases (every fresh seed "
                  f"solved); {result['within_limit']} of {result['tried']} searches took at most "
                  f"{result['limit_s']:g} s."
              + (f" Load average (1 min) at the start and the end: {', '.join(f'{v:.1f}' for v in load)} on "
                 f"{os.cpu_count()} cores." if load else "")]
    lines += ["", "Cases:"] + [f"- `{r['case']}`: {r['what']}; known fixes: {', '.join(r['known'])}."
                              for r in result["cases"]]
    return "\n".join(lines)
