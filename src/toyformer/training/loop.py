"""The one training loop, for a single run and for K replicas alike.

Step, count, and every ``eval.every`` steps (and at the end, or when ``train.max_time_s`` runs
out): read the training metrics, validate each replica still training, stop the ones that reached
their target (time-to-solve is recorded), and with a run directory write the checkpoint and each
replica's ``metrics.jsonl``. The step itself is a ``steps.SingleStep`` or ``steps.ReplicaStep``.

With ``train.keep_checkpoints=log`` the weights of every replica still training are also kept
at log-spaced steps (``checkpoint.log_steps``: the initialisation, then
``train.checkpoints_per_decade`` per decade) in ``RUN_DIR/checkpoints/step_000100.safetensors``,
weights only, so a run can be explained at any step (``toyformer explain --over-training``);
their writing is not counted in ``wall_s``.

Divergence: a training loss that is NaN or infinite stops that replica at the next evaluation
(no host sync per step: the accumulator notes the first bad step on the device). Its weights go
back to those of its last evaluation (the last finite ones; a replica that diverged before its
first evaluation goes back to its initialisation), and its state records ``diverged_at_step``
(the first step whose loss was not finite). The checkpoint and every file stay finite: when the
last training replica diverges the checkpoint is not written again, and a replica that diverges
while others train on is saved with its last finite weights and zeroed optimiser moments (it
never steps again).

The loop state (JSON, in the checkpoint's metadata) is ``state.LoopState``; the step it drives
is any ``steps.Stepper``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import cast

import torch

from toyformer.eval import evaluate_config, public, solved
from toyformer.files import write_jsonl
from toyformer.run import Run, checkpoint
from toyformer.training.optim import lr_at
from toyformer.training.state import LoopState, ReplicaState, fresh_state
from toyformer.training.steps import Stepper

CHECKPOINT = "checkpoint.safetensors"


def progress_bar(total: int, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=quiet or not sys.stderr.isatty(), leave=False, unit="step")


def save(path: Path, stepper: Stepper, state: LoopState) -> None:
    """The checkpoint: the stepper's tensors, the RNG states and the loop state."""
    tensors = stepper.tensors()
    tensors["rng.torch"] = torch.get_rng_state()
    dev = stepper.runs[0].device
    if dev.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(dev)
    tensors.update({f"rng.data.{i}": g.get_state() for i, g in enumerate(stepper.generators)})
    checkpoint.save_training(path, tensors, state)


def restore(path: Path, stepper: Stepper) -> LoopState:
    """Continue from the checkpoint at ``path`` (either format); returns the loop state."""
    tensors, state = checkpoint.read_training(path, stepper.param_order())
    stepper.restore(tensors)
    torch.set_rng_state(tensors["rng.torch"])
    dev = stepper.runs[0].device
    if "rng.cuda" in tensors and dev.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], dev)
    for i, g in enumerate(stepper.generators):
        g.set_state(tensors[f"rng.data.{i}"])
    for s in state["replicas"]:  # keys that older checkpoints lack
        s.setdefault("diverged_at_step", None)
        s.setdefault("held", 0)
        s.setdefault("evidence", None)
    return cast(LoopState, state)


def run_dir_of(run: Run) -> Path:
    """The directory of a run the loop writes (``fit(out=...)`` sets every run's)."""
    assert run.run_dir is not None, "a run written to disk has its directory"
    return run.run_dir


def judge(run: Run, val: dict, s: ReplicaState, record: dict) -> None:
    """Count this evaluation towards the solve (``eval/solved.py``): ``s["held"]`` confirming
    evaluations in a row, the last one's evidence in ``s["evidence"]`` and in the record."""
    evidence = solved.confirm(val, run.splits, run.config,
                              lambda ex: evaluate_config(run.model, ex, run.config, run.device))
    target = run.config.eval.target
    confirmed = evidence is not None and target is not None and solved.allowed(evidence, target)
    s["held"] = s["held"] + 1 if confirmed else 0
    s["evidence"] = None if evidence is None else evidence.to_dict()
    if evidence is not None:
        record["confirm_n"], record["confirm_errors"] = evidence.n, evidence.errors


def keep_weights(stepper: Stepper, step: int, active: torch.Tensor) -> None:
    """Each training replica's weights at ``step`` into its run's ``checkpoints/`` (weights only)."""
    for i, run in enumerate(stepper.runs):
        if bool(active[i]):
            stepper.load_into(i, run.model)
            path = checkpoint.kept_path(run_dir_of(run), step)
            path.parent.mkdir(exist_ok=True)
            checkpoint.save_weights(path, run.model, {"step": step})


def fit(stepper: Stepper, quiet: bool = True, on_eval: Callable[[int, dict], None] | None = None,
        resume: bool = False, out: Path | None = None) -> LoopState:
    """Train ``stepper.runs`` to the end; with ``out`` checkpoint there and write each run's
    ``metrics.jsonl`` (into ``run.run_dir``). ``on_eval(i, record)`` is called after each
    evaluation of replica ``i`` (its time is not counted in ``wall_s``). Returns the loop state;
    each run's model then holds its final weights and ``run.metrics`` its history."""
    runs, k = stepper.runs, stepper.k
    dev, total = runs[0].device, stepper.total
    cfg = runs[0].config
    ckpt = out / CHECKPOINT if out is not None else None
    resumed = resume and ckpt is not None and ckpt.is_file()
    state = restore(ckpt, stepper) if resumed and ckpt is not None else fresh_state(k)
    reps = state["replicas"]
    for run, s in zip(runs, reps):
        run.metrics = s["history"]
        if resumed:  # the checkpoint's history is the record: a metrics.jsonl cut short by a kill is repaired
            write_jsonl(run_dir_of(run) / "metrics.jsonl", s["history"])
    step, wall_before = state["step"], state["wall_s"]
    active = torch.tensor([s["stopped"] is None for s in reps], device=dev)  # [K]
    max_s = cfg.train.max_time_s
    bar = progress_bar(total, quiet)
    bar.update(step)
    t0 = time.perf_counter()
    for run in runs:
        run.model.train()
    stepper.snapshot(list(range(k)))
    keep = set()
    if out is not None and cfg.train.keep_checkpoints == "log":
        keep = set(checkpoint.log_steps(total, cfg.train.checkpoints_per_decade))
        if step == 0:
            keep_weights(stepper, 0, active)
    stop = step >= total or not bool(active.any()) or (max_s is not None and wall_before >= max_s)
    while not stop:
        stepper.step(step, active)
        step += 1
        bar.update(1)
        if step in keep:  # its time is not training time
            t_keep = time.perf_counter()
            keep_weights(stepper, step, active)
            t0 += time.perf_counter() - t_keep
        wall = wall_before + time.perf_counter() - t0
        out_of_time = max_s is not None and wall >= max_s
        if step % cfg.eval.every and step < total and not out_of_time:
            continue
        train = stepper.acc.read()
        diverged = stepper.acc.diverged()
        finite = []
        for i in active.nonzero().flatten().tolist():
            s, run = reps[i], runs[i]
            if diverged[i] is not None:  # back to the weights of the last evaluation, the last finite ones
                stepper.rollback(i)
                s["diverged_at_step"] = diverged[i] + 1
                s["stopped"], s["wall_s"] = step, round(wall, 3)
                active[i] = False
                continue
            finite.append(i)
            stepper.load_into(i, run.model)
            record = {"step": step, "wall_s": round(wall, 3), "lr": lr_at(step - 1, total, run.config.train),
                      **train[i]}
            val = evaluate_config(run.model, run.splits.val, run.config, dev)
            record.update(public(val, "val"))
            if run.config.eval.target is not None and s["solved_at_step"] is None:
                judge(run, val, s, record)
            wall = wall_before + time.perf_counter() - t0
            if s["held"] >= run.config.eval.hold and s["solved_at_step"] is None:
                s["solved_at_step"], s["solved_at_s"] = step, round(wall, 3)
            s["history"].append(record)
            if k == 1:
                bar.set_postfix(loss=f"{record['train_loss']:.3f}", val=f"{val[run.config.eval.target_metric]:.3f}")
            if s["solved_at_step"] is not None or step >= total or out_of_time:
                s["stopped"], s["wall_s"] = step, round(wall, 3)
                active[i] = False
        stepper.snapshot(finite)
        stop = not bool(active.any()) or step >= total or out_of_time
        state["step"], state["wall_s"] = step, wall
        ended_diverging = not bool(active.any()) and any(d is not None for d in diverged)
        if out is not None and ckpt is not None:
            if not ended_diverging:  # else the checkpoint on disk stays the last finite one
                save(ckpt, stepper, state)
            for run, s in zip(runs, reps):
                write_jsonl(run_dir_of(run) / "metrics.jsonl", s["history"])
        if on_eval is not None:  # its time is not training time: keep it out of wall_s
            t_callback = time.perf_counter()
            for i in finite:
                on_eval(i, reps[i]["history"][-1])
            t0 += time.perf_counter() - t_callback
    bar.close()
    for i, (run, s) in enumerate(zip(runs, reps)):
        if s["stopped"] is None:  # resumed after the last evaluation of a run that had ended
            s["stopped"], s["wall_s"] = state["step"], round(state["wall_s"], 3)
        stepper.load_into(i, run.model)
    return state
