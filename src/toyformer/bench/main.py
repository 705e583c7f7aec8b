"""``toyformer bench [WHAT] [--quick] [--device D] [--json] [--out FILE]``, ``WHAT`` one of ``BENCHMARKS``
(throughput, peak, time-to-solve, replicas, kernels, race, ui, explain, explain-truth, chomsky, portable, hold,
levers, diagnose) or ``all``.

Prints one table per benchmark and writes every number as JSON (default
``runs/benchmarks/<name>.json``; ``--out`` names the file); ``--markdown FILE`` also writes the
tables with the machine and the command, as the files in ``docs/results/`` are written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from toyformer.bench import (chomsky, diagnose, explain, explain_truth, hold, kernels, levers, machine, peak, portable,
                             race, replicas, throughput, time_to_solve, ui)
from toyformer.experiments.chomsky.protocol import DEFAULT_SCHEMES, SCHEMES
from toyformer.files import write_json, write_text
from toyformer.errors import ConfigError, as_flags

# name -> module with run(args) -> dict and render(result) -> str
BENCHMARKS = {"throughput": throughput, "peak": peak, "time-to-solve": time_to_solve, "replicas": replicas,
              "kernels": kernels, "race": race, "ui": ui, "explain": explain, "explain-truth": explain_truth,
              "chomsky": chomsky, "portable": portable, "hold": hold, "levers": levers, "diagnose": diagnose}
ALL = ("throughput", "time-to-solve")


def build_parser(prog: str = "toyformer bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description="Benchmarks: throughput, the matmul peak, time to solve, replicas, "
                                "kernels, the race, the Chomsky-hierarchy suite, the portable mode's cost, the "
                                "measured diagnosis.")
    p.add_argument("what", nargs="?", default="throughput", choices=[*BENCHMARKS, "all"])
    p.add_argument("--quick", action="store_true", help="tiny step counts: checks the pipeline, not the numbers")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice); small models on a "
                   "shared machine run best on 1")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile contenders")
    p.add_argument("--tasks",
                   help="time-to-solve, explain, hold: comma-separated task names (default: every task; hold: "
                   "reverse,copy); "
                   "chomsky: suite task names (default: all 15)")
    p.add_argument("--layouts", default="default",
                   help="time-to-solve: default (each task's own), all (every fitting layout but masked), or L1,L2")
    p.add_argument("--seeds", type=int, help="time-to-solve: seeds per (task, layout) (default 1); hold: seeds per "
                   "(task, hold) (default 20); chomsky: seeds per cell and learning rate (default: the budget's); "
                   "diagnose: seeds per change (default 3); explain-truth: seeds per planted circuit (default 2)")
    p.add_argument("--cases",
                   help="diagnose: comma-separated broken cases (default: all; see toyformer.bench.diagnose)")
    p.add_argument("--budget-s", type=float, help="diagnose: seconds of each case's diagnose --try (default 480)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="time-to-solve: a config override for every task (repeatable)")
    p.add_argument("--cap-s", type=float, default=None,
                   help="time-to-solve: seconds per run at most (default: no cap; each run ends when solved or at its "
                        "train.steps)")
    p.add_argument("--k", type=int, default=16, help="replicas: replicas per batched run (default 16)")
    p.add_argument("--rounds", type=int, default=3, help="replicas: interleaved rounds; ui: page loads (default 3)")
    p.add_argument("--runs", "--n-runs", dest="n_runs", type=int, default=10_000,
                   help="ui: runs in the store, each with its run directory (default 10000)")
    p.add_argument("--steps-r1", type=int, default=200, help="replicas: steps of R1's model (default 200)")
    p.add_argument("--steps-r4", type=int, default=40, help="replicas: steps of R4's model (default 40)")
    p.add_argument("--reference", metavar="DIR", help="race, levers: the folder of the reference code (default "
                   "../shared/reference-code)")
    p.add_argument("--races", help="race: comma-separated races (default r0,r1,r2,r4)")
    p.add_argument("--models", help="chomsky: lstm, rnn, stack_rnn, tape_rnn, transformer (default lstm,transformer)")
    p.add_argument("--schemes", help=f"chomsky: the transformer's positional schemes (default: "
                   f"{', '.join(DEFAULT_SCHEMES)}; also random_<scheme>, "
                   f"{', '.join(s for s in SCHEMES if s not in DEFAULT_SCHEMES and not s.startswith('random_'))})")
    p.add_argument("--budget", help="chomsky: quick, cpu (default) or full (the papers' protocol)")
    p.add_argument("--max-test-length", help="chomsky: test lengths 41..N (default: the budget's; the papers: 500)")
    p.add_argument("--seeds-as", default="replicas", help="chomsky: replicas (transformer seeds as one batched run, "
                   "default) or runs (one after another); LSTM seeds are always runs")
    p.add_argument("--workers", help="chomsky: local worker processes (default 1)")
    p.add_argument("--cluster", help="chomsky: a Dask scheduler address (tcp://host:8786)")
    p.add_argument("--store", help="chomsky: the results store (default $TOYFORMER_RESULTS or runs/results.sqlite)")
    p.add_argument("--runs-dir", help="chomsky: where the run directories go (default runs/bench/chomsky/BUDGET); "
                   "diagnose: default runs/bench/diagnose")
    p.add_argument("--from", dest="from_file", metavar="JSON", help="chomsky: re-render the --out JSON of an earlier "
                   "run beside the current published numbers and their provenance (trains nothing)")
    p.add_argument("--json", action="store_true", help="end with one JSON line holding every number")
    p.add_argument("--out", help="JSON file (default runs/benchmarks/NAME.json)")
    p.add_argument("--markdown", help="also write the table(s) with the machine and command to this file")
    return p


def main(argv: list[str] | None = None, prog: str = "toyformer bench") -> int:
    args = build_parser(prog).parse_args(argv)
    # the R4 baseline passes masks the way the reference notebook did; torch warns about it each step
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
    names = ALL if args.what == "all" else (args.what,)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print(f"{prog}: error: --device cuda but no CUDA device is available; allowed here: cpu",
                  file=sys.stderr)
            return 2
    command = f"{prog} " + " ".join(argv if argv is not None else sys.argv[1:])
    result: dict[str, Any] = {"machine": machine(), "command": command.strip(),
                              "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    tables = []
    try:
        for name in names:
            t0 = time.perf_counter()
            result[name] = BENCHMARKS[name].run(args)
            result[name]["wall_s"] = time.perf_counter() - t0
            tables.append(BENCHMARKS[name].render(result[name]))
    except ConfigError as exc:  # the bad-input contract: one line, as every toyformer command writes it
        print(f"toyformer: error: {' '.join(as_flags(str(exc)).split())}", file=sys.stderr)
        return 2
    text = "\n\n".join(tables)
    print(text)
    out = Path(args.out or f"runs/benchmarks/{args.what}{'-quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    if args.markdown:
        m = result["machine"]
        head = (f"Command: `{result['command']}`  \nMachine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} "
                f"torch threads, torch {m['torch']}, Python {m['python']}{', ' + m['gpu'] if 'gpu' in m else ''}  \n"
                f"Run: {result['started']}\n\n")
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        write_text(Path(args.markdown), head + text + "\n")
    print(f"\nJSON: {out}")
    if args.json:
        print(json.dumps(result, default=str))
    return 0
