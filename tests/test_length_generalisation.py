"""Length generalisation that must hold: addition trained on 1-10 digits adds 200-digit numbers, and
a decoder with a scratchpad trained on parity up to 40 bits answers at 100 and 150 bits.

Each model trains and is evaluated in a child process in the portable mode (``train.portable``:
pinned code paths, ``toyformer.numerics``), so it computes the same bits on every x86-64 machine
and the verdict does not depend on the CPU that runs the test. What the configurations reach on
five seeds natively is what ``toyformer recipe lengths --preset addition`` and ``toyformer bench
chomsky --schemes scratchpad`` measure. If a part of the mechanism breaks (the window over digit
places, the number embedding, the sinks, the coupling of symbols by index), these fail.
"""

import json
import os
import platform
import subprocess
import sys

import pytest
import yaml

from toyformer import numerics
from toyformer.experiments.recipes.long_addition import CONFIG

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(platform.machine() not in numerics.X86, reason="the portable mode is x86-64's")]


def pinned(tmp_path, *args: str) -> None:
    """``toyformer ARGS`` in a child process on the pinned code paths."""
    env = {**os.environ, **numerics.PORTABLE_ENV, "TOYFORMER_RESULTS": str(tmp_path / "results.sqlite")}
    done = subprocess.run([sys.executable, "-m", "toyformer", *args], env=env, capture_output=True, text=True,
                          timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]


def exact_match_at(tmp_path, run_dir, lengths: str, n: int) -> dict:
    pinned(tmp_path, "eval", str(run_dir), "--lengths", lengths, "-n", str(n))
    rows = json.loads((run_dir / "lengths.json").read_text())["rows"]
    return {r["length"]: r["exact_match"] for r in rows}


def test_addition_trained_on_10_digits_adds_200_digit_numbers(tmp_path):
    config = tmp_path / "addition.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    run = tmp_path / "add"
    pinned(tmp_path, "train", "--config", str(config), "--set", "train.portable=true", "--out", str(run),
           "--quiet", "--no-live-plot")
    em = exact_match_at(tmp_path, run, "10,200", 64)
    assert em[10] >= 0.95 and em[200] >= 0.95, em


def test_a_parity_scratchpad_trained_to_40_bits_runs_to_150(tmp_path):
    run = tmp_path / "parity"
    model = ["model.positional=relative", "model.symbol_positions=true", "model.relative_max_distance=3",
             "model.attention_window=1", "model.window_sink=true", "model.number_embedding=true"]
    sets = [x for kv in [*model, "data.min_length=1", "data.max_length=40", "data.length_sampling=curriculum",
                         "train.steps=1000", "eval.target=none", "train.portable=true"] for x in ("--set", kv)]
    pinned(tmp_path, "train", "scratchpad", "--set", "task.of=parity", *sets, "--out", str(run), "--quiet",
           "--no-live-plot")
    em = exact_match_at(tmp_path, run, "40,100,150", 32)  # every state and the answer right
    assert min(em.values()) >= 0.9, em
