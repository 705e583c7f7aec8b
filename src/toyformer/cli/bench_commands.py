"""``toyformer bench throughput|peak|time-to-solve|all [options]``: the benchmarks of the
repository (``python -m benchmarks``, which lives next to ``src/``), run from its root.
``toyformer bench throughput --help`` lists the options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toyformer.errors import ConfigError


def register(sub) -> None:
    b = sub.add_parser("bench", help="run the benchmarks (from the repository root): throughput, peak, time-to-solve")
    b.add_argument("what", choices=["throughput", "peak", "time-to-solve", "all"])
    b.add_argument("args", nargs=argparse.REMAINDER, help="options of `python -m benchmarks` (WHAT --help lists them)")
    b.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    root = Path.cwd()
    if not (root / "benchmarks" / "__main__.py").is_file():
        raise ConfigError(f"no benchmarks/ package in {str(root)!r}; allowed: run `toyformer bench` from the "
                          f"toyformer repository root")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.__main__ import main

    try:
        return main([args.what, *args.args])
    except SystemExit as exc:  # argparse inside the benchmarks: --help (0) or a usage error (2)
        return int(exc.code or 0)
