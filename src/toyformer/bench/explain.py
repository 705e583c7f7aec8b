"""``toyformer bench explain [--quick] [--tasks a,b]``: how long ``toyformer explain`` takes, and
what the hook points cost.

**Analysis time.** Every task's default configuration (its default layout and model; every task
but the Chomsky suite's, which ``bench chomsky`` measures; ``--tasks`` names any) is trained
briefly (``STEPS`` steps: the model has its default size, the weights need not be good), then
``toyformer.explain.explain`` runs its fast preset on the run directory. The target: at most
``TARGET_S`` seconds of analysis per task (roles, ablations, groups, probes, logit lens; loading
the run is timed apart). Then the circuits of ``explain --circuit`` (``toyformer.explain.circuit``,
every ablation, the fast preset's examples) are timed on the same run: target ``CIRCUIT_S``
seconds for the whole ``explain --circuit`` (the fast preset's analysis plus the circuits).

**Hook points.** Training steps (``SingleStep``: batch, forward, backward, AdamW) of R1's
2-layer model, R4's model and the default reverse tagger, interleaved over rounds, medians:
with no hook attached (how every run trains) and with a no-op hook on every point but the
attention patterns (the machinery in use; a pattern hook also switches attention to its explicit
kernel, which ``toyformer bench kernels`` times). An idle hook point costs one attribute test per activation; the bound
on that cost is the number of points times the measured time of the test, as a share of a step.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import timeit
from pathlib import Path

import torch

from toyformer.config import RunConfig
from toyformer.experiments.recipes import r1, r4
from toyformer.explain import explain
from toyformer.explain.circuit import circuit
from toyformer.models.hookpoints import Hook, hook_names, hooks
from toyformer.run import build
from toyformer.tasks import list_tasks, task_class
from toyformer.training import SingleStep, train

STEPS = 100
TARGET_S = 30.0
CIRCUIT_S = 120.0
HOOKED = {"R1 (2 layers, padded)": (r1.PADDED, ["model.n_layers=2"]),
          "R4 (sinusoidal)": (r4.ORIGINAL, ["model.positional=sinusoidal", "train.epochs=none"]),
          "reverse (defaults)": ({"task": {"name": "reverse"}}, [])}
BENCH = ["train.steps=100000", "eval.val_size=64", "eval.test_size=64", "eval.target=none", "seed=0"]


def _analysis(tasks: list[str], quick: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in tasks:
            steps = 3 if quick else STEPS
            cfg = RunConfig.from_dict({"task": {"name": name}}).with_overrides(
                [f"train.steps={steps}", f"eval.every={steps}", "eval.target=none"])
            out = Path(tmp) / name
            run = train(cfg, out_dir=out)
            t0 = time.perf_counter()
            res = explain(out, n=32 if quick else None, write=False)
            wall = time.perf_counter() - t0
            t = res["timings"]
            t0 = time.perf_counter()
            c = circuit(run, n=32 if quick else 512)
            circuit_s = time.perf_counter() - t0
            rows.append({"task": name, "layout": cfg.layout, "params": run.summary["params"],
                         "load_s": t["load_s"], "analysis_s": t["analysis_s"], "wall_s": wall,
                         **{k: t[f"{k}_s"] for k in ("roles", "ablation", "groups", "probes", "lens", "dla")},
                         "met": t["analysis_s"] <= TARGET_S, "circuit_s": circuit_s,
                         "circuit_passes": [c["cost"]["forward"], c["cost"]["backward"]], "edges": len(c["edges"]),
                         "with_circuit_s": t["analysis_s"] + circuit_s,
                         "met_circuit": t["analysis_s"] + circuit_s <= CIRCUIT_S})
            print(f"{name}: {t['analysis_s']:.2f} s of analysis, circuits {circuit_s:.2f} s", flush=True)
    return rows


def _step_times(steps: int, rounds: int) -> list[dict]:
    cases = []
    for label, (base, overrides) in HOOKED.items():
        stepper = SingleStep(build(RunConfig.from_dict(base).with_overrides(overrides + BENCH)))
        model = stepper.runs[0].model
        # every point but the patterns (a pattern hook switches attention to its explicit path: another kernel)
        noop: dict[str, Hook | list[Hook]] = {n: (lambda x, name: None) for n in hook_names(model)
                                              if not n.endswith(".pattern")}
        for s in range(3):
            stepper.step(s)
        cases.append((label, stepper, noop, len(hook_names(model))))
    times: dict[str, dict[str, list[float]]] = {label: {"idle": [], "hooked": []} for label, *_ in cases}
    for r in range(rounds):
        for label, stepper, noop, _ in cases:
            for kind in ("idle", "hooked") if r % 2 == 0 else ("hooked", "idle"):  # neither always goes first
                t0 = time.perf_counter()
                if kind == "idle":
                    for s in range(steps):
                        stepper.step(s)
                else:
                    with hooks(stepper.runs[0].model, noop):
                        for s in range(steps):
                            stepper.step(s)
                times[label][kind].append((time.perf_counter() - t0) / steps)
    check = _check_cost()
    rows = []
    for label, _, _, points in cases:
        idle, hooked = (statistics.median(times[label][k]) for k in ("idle", "hooked"))
        fastest = {k: min(times[label][k]) for k in ("idle", "hooked")}  # the least disturbed round of each
        rows.append({"model": label, "points": points, "idle_ms": idle * 1e3, "hooked_ms": hooked * 1e3,
                     "hooked_ratio": hooked / idle, "hooked_ratio_min": fastest["hooked"] / fastest["idle"],
                     "idle_bound_share": points * check / idle,
                     "per_round_ms": {k: [t * 1e3 for t in v] for k, v in times[label].items()}})
    return rows


def _check_cost() -> float:
    """Seconds of one idle hook point: an ``is not None`` test of a module attribute."""
    m = torch.nn.Linear(1, 1)
    m.tap = None  # type: ignore[assignment]  # torch types Module.__setattr__ for tensors and modules only
    n = 200_000
    empty = timeit.timeit("pass", number=n)
    return max(0.0, (timeit.timeit("m.tap is not None", globals={"m": m}, number=n) - empty) / n)


def run(args) -> dict:
    suite = {t for t in list_tasks() if task_class(t).__module__.startswith("toyformer.tasks.chomsky.")}
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else sorted(set(list_tasks()) - suite)
    load_before = os.getloadavg()[0]
    rows = _analysis(tasks, args.quick)
    hooked = _step_times(2 if args.quick else 20, 1 if args.quick else 9)
    return {"steps_trained": 3 if args.quick else STEPS, "examples": 32 if args.quick else 512, "target_s": TARGET_S,
            "circuit_target_s": CIRCUIT_S, "tasks": rows, "hooks": hooked, "all_met": all(r["met"] for r in rows),
            "all_met_circuit": all(r["met_circuit"] for r in rows),
            "load_average": [load_before, os.getloadavg()[0]]}


def render(res: dict) -> str:
    c_target = res.get("circuit_target_s", 120.0)
    lines = ["| task | layout | parameters | load s | roles s | ablation s | groups s | probes s | lens + DLA s | "
             f"analysis s | <= {res['target_s']:.0f} s | edges | circuit passes f/b | circuits s | with circuits s | "
             f"<= {c_target:.0f} s |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["tasks"]:
        lines.append(f"| {r['task']} | {r['layout']} | {r['params']:,} | {r['load_s']:.2f} | {r['roles']:.2f} | "
                     f"{r['ablation']:.2f} | {r.get('groups', 0.0):.2f} | {r['probes']:.2f} | "
                     f"{r['lens'] + r['dla']:.2f} | {r['analysis_s']:.2f} | {'met' if r['met'] else 'NOT met'} | "
                     f"{r.get('edges', '—')} | {'/'.join(map(str, r.get('circuit_passes', ['—'])))} | "
                     f"{r.get('circuit_s', float('nan')):.2f} | {r.get('with_circuit_s', float('nan')):.2f} | "
                     f"{'met' if r.get('met_circuit') else 'NOT met'} |")
    n = res.get("examples", 512)
    lines.append(f"\nEach task's default model after {res['steps_trained']} training steps; the fast preset of "
                 f"`toyformer explain` (up to {n} test and {n} validation examples; fewer where the task has fewer), "
                 "and the circuits `explain --circuit` adds (every ablation, the same examples; passes over all of "
                 "them).\n")
    lines += ["| model | hook points | step ms, no hook | step ms, no-op hooks | ratio | ratio of fastest "
              "rounds | idle points, bound |", "|---|---|---|---|---|---|---|"]
    for h in res["hooks"]:
        lines.append(f"| {h['model']} | {h['points']} | {h['idle_ms']:.3f} | {h['hooked_ms']:.3f} | "
                     f"{h['hooked_ratio']:.3f}x | {h.get('hooked_ratio_min', float('nan')):.3f}x | "
                     f"{h['idle_bound_share']:.2%} of a step |")
    lines.append("\nTraining steps, medians of interleaved rounds (and the ratio of each contender's fastest round, "
                 "the least disturbed by other work); the no-op hooks sit on every point but the attention patterns. "
                 "The bound: hook points x the measured cost of one idle test (`tap is not None`) per forward, as a "
                 "share of the step with no hook.")
    if res.get("load_average"):
        before, after = res["load_average"]
        lines.append(f"\nLoad average of the machine (1 minute) at the start and the end: {before:.2f}, {after:.2f} "
                     "(above the benchmark's own 1.0, other processes shared the cores and the times are upper "
                     "bounds).")
    return "\n".join(lines)
