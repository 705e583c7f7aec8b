"""Chaos: seeded random SIGKILL, SIGINT and SIGTERM at random times into a sweep and a tune that run
with two worker processes, each stop followed by the same command again (which resumes).

At the end, with both run to completion: the store's rows are exactly the finished runs (one
each), every run directory loads, and no process and no temporary file is left. A stop by
SIGINT or SIGTERM must also keep its own contract: exit 130 or 143 and one line, no traceback.
``TOYFORMER_CHAOS_N`` sets the number of stops (12 by default, a few minutes, so that CI runs it
on every change; ``TOYFORMER_CHAOS_N=50`` for the long run), ``TOYFORMER_CHAOS_SEED`` the seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from fault_harness import check_whole, tiny_spec
from test_interrupts import TINY, no_process_left, start
from toyformer import ResultsStore, load_run

pytestmark = pytest.mark.slow

N = int(os.environ.get("TOYFORMER_CHAOS_N", "12"))
SEED = int(os.environ.get("TOYFORMER_CHAOS_SEED", "0"))
SPEC = tiny_spec("chaos", steps=200, every=20, lengths=(3, 4, 5, 6), seeds=[0, 1])
SWEEP = ["sweep", "chaos.yaml", "--out", "sw", "--store", "s.sqlite", "--workers", "2", "--threads", "1", "--quiet"]
TUNE = ["tune", "reverse", *TINY, "--set", "train.steps=200", "--set", "eval.every=20", "--space", "space.yaml",
        "--budget-s", "900", "--trials", "4", "--trial-s", "60", "--workers", "2", "--threads", "1", "--out", "tn",
        "--store", "s.sqlite", "--quiet"]
SIGNALS = [signal.SIGKILL, signal.SIGINT, signal.SIGTERM]


def started(proc, out: Path, timeout: float = 120) -> None:
    """Wait until the command holds its directory's lock (its pid in ``OUT/.lock``): its work has
    begun, past torch's import (a signal while it starts: ``test_interrupts_at_start.py``)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if (out / ".lock").read_text().strip() == str(proc.pid):
                return
        except OSError:
            pass
        time.sleep(0.1)


def finish(proc, timeout: float) -> tuple[str, str]:
    """The command's output once it has ended; if it has not within ``timeout``, a failure that shows
    where every process of its group was: each is aborted, and Python's fault handler
    (``PYTHONFAULTHANDLER``, set for the whole group) prints the stack of each of its threads."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        left = subprocess.run(["ps", "-o", "pid,ppid,stat,args", "-g", str(proc.pid)], capture_output=True, text=True)
        os.killpg(proc.pid, signal.SIGABRT)
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"{proc.args[3:]} still running after {timeout:.0f} s; its processes:\n{left.stdout}\n"
                    f"their stacks:\n{err[-20000:]}")


def test_random_kills_and_interrupts_lose_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")  # a command that hangs shows where (``finish``)
    rng = random.Random(SEED)
    (tmp_path / "chaos.yaml").write_text(yaml.safe_dump(SPEC))
    (tmp_path / "space.yaml").write_text(yaml.safe_dump({"space": {"train.lr": {"log": [1e-3, 3e-2]}}}))
    stops = {s: 0 for s in SIGNALS}
    for i in range(N):
        argv = SWEEP if i % 2 == 0 else TUNE
        out_dir, began = tmp_path / argv[argv.index("--out") + 1], time.time()
        proc = start(argv, tmp_path)
        started(proc, out_dir)
        time.sleep(rng.uniform(0.0, 8.0))
        sig = rng.choice(SIGNALS)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)  # the whole group, as a terminal's Ctrl-C (SIGKILL: every process at once)
            stops[sig] += 1
        out, err = finish(proc, 600)
        if proc.returncode == -sig and not err.strip() and sig != signal.SIGKILL:  # Python's default handler:
            result = out_dir / ("sweep.json" if argv[0] == "sweep" else "tune.json")  # only as it exits, work done
            assert result.is_file() and result.stat().st_mtime >= began, f"stop {i}: killed by {sig.name} mid-work"
        elif sig != signal.SIGKILL and proc.returncode != 0 and proc.returncode != 128 + sig:
            pytest.fail(f"stop {i} ({argv[0]}, {sig.name}): exit {proc.returncode}: {err[-3000:]}")
        if proc.returncode == 128 + sig:
            lines = [x for x in err.splitlines() if x.startswith("toyformer: ")]
            assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("toyformer: interrupted"), err
        no_process_left(proc)
    for argv in (SWEEP, TUNE):  # both, to the end
        proc = start(argv, tmp_path)
        out, err = finish(proc, 1800)
        assert proc.returncode == 0, err[-3000:]
        no_process_left(proc)

    check_whole(tmp_path)  # no temporary file; every file whole; every row a finished run
    run_dirs = [p.parent for p in tmp_path.rglob("config.json")]
    for run_dir in run_dirs:  # every run directory loads: a finished one its weights, any other its checkpoint
        if (run_dir / "model.safetensors").is_file() or (run_dir / "checkpoint.safetensors").is_file():
            load_run(run_dir, device="cpu")
    finished = [d for d in run_dirs if (d / "summary.json").is_file()]
    store = ResultsStore(tmp_path / "s.sqlite")
    keys = sorted((r["run_dir"], r["replica"]) for r in store.query())
    assert keys == sorted((str(d.resolve()), 0) for d in finished), "the store's rows are not the finished runs"
    assert store.sync(tmp_path) == 0
    assert len(list((tmp_path / "sw" / "runs").iterdir())) == 8
    assert stops[signal.SIGKILL] and stops[signal.SIGINT] and stops[signal.SIGTERM], stops
