"""Each recipe's ``--quick`` run, made once per test session and read by several tests."""

import contextlib
import io

from toyformer.cli import main

_RUNS: dict = {}


def quick_run(name: str, tmp_path_factory) -> tuple[int, object, str]:
    """``(exit code, recipe directory, stdout)`` of ``toyformer recipe NAME --quick --json``."""
    if name not in _RUNS:
        out = tmp_path_factory.mktemp(f"quick-{name}") / name
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = main(["recipe", name, "--quick", "--out", str(out), "--json"])
        _RUNS[name] = (code, out, stdout.getvalue())
    return _RUNS[name]
