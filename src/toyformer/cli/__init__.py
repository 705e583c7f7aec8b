"""The command line: a thin layer over the Python API. ``main(argv) -> exit code``.

Each command family lives in its own module with ``register(subparsers)``, which adds its
sub-commands and sets ``func`` on them. Exit codes: 0 done; 2 bad input (one line
``toyformer: error: ...`` on stderr naming the bad value and the allowed ones, nothing written)
or a failed write (a full or read-only disk: one line naming the file meant and the reason, what
was kept and the command that goes on; whichever library beneath raised it, ``toyformer.faults``);
3 a run diverged (its loss became NaN or infinite; one line says where, the run keeps its last
finite weights); 1 a sweep with failed points; 130 and 143 stopped by Ctrl-C (SIGINT) or SIGTERM
at a safe point (one line: where, what was kept, the command that goes on; ``cli.recovery``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from toyformer.cli import (bench_commands, decode_commands, diagnose_commands, explain_commands, inspect_commands,
                           recipe_commands, run_commands, sweep_commands, tune_commands, ui_commands)
from toyformer.cli import recovery
from toyformer.cli.args import Parser
from toyformer import faults, interrupts, numerics
from toyformer.errors import ConfigError, as_flags
from toyformer.numerics import NotPinned

COMMAND_MODULES = [run_commands, decode_commands, inspect_commands, explain_commands, diagnose_commands,
                   recipe_commands,
                   sweep_commands, tune_commands, ui_commands, bench_commands]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="toyformer", description="Train small transformers on algorithmic tasks.")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return p


def add_task_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task-file", action="append", default=[], help="a Python file registering tasks")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    with interrupts.installed():  # Ctrl-C and SIGTERM stop at a safe point (never inside a write)
        try:
            return _run(args, argv)
        except KeyboardInterrupt as exc:  # interrupts.Interrupted, or one raised by a library
            print(f"toyformer: {recovery.interrupted(args, argv, exc)}", file=sys.stderr)
            return recovery.code(exc)


def _run(args, argv: list[str] | None) -> int:
    try:
        from toyformer.tasks import load_task_file

        for path in getattr(args, "task_file", []):
            load_task_file(path)
        return args.func(args)
    except NotPinned as exc:  # train.portable=true: the code paths are pinned when the process starts
        if os.environ.get(RESTARTED):
            return error(str(exc))
        return restart_pinned(argv)
    except ConfigError as exc:
        return error(str(exc))
    except Exception as exc:  # a path that cannot be written or read: /proc, a parent that is a file, a full disk
        failed = faults.io_error(exc)  # whichever library raised it: OSError, SafetensorError, sqlite3, Optuna
        if failed is None:
            raise
        return error(recovery.failed(args, argv, failed))


RESTARTED = "TOYFORMER_PINNED_RESTART"


def restart_pinned(argv: list[str] | None) -> int:
    """Run the same command again in a process started with the portable mode's environment:
    in place of this one from a shell (``argv`` None), as a child when called from Python."""
    env = {**os.environ, **numerics.PORTABLE_ENV, RESTARTED: "1"}
    command = [sys.executable, "-m", "toyformer", *(sys.argv[1:] if argv is None else argv)]
    print(f"toyformer: train.portable=true: restarting with {numerics.shell_line()}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if argv is None:
        os.execve(sys.executable, command, env)
    return subprocess.call(command, env=env)


def error(message: str) -> int:
    """Print the one-line error of the bad-input contract, the API's argument names turned into
    the flags that set them (``args.as_flags``); returns its exit code, 2."""
    print(f"toyformer: error: {' '.join(as_flags(message).split())}", file=sys.stderr)
    return 2
