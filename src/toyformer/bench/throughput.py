"""Training throughput: toyformer against plain PyTorch, and against the machine's limit.

**Ratios.** For the models of R0, R1 and R4 toyformer's training loop (``SingleStep``, the step
``toyformer.train`` runs: batch drawn, formatted, forward, backward, clip, AdamW, metrics) and
the plain-PyTorch baseline of the same model (``benchmarks/baselines.py``: per-sample
``Dataset`` + ``DataLoader``, ``nn.TransformerEncoder`` / ``nn.Transformer``, Adam) are
measured in the same process, interleaved: after a warm-up each round times a fixed number of
steps of every contender in turn; the medians over the rounds are reported and their ratio.
Samples/s counts training examples per second, data generation included.

**Machine limit.** A tagger on ``reverse`` of length 64 (d_model 256, 4 layers, batch 256)
trains while the matmul peak of the machine is measured in the same run; the analytic model
FLOPs of a step (``benchmarks/flops.py``) per second of step time, as a share of that peak.

**Knobs.** ``train.precision=bf16`` and ``train.compile=true`` are contenders of their own on
R4's model and on the machine-limit model; ``train.compile=true`` also on R1's.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from toyformer.bench.baselines import BASELINES, Baseline
from toyformer.bench.flops import training_flops
from toyformer.bench.peak import peak_gflops
from toyformer.config import RunConfig
from toyformer.data import format_batch
from toyformer.experiments.recipes import r0, r1, r4
from toyformer.run import build
from toyformer.training import SingleStep


@dataclass(frozen=True)
class Case:
    """A reference model: toyformer's config of it, and the baseline that writes it by hand."""

    name: str
    model: str
    config: dict
    overrides: tuple[str, ...]
    steps: int  # per round and contender
    target: float | None  # required toyformer / PyTorch ratio


CASES = {
    "r0": Case("r0", "R0 as described: 12 post-LN layers, d 32, ff 2048, flatten + MLP head, batch 32",
               r0.ORIGINAL, (), 6, None),
    # nn.TransformerEncoderLayer's defaults (post-norm, ReLU), where R1's description names none
    "r1": Case("r1", "R1: causal decoder-only, 2 layers, d 16, padded, batch 300",
               r1.PADDED, ("model.n_layers=2", "model.norm=post", "model.activation=relu"), 60, 2.0),
    "r4": Case("r4", "R4: encoder-decoder 2+2, d 64, ff 64, sinusoidal, 10,000 fixed formulas, batch 125",
               r4.ORIGINAL, ("model.positional=sinusoidal",), 40, 3.0),
}
KNOBS = {"fp32": [], "bf16": ["train.precision=bf16"], "compile": ["train.compile=true"]}
# the machine-limit model: sequence 64, batch 256, d_model 256, 4 layers
LIMIT = {
    "task": {"name": "reverse", "length": 64},
    "model": {"d_model": 256, "n_heads": 8, "n_layers": 4, "d_ff": 1024},
    "data": {"batch_size": 256},
}
QUICK_LIMIT = {"task": {"name": "reverse", "length": 16},
               "model": {"d_model": 32, "n_heads": 2, "n_layers": 1, "d_ff": 64}, "data": {"batch_size": 8}}
# the run never evaluates inside the timed steps: small held-out sets keep the set-up short
BENCH = ["train.steps=1000000", "train.epochs=none", "train.max_time_s=none", "eval.target=none",
         "eval.val_size=64", "eval.test_size=64", "seed=0"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ToyformerRunner:
    """``train_steps(n)``: ``n`` steps of toyformer's training loop; returns the samples seen."""

    def __init__(self, config: RunConfig, device: str):
        self.run = build(config, device)
        self.run.model.train()
        self.stepper = SingleStep(self.run)
        self.step = 0

    def train_steps(self, n: int) -> int:
        samples = 0
        for _ in range(n):
            samples += self.stepper.step(self.step)
            self.step += 1
        _sync(self.run.device)
        return samples


class DataOnly:
    """The data pipeline of a contender alone: ``train_steps(n)`` draws ``n`` batches, trains on
    none (toyformer: ``SingleStep.batch``; the baseline: its ``DataLoader``)."""

    def __init__(self, contender):
        self.contender, self.step = contender, 0

    def train_steps(self, n: int) -> int:
        samples = 0
        for _ in range(n):
            if isinstance(self.contender, ToyformerRunner):
                samples += len(self.contender.stepper.batch(self.step).labels)
            else:
                samples += len(self.contender.next_batch()[0])
            self.step += 1
        return samples


def data_only(device: str, steps: int, rounds: int, cases=tuple(CASES)) -> dict:
    """Samples/s of the data pipelines alone, per case: what vectorised batches save at most."""
    out = {}
    for name in cases:
        case = CASES[name]
        contenders = {"toyformer": DataOnly(ToyformerRunner(toyformer_config(case.config, case.overrides), device)),
                      "pytorch": DataOnly(BASELINES[name](seed=0, device=device))}
        r = race(contenders, steps, rounds, 1)
        out[name] = {k: v["samples_per_s"] for k, v in r.items()}
    return out


def toyformer_config(base: dict, overrides) -> RunConfig:
    return RunConfig.from_dict(base).with_overrides([*BENCH, *overrides])


def race(contenders: dict, steps: int, rounds: int, warmup: int) -> dict:
    """Interleaved rounds: every contender runs ``steps`` steps per round, in turn. Returns per
    contender the median samples/s and seconds per step, and the per-round samples/s."""
    for runner in contenders.values():
        runner.train_steps(warmup)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    step_s: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, runner in contenders.items():
            t0 = time.perf_counter()
            samples = runner.train_steps(steps)
            dt = time.perf_counter() - t0
            rates[name].append(samples / dt)
            step_s[name].append(dt / steps)
    return {name: {"samples_per_s": statistics.median(rates[name]), "step_s": statistics.median(step_s[name]),
                   "rounds_samples_per_s": rates[name]} for name in contenders}


def compare(case: Case, device: str, rounds: int, warmup: int, steps: int | None = None,
            knobs: tuple[str, ...] = ("fp32",)) -> dict:
    """toyformer (one contender per knob) against the plain-PyTorch baseline on ``case``."""
    contenders: dict[str, ToyformerRunner | Baseline] = {
        f"toyformer {k}": ToyformerRunner(toyformer_config(case.config, [*case.overrides, *KNOBS[k]]), device)
        for k in knobs}
    contenders["pytorch"] = BASELINES[case.name](seed=0, device=device)
    result = race(contenders, steps or case.steps, rounds, warmup)
    base = result["pytorch"]["samples_per_s"]
    for r in result.values():
        r["ratio_vs_pytorch"] = r["samples_per_s"] / base
    return {"case": case.name, "model": case.model, "target_ratio": case.target, "rounds": rounds,
            "steps_per_round": steps or case.steps, "contenders": result}


def machine_limit(device: str, rounds: int, warmup: int, steps: int, knobs: tuple[str, ...] = ("fp32",),
                  quick: bool = False, peak_n: int = 2048) -> dict:
    """Achieved model FLOP/s of the machine-limit model against the matmul peak, per knob.

    Peak and model are interleaved: every round measures the float32 and bfloat16 peaks (best of
    3), then times ``steps`` steps of each contender, so that a busy machine slows both alike.
    The fraction is the median over rounds of (achieved / that round's float32 peak)."""
    base = QUICK_LIMIT if quick else LIMIT
    contenders = {k: ToyformerRunner(toyformer_config(base, KNOBS[k]), device) for k in knobs}
    first = next(iter(contenders.values()))
    cfg = first.run.config
    ex = first.stepper.data.batch(0)
    flops = training_flops(cfg, format_batch(ex, cfg.layout, cfg.data.sep), len(first.run.task.vocab))
    n, repeats = (256, 2) if quick else (peak_n, 3)
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for runner in contenders.values():
        runner.train_steps(warmup)
    peaks, peaks_bf16 = [], []
    per_round: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(rounds):
        peaks.append(peak_gflops(n, repeats, device))
        peaks_bf16.append(peak_gflops(n, repeats, device, torch.bfloat16))
        for name, runner in contenders.items():
            t0 = time.perf_counter()
            runner.train_steps(steps)
            per_round[name].append((time.perf_counter() - t0) / steps)
    result = {}
    for name, times in per_round.items():
        fractions = [flops / t / 1e9 / p["gflops"] for t, p in zip(times, peaks)]
        step_s = statistics.median(times)
        result[name] = {"step_s": step_s, "samples_per_s": cfg.data.batch_size / step_s, "gflops": flops / step_s / 1e9,
                        "fraction_of_peak": statistics.median(fractions), "rounds_fraction": fractions,
                        "rounds_step_s": times}
    best = lambda ps: max(ps, key=lambda p: p["gflops"])  # noqa: E731
    return {"config": cfg.to_dict(), "train_flops_per_step": flops, "peak": best(peaks), "peak_bf16": best(peaks_bf16),
            "rounds_peak_gflops": [p["gflops"] for p in peaks], "contenders": result,
            "target_fraction": None if quick else 0.4,
            "cuda_max_memory_allocated_mib": (torch.cuda.max_memory_allocated() / 2**20
                                              if torch.device(device).type == "cuda" else None),
            "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_throughput(device: str = "cpu", quick: bool = False, cases=tuple(CASES), knobs: bool = True,
                   compile_knob: bool = True) -> dict:
    """The whole throughput benchmark: machine limit first (the largest model: its memory is the
    process peak), then the R0/R1/R4 comparisons. ``quick`` never compiles (slow to start)."""
    rounds, warmup = (1, 1) if quick else (3, 3)
    limit_knobs = ("fp32", *(("bf16",) if knobs else ()), *(("compile",
                                                             ) if knobs and compile_knob and not quick else ()))
    case_knobs = {"r0": ("fp32",), "r1": tuple(k for k in limit_knobs if k != "bf16"), "r4": limit_knobs}
    out: dict[str, Any] = {"device": device, "threads": torch.get_num_threads(), "quick": quick}
    out["machine_limit"] = machine_limit(device, rounds, 1, 1 if not quick else 2, limit_knobs, quick)
    out["data_only"] = data_only(device, 2 if quick else 20, rounds)
    out["comparisons"] = {}
    for name in cases:
        case = CASES[name]
        steps = 2 if quick else None
        out["comparisons"][name] = compare(case, device, rounds, warmup if not quick else 1, steps, case_knobs[name])
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def table_rows(result: dict) -> list[list]:
    """One row per contender (columns: ``HEADER``). The share of the peak is given twice: the
    median over rounds against the peak measured in the same round, and the median achieved
    GFLOP/s against the best peak of any round (the conservative one on a busy machine)."""
    rows = []
    limit = result["machine_limit"]
    batch = limit["config"]["data"]["batch_size"]
    for name, r in limit["contenders"].items():
        rows.append(["machine limit (d 256, 4 layers, seq 64, batch 256)", f"toyformer {name}",
                     batch / r["step_s"], None, r["gflops"], 100 * r["fraction_of_peak"],
                     100 * r["gflops"] / limit["peak"]["gflops"],
                     ">= 40% of peak" if limit["target_fraction"] else None])
    for comp in result["comparisons"].values():
        for name, r in comp["contenders"].items():
            target = f">= {comp['target_ratio']:g}x" if comp["target_ratio"] and name == "toyformer fp32" else None
            rows.append([comp["model"], name, r["samples_per_s"], r["ratio_vs_pytorch"], None, None, None, target])
    for name, r in result.get("data_only", {}).items():
        rows.append([f"{name.upper()} data pipeline alone (no training)", "toyformer batches", r["toyformer"],
                     r["toyformer"] / r["pytorch"], None, None, None, None])
        rows.append([f"{name.upper()} data pipeline alone (no training)", "pytorch Dataset + DataLoader", r["pytorch"],
                     1.0, None, None, None, None])
    return rows


HEADER = ["benchmark", "contender", "samples/s", "x PyTorch", "GFLOP/s", "% of fp32 peak (same round)",
          "% of best fp32 peak", "target"]


def run(args) -> dict:
    """``python -m benchmarks throughput``."""
    return run_throughput(args.device, args.quick, knobs=True, compile_knob=not args.no_compile)


def render(result: dict) -> str:
    """One markdown table of every contender."""
    limit = result["machine_limit"]
    fmt = lambda v: "-" if v is None else (f"{v:,.1f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["### Training throughput", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table_rows(result)]
    lines += ["", f"Device {result['device']}, {result['threads']} torch threads; matmul peak "
              f"{limit['peak']['gflops']:.1f} GFLOP/s float32, {limit['peak_bf16']['gflops']:.1f} bfloat16 "
              f"(n={limit['peak']['n']}, best over rounds; per round: "
              f"{', '.join(f'{g:.1f}' for g in limit['rounds_peak_gflops'])}); a training step of the machine-limit "
              f"model is {limit['train_flops_per_step'] / 1e9:.1f} GFLOP (3x forward, matmuls only). Peak RSS "
              f"{result['peak_rss_mib']:.0f} MiB"
              + (f", CUDA max allocated {limit['cuda_max_memory_allocated_mib']:.0f} MiB" if
                 limit["cuda_max_memory_allocated_mib"] is not None else "")
              + f". Medians of {next(iter(result['comparisons'].values()))['rounds']} interleaved rounds."]
    return "\n".join(lines)
