"""Faults a run survives: divergence keeps the last finite weights and writes valid JSON; a
metrics.jsonl cut short is repaired on resume; a full disk is one line naming the file; every
file is readable by others (0644)."""

from __future__ import annotations

import errno
import json
import math
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from toyformer.cli import main

DIVERGE = ["train", "reverse", "--set", "train.lr=1000", "--set", "train.steps=200", "--set", "eval.every=20",
           "--set", "eval.val_size=32", "--set", "eval.test_size=32", "--quiet", "--no-live-plot"]


def strict_json(text: str):
    """Parse JSON refusing NaN and Infinity (which Python's json accepts by default)."""
    def refuse(name):
        raise ValueError(f"bare {name} in JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    out = tmp_path_factory.mktemp("diverged") / "d"
    return out, main([*DIVERGE, "--out", str(out), "--json"])


def test_divergence_stops_with_exit_3_and_one_line_naming_the_step(tmp_path, capsys):
    code = main([*DIVERGE, "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip().splitlines()
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    step = summary["diverged"]["step"]
    assert code == 3 and len(err) == 1
    assert f"at step {step}" in err[0] and "train.lr=1000" in err[0]
    assert summary["steps"] < 200  # stopped at the first evaluation after the bad step, not at the end


def test_a_diverged_run_keeps_finite_weights_and_valid_json(diverged):
    out, code = diverged
    assert code == 3
    for name in ("summary.json", "config.json"):
        strict_json((out / name).read_text())
    for line in (out / "metrics.jsonl").read_text().splitlines():
        strict_json(line)
    summary = strict_json((out / "summary.json").read_text())
    assert summary["diverged"]["weights_from_step"] < summary["diverged"]["step"]
    assert summary["diagnosis"][0]["symptom"] == "diverged"
    for name in ("model.safetensors", "checkpoint.safetensors"):
        tensors = load_file(str(out / name))
        assert all(torch.isfinite(t).all() for k, t in tensors.items() if t.is_floating_point()), name


@pytest.mark.parametrize("argv", [["eval", "{d}"], ["report", "{d}"], ["plot", "{d}", "--what", "embeddings"],
                                  ["plot", "{d}"], ["explain", "{d}", "-n", "32"]])
def test_every_reader_handles_a_diverged_run(diverged, argv, capsys):
    out, _ = diverged
    assert main([a.format(d=out) for a in argv]) == 0, capsys.readouterr().err


def test_resuming_a_diverged_run_says_so_again(diverged, capsys):
    out, _ = diverged
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 3
    assert "diverged" in capsys.readouterr().err


def test_a_replica_that_diverges_stops_alone(tmp_path, capsys):
    """Replica 1's learning rate is too large: it stops at its last finite weights, replica 0
    trains on to its end, and the run exits 3 naming the replica."""
    code = main(["train", "reverse", "--replicas", "2", "--replica-set", "lr=3e-3,1000", "--out", str(tmp_path / "r"),
                 "--set", "train.steps=60", "--set", "eval.every=20", "--set", "eval.val_size=32",
                 "--set", "eval.test_size=32", "--set", "train.warmup_steps=0", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and "replica 1" in err[0]
    summaries = [json.loads((tmp_path / "r" / "replicas" / str(i) / "summary.json").read_text()) for i in (0, 1)]
    assert "diverged" not in summaries[0] and summaries[0]["steps"] == 60
    assert summaries[1]["diverged"]["step"] <= 20 and math.isfinite(summaries[1]["test_loss"])


def test_a_cut_metrics_line_is_repaired_on_resume(tmp_path):
    from toyformer import train
    from conftest import small_config

    cfg = small_config(train={"steps": 60}, eval={"every": 20})
    whole = train(cfg, out_dir=tmp_path / "whole")

    class Stop(Exception):
        pass

    def stop_at_40(record):
        if record["step"] == 40:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, out_dir=tmp_path / "cut", on_eval=stop_at_40)
    log = tmp_path / "cut" / "metrics.jsonl"
    log.write_text(log.read_text()[:-25])  # the last line cut short, as by a kill mid-write without atomic writes
    assert main(["plot", str(tmp_path / "cut")]) == 0  # readers leave the damaged last line out
    train(None, out_dir=tmp_path / "cut", resume=True)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [r["step"] for r in whole.metrics] == [20, 40, 60]


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    from safetensors import torch as st

    def full(tensors, filename, metadata=None):
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(st, "save_file", full)
    from toyformer.run import checkpoint

    monkeypatch.setattr(checkpoint, "save_file", full)
    code = main(["train", "reverse", "--out", str(tmp_path / "run"), "--set", "train.steps=10", "--set", "eval.every=5",
                 "--set", "eval.val_size=16", "--set", "eval.test_size=16", "--quiet", "--no-live-plot"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0] and "checkpoint" in err[0]
    assert not list((tmp_path / "run").glob(".*.tmp"))  # no half-written temporary file left behind


def test_every_file_of_a_run_is_readable_by_others(tmp_path):
    assert main(["train", "reverse", "--out", str(tmp_path / "run"), "--set", "train.steps=10", "--set", "eval.every=5",
                 "--set", "eval.val_size=16", "--set", "eval.test_size=16", "--quiet"]) == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in Path(tmp_path / "run").iterdir()
             if p.is_file() and p.name != ".lock"}
    assert "model.safetensors" in modes and set(modes.values()) == {0o644}, modes
