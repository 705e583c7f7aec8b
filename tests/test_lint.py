"""The linter and the type checker pass on the tree, with the settings of ``pyproject.toml``
(``[tool.ruff]``, ``[tool.mypy]``), so that ``make test`` and CI fail on a new finding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing():
    pytest.importorskip("ruff")  # the dev extra
    proc = _run("ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_finds_nothing():
    pytest.importorskip("mypy")  # the dev extra
    proc = _run("mypy")  # what it checks: [tool.mypy] files (its cache, .mypy_cache/, is ignored by git)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout
