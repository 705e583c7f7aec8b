"""Golden runs: short runs, one per layout (and one replica run), whose weights and metrics must
stay bit-for-bit what they were when ``tests/golden/runs.json`` was recorded, on any x86-64 CPU.

A refactoring of the training loop, the models or the data path must not change a single bit of
what a run computes. The digest is the sha256 of the tensors of ``model.safetensors`` (names,
dtypes, shapes and bytes, in name order), so that a new key in the config stored in the file's
metadata does not count as a change.

What it promises: the runs are made in a child process started with the portable mode's pinned
code paths (``toyformer.numerics.PORTABLE_ENV``: ATen's DEFAULT kernels, MKL's COMPATIBLE branch,
oneDNN's SSE4.1 kernels, one thread), which every x86-64 CPU takes alike; so the record holds on
any x86-64 machine, whatever code path the test process itself runs, and a change of one bit
fails wherever it is made. Other CPUs (ARM) and other devices round differently: skipped there.

Re-record (only for an intended change of the numbers, and say why in the commit)::

    python tests/test_golden.py --record
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from conftest import small_config  # noqa: E402
from toyformer import numerics, train, train_replicas  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "runs.json"

CASES = {
    "classifier": dict(task="count_ones", model={"dropout": 0.1}),
    "tagger": dict(task="reverse"),
    "causal": dict(task="reverse", layout="causal", model={"positional": "rope"}),
    "seq2seq": dict(task={"name": "arithmetic", "complexity": 1}, layout="seq2seq", model={"positional": "alibi"}),
    "masked": dict(task="reverse", layout="masked", data={"batch_size": 32, "train_size": 200}),
}
TIMES = ("wall_s", "solved_at_s")
MACHINE = ("machine", "device")


def tensor_digest(path: Path) -> str:
    """sha256 over the tensors of a safetensors file: name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name, t in sorted(load_file(str(path)).items()):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def timeless(obj):
    """``obj`` without wall-clock times and machine facts (the only things allowed to differ), and
    with the diagnosis as its symptoms (its sentences are worded by ``eval.diagnosis``; what is
    diagnosed follows from the numbers)."""
    if isinstance(obj, dict):
        return {k: [f["symptom"] for f in v] if k == "diagnosis" else timeless(v)
                for k, v in obj.items() if k not in TIMES + MACHINE}
    if isinstance(obj, list):
        return [timeless(v) for v in obj]
    return obj


def read_run(run_dir: Path) -> dict:
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"weights": tensor_digest(run_dir / "model.safetensors"), "metrics": timeless(metrics),
            "summary": timeless(summary)}


def golden_run(name: str, out: Path) -> dict:
    if name == "replicas":
        train_replicas(small_config("reverse", data={"batch_size": 16, "train_size": 100}), k=2, out_dir=out)
        return {str(i): read_run(out / "replicas" / str(i)) for i in range(2)}
    case = dict(CASES[name])
    train(small_config(case.pop("task"), **case), out_dir=out)
    return read_run(out)


NAMES = [*CASES, "replicas"]
LEGACY = Path(__file__).parent / "golden" / "legacy"


def legacy_run(name: str, out: Path) -> dict:
    """``tests/golden/legacy``: the "classifier" run and the replica run killed after step 40 by
    the version before the one checkpoint format (made under the pinned code paths); resumed now,
    they must end as the golden runs end."""
    import shutil

    shutil.copytree(LEGACY / ("single" if name == "classifier" else "replicas"), out)
    if name == "replicas":
        train_replicas(None, out_dir=out, resume=True)
        return {str(i): read_run(out / "replicas" / str(i)) for i in range(2)}
    train(None, out_dir=out, resume=True)
    return read_run(out)


def emit(path: Path) -> None:
    """Every golden case and legacy resume, made in this process, into ``path`` (JSON)."""
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        record = {name: golden_run(name, Path(tmp) / name) for name in NAMES}
        legacy = {name: legacy_run(name, Path(tmp) / "legacy" / name) for name in ("classifier", "replicas")}
    path.write_text(json.dumps({"runs": record, "legacy": legacy, "code_path": numerics.code_path()}))


def pinned_child(path: Path) -> dict:
    """``emit`` in a child process started with the portable mode's pinned code paths."""
    env = {**os.environ, **numerics.PORTABLE_ENV}
    done = subprocess.run([sys.executable, __file__, "--emit", str(path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(path.read_text())


x86_only = pytest.mark.skipif(platform.machine() not in numerics.X86,
                              reason="the golden record is of the x86-64 pinned code paths")


@pytest.fixture(scope="module")
def pinned(tmp_path_factory):
    return pinned_child(tmp_path_factory.mktemp("golden") / "emitted.json")


@x86_only
def test_the_child_ran_on_the_pinned_code_paths(pinned):
    assert pinned["code_path"]["portable"] and pinned["code_path"]["cpu_capability"] == "DEFAULT"


@x86_only
@pytest.mark.parametrize("name", NAMES)
def test_runs_are_bit_identical_to_the_golden_record(pinned, name):
    expected = json.loads(GOLDEN.read_text())[name]
    assert pinned["runs"][name] == expected


@x86_only
@pytest.mark.parametrize("name", ["classifier", "replicas"])
def test_checkpoints_of_the_old_format_resume_to_the_golden_result(pinned, name):
    expected = json.loads(GOLDEN.read_text())[name]
    assert pinned["legacy"][name] == expected


if __name__ == "__main__" and sys.argv[1:2] == ["--emit"]:
    emit(Path(sys.argv[2]))
elif __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        runs = pinned_child(Path(tmp) / "emitted.json")["runs"]
    GOLDEN.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
