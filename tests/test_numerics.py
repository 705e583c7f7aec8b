"""The portable mode (``train.portable=true``, ``toyformer.numerics``): refused where it cannot hold,
and a portable run started from an unpinned shell restarts pinned and repeats the golden record's
bits (which are those of the pinned code paths on any x86-64 CPU)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import small_config
from test_golden import GOLDEN, tensor_digest
from toyformer import ConfigError, RunConfig, numerics

UNPINNED = {k: v for k, v in os.environ.items() if k not in numerics.PORTABLE_ENV}
x86_only = pytest.mark.skipif(platform.machine() not in numerics.X86, reason="the portable mode is x86-64's")


def test_portable_refuses_compile_and_bf16():
    with pytest.raises(ConfigError, match="portable"):
        RunConfig.from_dict({"task": "reverse", "train": {"portable": True, "compile": True}})
    with pytest.raises(ConfigError, match="precision"):
        RunConfig.from_dict({"task": "reverse", "train": {"portable": True, "precision": "bf16"}})


def test_portable_refuses_a_gpu_and_names_the_device():
    with pytest.raises(ConfigError, match="'cuda'"):
        numerics.check(True, torch.device("cuda"))
    numerics.check(False, torch.device("cuda"))  # nothing to check when not asked


def test_pinned_threads_restores_the_process_settings():
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(2)
    try:
        with numerics.pinned_threads(True):
            assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (2, before[1])
    finally:
        torch.set_num_threads(before[0])


@x86_only
def test_the_python_api_refuses_portable_in_an_unpinned_process_with_the_line_to_use():
    code = ("import toyformer\n"
            "try:\n"
            "    toyformer.train(toyformer.RunConfig.from_dict({'task': 'reverse', 'train': {'portable': True}}))\n"
            "except toyformer.ConfigError as e:\n"
            "    print(type(e).__name__, e)\n")
    done = subprocess.run([sys.executable, "-c", code], env=UNPINNED, capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("NotPinned "), done.stdout + done.stderr
    assert "ATEN_CPU_CAPABILITY=(unset)" in done.stdout and numerics.shell_line() in done.stdout


@x86_only
def test_a_portable_cli_run_from_an_unpinned_shell_repeats_the_golden_bits(tmp_path):
    config = small_config("reverse").to_dict()  # the golden "tagger" case
    config["train"]["portable"] = True
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "toyformer", "train", "--config", str(tmp_path / "config.json"),
                           "--out", str(out), "--quiet", "--no-live-plot"],
                          env={**UNPINNED, "TOYFORMER_RESULTS": str(tmp_path / "r.sqlite")},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "restarting with ATEN_CPU_CAPABILITY=default" in done.stderr
    machine = json.loads((out / "summary.json").read_text())["machine"]
    assert machine["portable"] and machine["cpu_capability"] == "DEFAULT" and machine["threads"] == 1
    assert tensor_digest(Path(out) / "model.safetensors") == json.loads(GOLDEN.read_text())["tagger"]["weights"]
