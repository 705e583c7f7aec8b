"""``toyformer tune TASK --budget-s S``: search the configuration that solves TASK fastest."""

from __future__ import annotations

import sys

from toyformer.cli.args import SEED, at_least, greater_than, number
from toyformer.files import dumps


def register(sub) -> None:
    from toyformer.cli import add_task_file
    from toyformer.cli.run_commands import add_tensorboard
    from toyformer.cli.store_args import add_store
    from toyformer.config import LAYOUTS

    t = sub.add_parser("tune", help="search hyperparameters that solve a task fastest (Optuna), re-measure the best")
    t.add_argument("task", nargs="?", help="task name (see `toyformer tasks`)")
    t.add_argument("--layout", choices=LAYOUTS, help="default: the task's own")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a value of the base config every trial starts from (repeatable)")
    t.add_argument("--config", help="a YAML, TOML or JSON base config file")
    t.add_argument("--space", metavar="FILE", help="a YAML file with a `space:` section (default: the layout's space)")
    t.add_argument("--budget-s", type=number(float, greater_than(0)), required=True, metavar="SECONDS",
                   help="wall-clock seconds of search at most")
    t.add_argument("--trials", type=number(int, at_least(1)), default=20, help="trials to finish (default 20)")
    t.add_argument("--trial-s", type=number(float, greater_than(0)), metavar="SECONDS",
                   help="training seconds per trial at most (default train.max_time_s, else budget/4)")
    t.add_argument("--seeds", type=number(int, at_least(1)), default=1,
                   help="seeds per trial, trained as batched replicas; a trial is judged by its slowest (default 1)")
    t.add_argument("--objective", choices=("time_to_solve", "metric"), default="time_to_solve")
    t.add_argument("--workers", type=number(int, at_least(1)), default=1,
                   help="local worker processes sharing the study")
    t.add_argument("--cluster", metavar="ADDRESS", help="a Dask scheduler whose workers share the study's filesystem")
    t.add_argument("--threads", type=number(int, at_least(1)), help="torch threads per trial")
    t.add_argument("--seed", type=SEED, help="the seed of every trial (the first of --seeds)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"))
    t.add_argument("--out", help="tune directory (default: runs/tune/TASK-LAYOUT)")
    t.add_argument("--quiet", action="store_true", help="no line per event")
    t.add_argument("--json", action="store_true", help="end with one JSON line of the result")
    add_tensorboard(t)
    add_store(t)
    add_task_file(t)
    t.set_defaults(func=cmd_tune, resume=False)


def cmd_tune(args) -> int:
    from toyformer.cli.run_commands import config_from_args
    from toyformer.cli.store_args import raise_not_recorded, store_from_args
    from toyformer.experiments.tune import load_space, tune
    from toyformer.experiments.tune.outputs import findings

    base = config_from_args(args)
    space = load_space(args.space, base) if args.space else None
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    store = store_from_args(args)
    result = tune(base, args.budget_s, args.trials, space, args.objective, args.out, args.workers, args.cluster,
                  store, args.trial_s, args.threads, log=log, seeds=args.seeds)
    for line in findings(result):
        print(f"- {line}")
    out = args.out or f"runs/tune/{result['name']}"
    print(f"\ntune directory: {out} (best.yaml, summary.md, tune.json)")
    if args.json:
        print(dumps({**result, "out": out}))
    raise_not_recorded(store, out)
    return 0
