"""Addition far past its training length (``toyformer recipe lengths --preset addition``): trained on
operands of 1-10 digits, tested at 10, 100 and 1,000 digits on five seeds, and an ablation that
takes away one part at a time.

The configuration (``CONFIG``, plain config keys) makes the computation of every answer digit
local and the same at every length:

- the answer is written least significant digit first (``task.reverse_answer``), so the digit
  at place ``k`` needs only the operands' digits at places ``k`` and ``k - 1`` and the answer
  digit before it: the carry into place ``k`` is whether ``a[k-1] + b[k-1]`` plus the carry
  into ``k - 1`` reached 10, and that carry is ``answer[k-1] - a[k-1] - b[k-1]`` (mod 10);
- positions are digit places (``model.digit_positions``, position coupling): the units of both
  operands and of the answer share place 1, the tens place 2, and so on, and attention sees only
  keys at most one place away (``model.attention_window=1``) through a relative bias that tells
  the distances -1, 0 and +1 apart (``model.relative_max_distance=3``); a query then meets the
  same kinds of keys at the same distances in a 1,000-digit sum as in a 10-digit one;
- a learned embedding of which number a digit is in (``model.number_embedding``): with places
  alone the units of the two operands look the same to a head; with it one head reads ``a[k]``,
  another ``b[k]``, and so on;
- the window keeps the tokens that are not digits (``+``, ``<sep>``) visible
  (``model.window_sink``): a head whose digit does not exist (past the end of a shorter operand,
  past the top of the sum) attends there, so "no digit" looks the same at every length;
- one layer suffices (the four heads read ``a[k]``, ``b[k]``, ``a[k-1]``, ``b[k-1]``; the
  feed-forward block adds them with the carry), and the operands' lengths are drawn independently
  (``task.min_digits=1 .. task.digits=10``), so unequal lengths are met in training.

Every setting the configuration relies on is pinned, so that the task's tuned defaults
(``Addition.config_defaults``: a place embedding, a wide feed-forward block, its schedule) never
fill in for an ablation that leaves one out.

Training is counted in steps, not seconds, so that a loaded machine changes the time a run takes
and not what it learns; runs use one torch thread, and the table gives each run's CPU seconds
(what it costs on one core of this machine when it has the core to itself) beside its wall seconds. Exact match is
greedy decoding, as everywhere; the per-digit error is the teacher-forced error rate over the answer tokens.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from toyformer.eval.lengths import evaluate_lengths
from toyformer.experiments.recipes.base import Context, RecipeResult, Table
from toyformer.files import read_json, write_json
from toyformer.stats import proportion_ci

CONFIG = {
    "task": {"name": "addition", "digits": 10, "min_digits": 1, "reverse_answer": True},
    "layout": "causal",
    "model": {"d_model": 64, "n_heads": 4, "n_layers": 1, "d_ff": 256, "positional": "relative",
              "digit_positions": True, "relative_max_distance": 3, "attention_window": 1, "window_sink": True,
              "number_embedding": True, "place_embedding": False},
    "data": {"batch_size": 64},
    "train": {"steps": 1500, "lr": 3e-3, "warmup_steps": 100, "min_lr_ratio": 0.01, "weight_decay": 0.0},
    "eval": {"every": 1500, "val_size": 256, "test_size": 500, "target": None},
}
SEEDS = 5
LENGTHS = (10, 100, 1000)
N = {10: 500, 100: 500, 1000: 200}  # fresh examples per length
TARGETS = {100: 0.99, 1000: 0.90}  # exact match at these digits, on at least REQUIRED of SEEDS seeds
REQUIRED = 4
LONGEST_ONLY_FROM = 0.5  # an ablation is tested at 1,000 digits only where 100 digits reach this

# Each ablation takes one part away (or changes one choice), trained on ABLATION_SEEDS seeds.
ABLATION_SEEDS = 1
ABLATIONS: dict[str, dict[str, Any]] = {
    "without the number embedding": {"model.number_embedding": False},
    "without the window's sinks": {"model.window_sink": False},
    "without the window (relative bias clipped at 3 places)": {"model.attention_window": None,
                                                               "model.window_sink": False},
    "sequence positions instead of digit places (relative bias, no window)": {
        "model.digit_positions": False, "model.attention_window": None, "model.window_sink": False,
        "model.number_embedding": False, "model.relative_max_distance": 128},
    "answer most significant digit first": {"task.reverse_answer": False},
    "operands of equal length in training": {"data.min_length": 1, "data.max_length": 10,
                                             "data.length_sampling": "row"},
    "3 layers": {"model.n_layers": 3},
}
QUICK = {"train.steps": 30, "eval.every": 30, "eval.val_size": 16, "eval.test_size": 16}


def _train(ctx: Context, name: str, overrides: dict):
    """Train (or reuse) one run; its CPU seconds are kept beside it (``cpu_s.json``)."""
    config = ctx.config(CONFIG).with_overrides({**overrides, **(QUICK if ctx.quick else {})})
    cpu0 = time.process_time()
    run = ctx.train(name, config)
    spent = time.process_time() - cpu0
    assert run.run_dir is not None  # a trained run always has its directory
    path = run.run_dir / "cpu_s.json"
    if path.is_file():
        spent = read_json(path)["train_cpu_s"]
    elif run.summary["steps"] == config.train.steps:
        write_json(path, {"train_cpu_s": round(spent, 1)})
    return run, spent


def _measure(ctx: Context, run, lengths) -> dict:
    """Exact match (greedy) with its interval, and the teacher-forced per-digit error, at each length."""
    out = {}
    for length in lengths:
        n = 8 if ctx.quick else N[length]
        t0, cpu0 = time.perf_counter(), time.process_time()
        row = evaluate_lengths(run, [length], n)["rows"][0]
        hits = round(row["exact_match"] * n)
        out[str(length)] = {"exact_match": row["exact_match"], "ci95": list(proportion_ci(hits, n)), "n": n,
                       "digit_error": 1 - row["token_acc"], "eval_s": round(time.perf_counter() - t0, 1),
                       "eval_cpu_s": round(time.process_time() - cpu0, 1)}
    return out


def _cell(m: dict | None) -> str:
    if m is None:
        return "not run"
    lo, hi = m["ci95"]
    return f"{m['exact_match']:.3f} [{lo:.3f}, {hi:.3f}]"


def run(ctx: Context) -> RecipeResult:
    """Train and measure on one torch thread (what a CPU second means in the table), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(ctx)
    finally:
        torch.set_num_threads(before)


def _run(ctx: Context) -> RecipeResult:
    res = RecipeResult("lengths", "Addition from 10 to 100 and 1,000 digits")
    lengths = (3, 5, 8) if ctx.quick else LENGTHS
    seeds = {}
    for seed in range(2 if ctx.quick else SEEDS):
        run_, cpu = _train(ctx, f"addition_seed{seed}", {"seed": seed})
        seeds[seed] = {"measured": _measure(ctx, run_, lengths), "train_cpu_s": cpu,
                       "train_wall_s": run_.summary["wall_s"], "steps": run_.summary["steps"]}
    rows = [[s, *[_cell(v["measured"][str(x)]) for x in lengths],
             f"{v['measured'][str(lengths[-1])]['digit_error']:.1e}",
             v["steps"], round(v["train_cpu_s"]), round(v["train_wall_s"])] for s, v in seeds.items()]
    medians = [statistics.median(v["measured"][str(x)]["exact_match"] for v in seeds.values()) for x in lengths]
    rows.append(["median", *[f"{m:.3f}" for m in medians], "", "", "", ""])
    res.tables.append(Table(
        "Five seeds: exact match by operand digits (trained on 1-10 digits)",
        ["seed", *[f"{x} digits" for x in lengths], f"per-digit error at {lengths[-1]}", "steps", "train CPU s",
         "train wall s"], rows,
        f"Exact match: greedy decoding, with the 95% Wilson interval, on {', '.join(f'{N[x]}' for x in LENGTHS)} fresh "
        f"examples at {', '.join(map(str, LENGTHS))} digits (both operands of exactly that many digits). Per-digit "
        "error: the share of wrong answer tokens, teacher forced. Train CPU s: the training process's CPU time "
        "(one thread); wall s: its wall clock on the shared machine."))
    ablations = {}
    for name, overrides in ABLATIONS.items():
        for seed in range(1 if ctx.quick else ABLATION_SEEDS):
            run_, cpu = _train(ctx, f"ablation_{_slug(name)}_seed{seed}", {**overrides, "seed": seed})
            measured = _measure(ctx, run_, lengths[:2])
            if measured[str(lengths[1])]["exact_match"] >= LONGEST_ONLY_FROM:
                measured.update(_measure(ctx, run_, lengths[2:]))
            ablations[(name, seed)] = {"measured": measured, "train_cpu_s": cpu, "steps": run_.summary["steps"]}
    full = seeds[0]
    rows = [["all parts (seed 0)", *[_cell(full["measured"].get(str(x))) for x in lengths],
             f"{full['measured'][str(lengths[-1])]['digit_error']:.1e}", round(full["train_cpu_s"])]]
    for (name, seed), v in ablations.items():
        m = v["measured"]
        where = lengths[-1] if str(lengths[-1]) in m else lengths[1]
        longest = m[str(where)]
        rows.append([f"{name} (seed {seed})", *[_cell(m.get(str(x))) for x in lengths],
                     f"{longest['digit_error']:.1e} (at {where})", round(v["train_cpu_s"])])
    res.tables.append(Table(
        "Ablation: one part taken away at a time (seed 0, the same steps)",
        ["configuration", *[f"{x} digits" for x in lengths], "per-digit error", "train CPU s"], rows,
        f"1,000 digits are tested only where 100 digits reach {LONGEST_ONLY_FROM:.0%} exact match."))
    res.numbers = {"config": CONFIG, "seeds": {str(k): v for k, v in seeds.items()},
                   "ablations": {f"{k[0]} (seed {k[1]})": v for k, v in ablations.items()}, "targets": TARGETS}
    res.findings = _findings(seeds, lengths, ctx.quick)
    return res


def _findings(seeds: dict, lengths, quick: bool) -> list[str]:
    if quick:
        return ["--quick: a pipeline check; the targets were not measured."]
    out = []
    for length, target in TARGETS.items():
        met = [s for s, v in seeds.items() if v["measured"][str(length)]["exact_match"] >= target]
        out.append(f"Exact match >= {target:.0%} at {length} digits: {len(met)} of {len(seeds)} seeds "
                   f"({', '.join(map(str, met)) or 'none'}); the target asks for {REQUIRED} of {SEEDS}.")
    worst = max(v["measured"][str(lengths[-1])]["digit_error"] for v in seeds.values())
    cpu = max(v["train_cpu_s"] for v in seeds.values())
    out.append(f"Per-digit error at {lengths[-1]} digits: at most {worst:.1e} over the seeds; training took at most "
               f"{cpu:.0f} CPU seconds per seed.")
    return out


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:48]
