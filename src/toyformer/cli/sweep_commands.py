"""``toyformer sweep SPEC`` and ``toyformer results``: many runs, and tables and plots of any slice of them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from toyformer.cli.args import at_least, number
from toyformer.cli.store_args import add_store, raise_not_recorded, store_from_args
from toyformer.errors import ConfigError
from toyformer.files import dumps

if TYPE_CHECKING:
    from toyformer.experiments.store.table import PivotTable, TextTable


def register(sub) -> None:
    from toyformer.cli import add_task_file

    s = sub.add_parser("sweep", help="run a grid of configurations (a sweep file) and tabulate the results")
    s.add_argument("spec", help="a sweep file (YAML or TOML): base, grid, points, seeds, table, plot")
    s.add_argument("--out", help="sweep directory (default: runs/sweeps/NAME)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the base config, e.g. train.steps=100 (repeatable)")
    s.add_argument("--replicas", type=number(int, at_least(1)), metavar="K",
                   help="train each point as K batched replicas (seeds seed..seed+K-1); overrides the spec's replicas")
    s.add_argument("--workers", type=number(int, at_least(1)), default=1,
                   help="local worker processes (default 1: in this process)")
    s.add_argument("--cluster", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://10.0.0.5:8786")
    s.add_argument("--threads", type=int, metavar="T",
                   help="torch threads per point on every executor (default: this process's in process, "
                        "cores // N with --workers N); the same T gives bit-identical results on every executor")
    add_store(s)
    s.add_argument("--tensorboard", metavar="DIR", help="TensorBoard event files of each point in DIR/<point name> "
                                                       "(train.tensorboard; pip install 'toyformer[tensorboard]')")
    s.add_argument("--json", action="store_true", help="end with one JSON object: every point and the table")
    s.add_argument("--quiet", action="store_true", help="no line per point")
    add_task_file(s)
    s.set_defaults(func=cmd_sweep)

    r = sub.add_parser("results", help="print a table (or plot) of recorded runs from the results store")
    add_store(r, recording=False)
    r.add_argument("--where", metavar="EXPR", help="filter, e.g. \"task.length >= 200 and model.norm = 'pre'\"")
    r.add_argument("--rows", metavar="FIELDS", help="pivot: row field(s), comma-separated (e.g. task.length)")
    r.add_argument("--cols", metavar="FIELDS", help="pivot: column field(s) (e.g. task.vocab_size)")
    r.add_argument("--value", metavar="METRIC", help="pivot: the metric in the cells (default test_token_acc)")
    r.add_argument("--columns", metavar="FIELDS", help="flat table: the columns to show")
    r.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    r.add_argument("--plot", metavar="x=F,y=M[,lines=F]", help="plot a metric against a field instead of a table")
    r.add_argument("--out", metavar="FILE", help="with --plot: the image (.png or .svg; default results.png)")
    r.add_argument("--fields", action="store_true", help="list the fields (columns) of the store")
    r.add_argument("--sync", metavar="RUNS_DIR",
                   help="record the finished runs under RUNS_DIR that the store is missing (e.g. a process was "
                        "killed before recording its run) and print how many were added")
    r.set_defaults(func=cmd_results)


def cmd_sweep(args) -> int:
    from toyformer.experiments.sweeps.run import sweep
    from toyformer.experiments.sweeps.spec import load_sweep

    spec = load_sweep(args.spec).with_base_overrides(args.overrides)
    if args.tensorboard:
        from dataclasses import replace

        from toyformer.cli.run_commands import with_tensorboard
        from toyformer.config import RunConfig

        spec = replace(spec, base=with_tensorboard(RunConfig.from_dict(spec.base), args.tensorboard).to_dict())
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    store = store_from_args(args)
    result = sweep(spec, out=args.out, workers=args.workers, cluster=args.cluster, store=store,
                   log=log, task_files=args.task_file, replicas=args.replicas, threads=args.threads)
    print(result.table.markdown() if result.table else "no point finished")
    for p in result.failed:
        print(f"failed: {p.point.name}: {p.error}")
    print(f"\nsweep directory: {result.out} (report.html, table.md, sweep.json)")
    if result.store:
        print(f"results store: {result.store}")
    if args.json:
        print(dumps(result.to_dict()))
    raise_not_recorded(store, result.out)
    return 1 if result.failed else 0


def cmd_results(args) -> int:
    from toyformer.experiments.store.store import ResultsStore

    store = ResultsStore(args.store)
    if args.sync:
        return _sync(args, store)
    store.check()  # one line for a store that is missing, empty, not SQLite, of another schema, damaged
    known = store.columns()
    if args.fields:
        print("\n".join(c for c in known if not c.endswith("_json")))
        return 0
    rows = store.query(args.where)
    if args.plot:
        return _plot(args, rows, known)
    if args.out:
        raise ConfigError("--out goes with --plot (a table is printed; redirect it to a file)")
    table: PivotTable | TextTable
    if args.rows:
        if args.columns:
            raise ConfigError("--columns is for a flat table; a pivot shows --value by --rows and --cols")
        from toyformer.experiments.store.table import pivot

        table = pivot(rows, args.rows, args.cols, args.value or "test_token_acc", known,
                      names=("--rows field", "--cols field", "--value metric"))
    else:
        if args.cols or args.value:
            raise ConfigError("--cols and --value need --rows (a pivot); without --rows the table is flat")
        from toyformer.experiments.store.table import flat

        table = flat(rows, args.columns, known)
    print(table.format(args.format))
    return 0


def _sync(args, store) -> int:
    shown = [f"--{k}" for k in ("where", "rows", "cols", "value", "columns", "plot", "out", "fields")
             if getattr(args, k)]
    if shown:
        raise ConfigError(f"--sync records runs and prints no table; run it without {', '.join(shown)}")
    store.check(writing=True)
    added = store.sync(args.sync)
    print(f"added {added} run(s) from {args.sync} to results store {store.path}")
    return 0


def _plot(args, rows: list[dict], known: list[str]) -> int:
    from toyformer.inspect.plots import save
    from toyformer.experiments.store.plot import metric_figure, parse_plot

    spec = parse_plot(args.plot)
    out = Path(args.out or "results.png")
    if out.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"--out {str(out)!r}: allowed suffixes: .png, .svg")
    names = ("--plot x field", "--plot lines field", "--plot y metric")
    print(save(metric_figure(rows, spec["x"], spec["y"], spec.get("lines"), known, names=names), out))
    return 0
