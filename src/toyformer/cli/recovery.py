"""What a stopped command kept, and the exact command that goes on: the one line printed after
Ctrl-C, SIGTERM or a failed write (a full or read-only disk).

::

    toyformer: interrupted at step 37; the checkpoint of step 30 is in runs/x; go on with: toyformer train
      --resume --out runs/x
    toyformer: error: 'runs/x/checkpoint.safetensors': No space left on device; the checkpoint of step 30 is in
      runs/x; free some space, then go on with: toyformer train --resume --out runs/x

(each message is one line, wrapped here)

A run goes on with ``train --resume``; a sweep, a tune and a recipe go on by running the same
command again (they skip what finished and continue what started); any other command is simply
run again. What was kept is read from the disk after the stop (the checkpoint's step from its
metadata, the finished run directories), never assumed.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from toyformer import faults
from toyformer.interrupts import Interrupted

LOOP = "toyformer.training.loop"  # the training loop's frame holds the step it was at


def interrupted(args, argv: list[str] | None, exc: BaseException) -> str:
    """The line after a signal: where it stopped, what was kept, how to go on (without the prefix)."""
    step = _step_at(exc)
    first = "interrupted" + (f" at step {step}" if step is not None else "")
    kept, go_on = _kept(args, argv)
    return "; ".join(p for p in (first, kept, f"go on with: {go_on}") if p)


def failed(args, argv: list[str] | None, exc: OSError) -> str:
    """The line after a failed write: the path meant and the reason, and, when the command had
    kept work to go on from, what it kept and how to go on once the cause is fixed."""
    kept, go_on = _kept(args, argv)
    parts = [faults.describe(exc)]
    if kept:
        parts += [kept, f"{faults.remedy(exc)}, then go on with: {go_on}"]
    return "; ".join(parts)


def code(exc: BaseException) -> int:
    """The exit code of a stop by a signal: 130 for SIGINT, 143 for SIGTERM."""
    return exc.code if isinstance(exc, Interrupted) else 130


def _kept(args, argv) -> tuple[str | None, str]:
    again = "toyformer " + shlex.join(sys.argv[1:] if argv is None else argv)
    what = KEPT.get(getattr(args, "command", ""))
    if what is None:
        return None, again
    try:
        kept, go_on = what(args)
    except Exception:  # noqa: BLE001 - a damaged directory: the line still names the command
        return None, again
    return kept, go_on or again


def _train(args) -> tuple[str | None, str | None]:
    from toyformer.run.checkpoint import saved_step
    from toyformer.run.directory import holds_run

    out = Path(args.out) if args.out else None
    if out is None or not holds_run(out):
        return None, None  # nothing of a run was written: the same command starts it
    go_on = ["toyformer", "train", "--resume", "--out", str(out)]
    if getattr(args, "no_store", False):
        go_on.append("--no-store")
    elif args.store:
        go_on += ["--store", str(args.store)]
    if args.device:
        go_on += ["--device", args.device]
    if (out / "summary.json").is_file():
        return f"the run finished in {out}", shlex.join(go_on)  # stopped while recording it: --resume records it
    step = saved_step(out / "checkpoint.safetensors")
    kept = (f"the checkpoint of step {step} is in {out}" if step is not None
            else f"{out} holds no checkpoint yet (the first is written at the first evaluation)")
    return kept, shlex.join(go_on)


def _finished(folder: Path) -> int:
    return sum(1 for p in folder.glob("*/summary.json")) if folder.is_dir() else 0


def _sweep(args) -> tuple[str | None, str | None]:
    from toyformer.experiments.sweeps.spec import load_sweep

    spec = load_sweep(args.spec).with_replicas(args.replicas)
    out = Path(args.out or Path("runs/sweeps") / spec.name)
    return f"{_finished(out / 'runs')} of {len(spec.expand())} points finished in {out}", None


def _tune(args) -> tuple[str | None, str | None]:
    from toyformer.cli.run_commands import config_from_args

    base = config_from_args(args)
    out = Path(args.out or Path("runs/tune") / f"{base.task.name}-{base.layout}")
    return f"{_finished(out / 'trials')} trial(s) finished in {out} (the study is {out / 'study.sqlite'})", None


def _recipe(args) -> tuple[str | None, str | None]:
    out = Path(args.out or f"runs/recipes/{args.name}{'-quick' if args.quick else ''}")
    return f"{_finished(out / 'runs')} run(s) finished in {out / 'runs'}", None


KEPT = {"train": _train, "sweep": _sweep, "tune": _tune, "recipe": _recipe}


def _step_at(exc: BaseException) -> int | None:
    """The step the training loop had reached when ``exc`` went through it (read from the loop's
    frame in the traceback), or None when it did not stop inside training."""
    tb, step = exc.__traceback__, None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals.get("__name__") == LOOP and frame.f_code.co_name == "fit":
            value = frame.f_locals.get("step")
            step = value if isinstance(value, int) else step
        tb = tb.tb_next
    return step
