"""Worker processes: they die with the sweep that started them (SIGKILL included), they leave
cleanly when it stops (and are killed if a job never reaches a safe point), and with equal torch
thread counts they give the bits an in-process sweep gives."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from toyformer import sweep
from toyformer.experiments.sweeps import executors

SLOW = {"task": {"name": "reverse", "length": 4}, "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
        "data": {"batch_size": 16}, "train": {"steps": 1_000_000, "warmup_steps": 1},
        "eval": {"every": 20, "val_size": 16, "test_size": 16, "target": None}}


def session_processes(sid: int) -> dict[int, str]:
    """pid -> command line of every live (not zombie) process of session ``sid``, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            state, _ppid, _pgrp, session = stat[stat.rindex(")") + 2:].split()[:4]
            if int(session) == sid and state != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
        except (OSError, ValueError):  # gone meanwhile
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver workers and /proc")
def test_killing_the_sweep_kills_its_forkserver_and_workers(tmp_path):
    spec, out = tmp_path / "slow.yaml", tmp_path / "sw"
    spec.write_text(yaml.safe_dump({"base": SLOW, "grid": {"task.length": [3, 4]}}))
    proc = subprocess.Popen([sys.executable, "-m", "toyformer", "sweep", str(spec), "--workers", "2", "--out", str(out),
                             "--store", str(tmp_path / "r.sqlite"), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        points = [out / "runs" / f"length={n},seed=0" / "checkpoint.safetensors" for n in (3, 4)]
        deadline = time.time() + 120
        while not all(p.exists() for p in points):  # both workers are training
            assert proc.poll() is None and time.time() < deadline, "the sweep never started both points"
            time.sleep(0.1)
        started = session_processes(proc.pid)
        assert len(started) >= 4, started  # the sweep, the forkserver, two workers (and a resource tracker)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while session_processes(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert session_processes(proc.pid) == {}, f"survived the sweep: {session_processes(proc.pid)}"
        assert not any((p.parent / "summary.json").exists() for p in points)
    finally:  # never leave them running, even when the test fails: the whole session is this test's
        if session_processes(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_worker_processes_are_bit_identical_to_in_process_at_equal_threads(tmp_path):
    spec = {"name": "bits", "base": {**SLOW, "train": {"steps": 12, "warmup_steps": 2}},
            "grid": {"task.length": [3, 4]}}
    here = sweep(spec, out=tmp_path / "a", store=None, threads=2)
    there = sweep(spec, out=tmp_path / "b", workers=2, store=None, threads=2)
    assert there.executor == "2 local processes, 2 torch thread(s) each"
    for a, b in zip(here.points, there.points):
        assert (a.run_dir / "model.safetensors").read_bytes() == (b.run_dir / "model.safetensors").read_bytes()
        lines = lambda p: [{k: v for k, v in json.loads(line).items() if k != "wall_s"}  # noqa: E731
                           for line in (p.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert lines(a) == lines(b)
        assert {k: v for k, v in a.summary.items() if "wall" not in k and k != "diagnosis"} == \
               {k: v for k, v in b.summary.items() if "wall" not in k and k != "diagnosis"}


def quick() -> str:
    return "done"


def long_job(ready: str) -> str:
    """A minute of sleeps: a safe point at every one."""
    Path(ready).touch()
    for _ in range(1200):
        time.sleep(0.05)
    return "done"


def stubborn_job(ready: str) -> str:
    """A job that never reaches a safe point: SIGTERM ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(ready).touch()
    time.sleep(120)
    return "done"


def stop_after_first(monkeypatch, tmp_path: Path, second) -> tuple[list, float]:
    """Two workers run ``quick`` and ``second``; once ``quick`` has finished (its worker idle) and
    ``second`` has begun, the sweep stops (Ctrl-C at the yield). Returns the workers (their exit
    codes) and the seconds the stop took."""
    workers, stop, ready = [], executors._stop_workers, tmp_path / "ready"

    def watch(pool):  # the real stop, noting the workers it stops
        workers.extend(pool._processes.values())
        return stop(pool)

    monkeypatch.setattr(executors, "_stop_workers", watch)
    jobs = [{"fn": quick}, {"fn": second, "ready": str(ready)}]
    results = executors.Processes(2, threads=1).run(call, jobs)
    assert next(results) == (0, "done", None)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert time.monotonic() < deadline, "the second job never began"
        time.sleep(0.05)
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        results.throw(KeyboardInterrupt())
    return workers, time.monotonic() - began


def call(fn, **kwargs):
    """A job (a module-level function, as a worker unpickles it) that runs ``fn``."""
    return fn(**kwargs)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver workers")
def test_a_stopped_sweep_lets_its_idle_worker_leave_cleanly(monkeypatch, tmp_path):
    """An idle worker told to stop leaves when its pool shuts down (exit 0), never at the signal:
    dying there can leave the pool's queue lock held, so that the other worker, its job stopped,
    waits for that lock forever, and the sweep waits for it."""
    workers, took = stop_after_first(monkeypatch, tmp_path, long_job)
    assert [w.exitcode for w in workers] == [0, 0]
    assert took < executors.STOP_GRACE_S


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver workers")
def test_a_worker_that_never_reaches_a_safe_point_is_killed_after_the_grace(monkeypatch, tmp_path):
    monkeypatch.setattr(executors, "STOP_GRACE_S", 1.0)
    workers, took = stop_after_first(monkeypatch, tmp_path, stubborn_job)
    assert [w.exitcode for w in workers] == [-signal.SIGKILL] * 2  # the idle one waited for the job's end too
    assert 1.0 <= took < 60
