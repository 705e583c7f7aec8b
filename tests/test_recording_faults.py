"""Nothing is lost from the results store: a process SIGKILLed between writing a run's
``summary.json`` and recording it leaves a finished run without its row; ``train --resume``, a
re-run sweep and ``results --sync`` each record it, exactly once."""

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from toyformer import ResultsStore
from toyformer.cli import main

# The fault: the child records through ResultsStore._insert, and dies at its n-th call.
CHILD = """
import os, signal, sys
from toyformer.experiments.store.store import ResultsStore

calls, real = [0], ResultsStore._insert
def insert(self, row):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT_INSERT"]):
        os.kill(os.getpid(), signal.SIGKILL)  # summary.json is written; the row is not
    return real(self, row)
ResultsStore._insert = insert

from toyformer.cli import main
sys.exit(main(sys.argv[1:]))
"""
TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--set", "model.d_ff=32",
        "--set", "length=4", "--set", "steps=6", "--set", "eval.every=3", "--set", "eval.val_size=16",
        "--set", "eval.test_size=16", "--set", "data.batch_size=16"]
SPEC = {"name": "killed", "base": {"task": {"name": "reverse", "length": 4},
                                   "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
                                   "data": {"batch_size": 16}, "train": {"steps": 6, "warmup_steps": 1},
                                   "eval": {"every": 3, "val_size": 16, "test_size": 16, "target": None}},
        "grid": {"task.length": [3, 4]}}


def killed_at_insert(n, argv, tmp_path):
    """Run ``toyformer ARGV`` in a child that SIGKILLs itself at its n-th store insert."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(script), *argv], env={**os.environ, "KILL_AT_INSERT": str(n)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def rows(store):
    return ResultsStore(store).query()


def keys(store):
    return sorted((r["run_dir"], r["replica"]) for r in rows(store))


@pytest.mark.parametrize("recover", ["resume", "sync"])
def test_a_run_killed_before_recording_is_recorded_once(tmp_path, capsys, recover):
    out, store = tmp_path / "runs" / "r", tmp_path / "r.sqlite"
    killed_at_insert(1, ["train", "reverse", *TINY, "--out", str(out), "--store", str(store), "--quiet",
                         "--no-live-plot"], tmp_path)
    assert (out / "summary.json").is_file() and rows(store) == []
    resume = ["train", "--resume", "--out", str(out), "--store", str(store), "--quiet", "--no-live-plot"]
    sync = ["results", "--sync", str(tmp_path / "runs"), "--store", str(store)]
    assert main(resume if recover == "resume" else sync) == 0
    (row,) = rows(store)
    summary = json.loads((out / "summary.json").read_text())
    assert row["run_dir"] == str(out.resolve()) and row["test_token_acc"] == summary["test_token_acc"]
    capsys.readouterr()
    for again in (resume, sync, resume):  # every way of recording it, again: the row stays, alone
        assert main(again) == 0
    assert rows(store) == [row]
    assert "added 0 run(s)" in capsys.readouterr().out


def test_a_replica_run_killed_after_its_first_row_gets_every_row_once(tmp_path):
    out, store = tmp_path / "rep", tmp_path / "r.sqlite"
    killed_at_insert(2, ["train", "reverse", *TINY, "--replicas", "3", "--out", str(out), "--store", str(store),
                         "--quiet", "--no-live-plot"], tmp_path)
    (first,) = rows(store)  # 1 of 3 rows
    assert (out / "summary.json").is_file() and first["replica"] == 0
    assert main(["train", "--resume", "--out", str(out), "--store", str(store), "--quiet"]) == 0
    assert keys(store) == [(str((out / "replicas" / str(i)).resolve()), i) for i in range(3)]
    assert rows(store)[0] == first  # the row that was there was not rewritten
    summary = json.loads((out / "summary.json").read_text())
    assert [r["test_token_acc"] for r in rows(store)] == [r["test_token_acc"] for r in summary["replicas"]]
    assert ResultsStore(store).sync(tmp_path) == 0


def test_a_sweep_killed_before_recording_a_point_records_it_when_run_again(tmp_path, capsys):
    spec, out, store = tmp_path / "killed.yaml", tmp_path / "sw", tmp_path / "r.sqlite"
    spec.write_text(yaml.safe_dump(SPEC))
    argv = ["sweep", str(spec), "--out", str(out), "--store", str(store), "--quiet"]
    killed_at_insert(2, argv, tmp_path)  # the first point recorded, the second trained and not recorded
    assert len(rows(store)) == 1 and all((p / "summary.json").is_file() for p in (out / "runs").iterdir())
    assert main(argv + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["counts"]["done"] == 2
    assert [(r["sweep"], r["point"]) for r in rows(store)] == [("killed", "length=3,seed=0"),
                                                                ("killed", "length=4,seed=0")]
    assert ResultsStore(store).sync(out) == 0 and len(rows(store)) == 2


def test_a_point_synced_before_its_sweep_ran_again_becomes_the_sweeps(tmp_path, capsys):
    spec, out, store = tmp_path / "killed.yaml", tmp_path / "sw", tmp_path / "r.sqlite"
    spec.write_text(yaml.safe_dump(SPEC))
    argv = ["sweep", str(spec), "--out", str(out), "--store", str(store), "--quiet"]
    killed_at_insert(1, argv, tmp_path)  # killed after the first point, before sweep.json was ever written
    assert main(["results", "--sync", str(tmp_path), "--store", str(store)]) == 0
    assert "added 1 run(s)" in capsys.readouterr().out
    (synced,) = rows(store)
    assert (synced["source"], synced["sweep"]) == ("sync", None)  # no sweep.json yet: whose it is, is unknown
    assert main(argv) == 0  # trains the second point; the first becomes the sweep's row, not a second one
    assert [(r["source"], r["sweep"], r["point"]) for r in rows(store)] == [
        ("sweep", "killed", "length=3,seed=0"), ("sweep", "killed", "length=4,seed=0")]
    assert ResultsStore(store).sync(tmp_path) == 0
