"""``toyformer bench WHAT [options]``: the benchmarks (``toyformer.bench``: ``WHAT`` is one of
``toyformer.bench.main.BENCHMARKS`` or ``all``); ``toyformer bench throughput --help`` lists the options."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    b = sub.add_parser("bench", help="run the benchmarks: throughput, peak, time-to-solve, replicas, kernels, race, "
                                     "ui, explain, explain-truth, chomsky, portable, hold, levers, diagnose")
    b.add_argument("what", choices=["throughput", "peak", "time-to-solve", "replicas", "kernels", "race", "ui",
                                    "explain", "explain-truth", "chomsky", "portable", "hold", "levers", "diagnose",
                                    "all"])
    b.add_argument("args", nargs=argparse.REMAINDER, help="options of the benchmarks (WHAT --help lists them)")
    b.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from toyformer.bench.main import main

    try:
        return main([args.what, *args.args])
    except SystemExit as exc:  # argparse inside the benchmarks: --help (0) or a usage error (2)
        return int(exc.code or 0)
