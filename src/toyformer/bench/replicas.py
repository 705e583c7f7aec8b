"""Replicas against single runs: ``toyformer bench replicas [--quick] [--k K] [--rounds N]``.

The targets, on R1's and R4's models, measured in one process and interleaved (each round runs
every contender once; medians over the rounds):

- **R1** (causal decoder-only classifier, 1 layer, d 16, batch 300): ``K = 16`` replicas
  trained as one batched computation in at most 3x the wall time of one run;
- **R4** (encoder-decoder 2+2, d 64, ff 64, batch 125, 10,000 fixed formulas): at least 2x the
  per-replica throughput of the 16 runs trained one after another.

**Bound.** A third contender per model is one model trained on a batch K times larger: the
same arithmetic as the K replicas with no replica machinery at all, so no batched
implementation of the replicas can be much faster; its ratio says what the machine allows.

Every contender trains a fixed number of steps (no early stop, one validation at the end on a
small set); the time is the run's own ``wall_s`` (the training loop: batches drawn and
formatted, forward, backward, AdamW, metrics, the validation), not the building of splits.
"""

from __future__ import annotations

import platform
import statistics

import torch

from toyformer.config import RunConfig
from toyformer.training import train, train_replicas
from toyformer.experiments.recipes import r1, r4

SMALL_EVAL = ["eval.val_size=100", "eval.test_size=100", "eval.target=none"]
R1 = RunConfig.from_dict(r1.PADDED)
R4 = RunConfig.from_dict(r4.ORIGINAL).with_overrides(["train.epochs=none", "model.positional=sinusoidal"])


def fixed_steps(cfg: RunConfig, steps: int) -> RunConfig:
    return cfg.with_overrides([f"train.steps={steps}", f"eval.every={steps}", *SMALL_EVAL])


def one_run(cfg: RunConfig, seed: int = 0) -> float:
    return train(cfg.with_overrides([f"seed={seed}"])).summary["wall_s"]


def replicas(cfg: RunConfig, k: int) -> float:
    return train_replicas(cfg, k=k).summary["wall_s"]


def wide(cfg: RunConfig, k: int) -> RunConfig:
    """One model on K batches at once: the replicas' arithmetic without replicas (the bound)."""
    return cfg.with_overrides([f"data.batch_size={k * cfg.data.batch_size}"])


def run(args) -> dict:
    """``toyformer bench replicas``: ``args.k`` replicas, ``args.rounds`` rounds (``--quick``: a
    few steps, one round: checks the pipeline, not the numbers)."""
    steps_r1, steps_r4, rounds = (4, 2, 1) if args.quick else (args.steps_r1, args.steps_r4, args.rounds)
    k = args.k
    c1, c4 = fixed_steps(R1, steps_r1), fixed_steps(R4, steps_r4)
    times: dict[str, list[float]] = {"r1_single": [], "r1_replicas": [], "r1_bound": [], "r4_sequential": [],
                                     "r4_replicas": [], "r4_bound": []}
    one_run(fixed_steps(R1, 2)), replicas(fixed_steps(R1, 2), 2)  # warm-up (allocator, vmap tracing)
    for i in range(rounds):
        times["r1_single"].append(one_run(c1))
        times["r1_replicas"].append(replicas(c1, k))
        times["r1_bound"].append(one_run(wide(c1, k)))
        times["r4_sequential"].append(sum(one_run(c4, seed) for seed in range(k)))
        times["r4_replicas"].append(replicas(c4, k))
        times["r4_bound"].append(one_run(wide(c4, k)))
        print(f"round {i + 1}/{rounds}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()), flush=True)
    return summarise(times, {"r1": steps_r1, "r4": steps_r4}, k)


def summarise(times: dict[str, list[float]], steps: dict[str, int], k: int) -> dict:
    """Medians, and the ratios of each round (contenders of one round ran back to back, under
    the same load) with their median, which the targets are judged on."""
    med = {n: statistics.median(t) for n, t in times.items()}
    r1_ratios = [b / a for a, b in zip(times["r1_single"], times["r1_replicas"])]
    r4_speedups = [a / b for a, b in zip(times["r4_sequential"], times["r4_replicas"])]
    r1_ratio, r4_speedup = statistics.median(r1_ratios), statistics.median(r4_speedups)
    bound = {"r1_wall_ratio": statistics.median(b / a for a, b in zip(times["r1_single"], times["r1_bound"])),
             "r4_per_replica_speedup": statistics.median(a / b for a, b in zip(times["r4_sequential"],
                                                                               times["r4_bound"]))}
    return {
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "python": platform.python_version()},
        "k": k, "rounds": len(times["r1_single"]), "steps": steps, "times_s": times, "median_s": med,
        "r1_wall_ratio_per_round": r1_ratios, "r1_wall_ratio": r1_ratio, "r1_target": 3.0, "r1_met": r1_ratio <= 3.0,
        "r4_per_replica_speedup_per_round": r4_speedups, "r4_per_replica_speedup": r4_speedup, "r4_target": 2.0,
        "r4_met": r4_speedup >= 2.0, "bound": bound,
        "r1_steps_per_s": {"single": steps["r1"] / med["r1_single"], "replicas": steps["r1"] / med["r1_replicas"]},
        "r4_replica_steps_per_s": {"sequential": k * steps["r4"] / med["r4_sequential"],
                                   "batched": k * steps["r4"] / med["r4_replicas"]},
    }


def render(res: dict) -> str:
    med, k = res["median_s"], res["k"]
    rows = [
        ("R1: 1 run", f"{med['r1_single']:.2f}", "", ""),
        (f"R1: {k} replicas batched", f"{med['r1_replicas']:.2f}",
         f"{res['r1_wall_ratio']:.2f}x wall of one (median of rounds)",
         f"<= 3x: {'met' if res['r1_met'] else 'NOT met'}"),
        (f"R1 bound: 1 model, batch x{k}", f"{med['r1_bound']:.2f}", f"{res['bound']['r1_wall_ratio']:.2f}x", ""),
        (f"R4: {k} runs one after another", f"{med['r4_sequential']:.2f}", "", ""),
        (f"R4: {k} replicas batched", f"{med['r4_replicas']:.2f}",
         f"{res['r4_per_replica_speedup']:.2f}x per-replica throughput (median of rounds)",
         f">= 2x: {'met' if res['r4_met'] else 'NOT met'}"),
        (f"R4 bound: 1 model, batch x{k}", f"{med['r4_bound']:.2f}", f"{res['bound']['r4_per_replica_speedup']:.2f}x",
         ""),
    ]
    lines = ["| contender | median s | ratio | target |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    lines.append(f"\n{res['rounds']} interleaved rounds; R1 {res['steps']['r1']} steps, R4 {res['steps']['r4']} steps; "
                 f"torch {res['machine']['torch']}, {res['machine']['threads']} threads; ratios per round: R1 "
                 + ", ".join(f"{r:.2f}" for r in res["r1_wall_ratio_per_round"]) + "; R4 "
                 + ", ".join(f"{r:.2f}" for r in res["r4_per_replica_speedup_per_round"]))
    return "\n".join(lines)
