"""Golden runs: short runs, one per layout (and one replica run), whose weights and metrics must
stay bit-for-bit what they were when ``tests/golden/runs.json`` was recorded.

A refactoring of the training loop, the models or the data path must not change a single bit of
what a run computes. The digest is the sha256 of the tensors of ``model.safetensors`` (names,
dtypes, shapes and bytes, in name order), so that a new key in the config stored in the file's
metadata does not count as a change. CPU only: other devices round differently.

Re-record (only for an intended change of the numbers, and say why in the commit)::

    python tests/test_golden.py --record
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from conftest import small_config  # noqa: E402
from toyformer import train, train_replicas  # noqa: E402

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


@pytest.mark.skipif(not GOLDEN.is_file(), reason="no golden file recorded")
@pytest.mark.parametrize("name", NAMES)
def test_runs_are_bit_identical_to_the_golden_record(tmp_path, name):
    torch.set_num_threads(1)
    expected = timeless(json.loads(GOLDEN.read_text())[name])
    assert golden_run(name, tmp_path / name) == expected


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        record = {name: golden_run(name, Path(tmp) / name) for name in NAMES}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


@pytest.mark.skipif(not GOLDEN.is_file(), reason="no golden file recorded")
@pytest.mark.parametrize("name", ["classifier", "replicas"])
def test_checkpoints_of_the_old_format_resume_to_the_golden_result(tmp_path, name):
    """``tests/golden/legacy``: the "classifier" run and the replica run killed after step 40 by
    the version before the one checkpoint format; resumed now, they end bit-identical."""
    import shutil

    torch.set_num_threads(1)
    legacy = Path(__file__).parent / "golden" / "legacy" / ("single" if name == "classifier" else "replicas")
    out = tmp_path / name
    shutil.copytree(legacy, out)
    expected = timeless(json.loads(GOLDEN.read_text())[name])
    if name == "replicas":
        train_replicas(None, out_dir=out, resume=True)
        assert {str(i): read_run(out / "replicas" / str(i)) for i in range(2)} == expected
    else:
        train(None, out_dir=out, resume=True)
        assert read_run(out) == expected
