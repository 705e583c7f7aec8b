"""One writer per directory: a second process on a run or sweep directory is refused in one line
naming the holder's pid, and writes nothing; a dead holder leaves nothing locked."""

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from toyformer import ConfigError
from toyformer.cli import main
from toyformer.run.lock import LOCK, DirectoryLocked, hold

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock")

SLOW = {"task": {"name": "reverse", "length": 4}, "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
        "data": {"batch_size": 16}, "train": {"steps": 1_000_000, "warmup_steps": 1},
        "eval": {"every": 20, "val_size": 16, "test_size": 16, "target": None}}


def test_a_held_directory_is_refused_with_the_holders_pid(tmp_path):
    with hold(tmp_path):
        assert (tmp_path / LOCK).read_text() == f"{os.getpid()}\n"
        with pytest.raises(DirectoryLocked, match=rf"run directory '{tmp_path}' is being written by process "
                                                  rf"{os.getpid()}; wait for it to finish or stop it"):
            with hold(tmp_path):
                pass
    assert (tmp_path / LOCK).read_text() == ""  # released, and no stale pid left behind
    with hold(tmp_path, "sweep directory"):
        pass
    assert issubclass(DirectoryLocked, ConfigError)  # the CLI prints it on one line and exits 2


def start(argv, tmp_path, wait_for):
    """``toyformer ARGV`` in a child process, once ``wait_for`` exists (it holds its lock by then)."""
    proc = subprocess.Popen([sys.executable, "-m", "toyformer", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not wait_for.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "the child never started training"
        time.sleep(0.05)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def refused(argv, capsys, *names):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is being written by process" in err, err
    for name in names:
        assert name in err, err
    return err


def test_resume_while_another_process_trains_the_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    (tmp_path / "slow.yaml").write_text(yaml.safe_dump(SLOW))
    proc = start(["train", "--config", str(tmp_path / "slow.yaml"), "--out", str(out), "--no-store", "--quiet",
                  "--no-live-plot"], tmp_path, out / "config.json")
    try:
        refused(["train", "--resume", "--out", str(out), "--no-store", "--quiet"], capsys,
                f"run directory '{out}'", f"process {proc.pid};")
        assert (out / LOCK).read_text() == f"{proc.pid}\n"  # the holder's lock is untouched
        assert main(["train", "--config", str(tmp_path / "slow.yaml"), "--out", str(out)]) == 2
        assert "already holds a run; pass --resume to continue it or choose another --out" in capsys.readouterr().err
    finally:
        stop(proc)
    assert not (out / "summary.json").exists()


def test_a_second_sweep_or_a_resume_of_its_point_is_refused(tmp_path, capsys):
    spec, out = tmp_path / "slow.yaml", tmp_path / "sw"
    spec.write_text(yaml.safe_dump({"base": SLOW, "grid": {"task.length": [3, 4]}}))
    point = out / "runs" / "length=3,seed=0"
    proc = start(["sweep", str(spec), "--out", str(out), "--store", str(tmp_path / "first.sqlite"), "--quiet"],
                 tmp_path, point / "config.json")
    try:
        refused(["sweep", str(spec), "--out", str(out), "--store", str(tmp_path / "second.sqlite"), "--quiet"],
                capsys, f"sweep directory '{out}'", f"process {proc.pid};")
        assert not (tmp_path / "second.sqlite").exists()  # the second sweep wrote nothing
        assert sorted(p.name for p in out.iterdir()) == [LOCK, "runs"]
        refused(["train", "--resume", "--out", str(point), "--no-store", "--quiet"], capsys,
                f"run directory '{point}'", f"process {proc.pid};")  # an in-process sweep trains its points itself
    finally:
        stop(proc)
    # the holder died: its locks went with it, and the sweep directory is free again
    with hold(out, "sweep directory"), hold(point):
        pass
