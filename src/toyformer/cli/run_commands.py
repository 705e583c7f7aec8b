"""``toyformer tasks``, ``toyformer train`` and ``toyformer eval``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from toyformer.cli.args import SEED, at_least, number
from toyformer.config import LAYOUTS, RunConfig, read_config_file
from toyformer.errors import ConfigError
from toyformer.files import dumps
from toyformer.run import directory


def register(sub) -> None:
    from toyformer.cli import add_task_file
    from toyformer.cli.store_args import add_store

    t = sub.add_parser("tasks", help="list the tasks with an example each")
    add_task_file(t)
    t.set_defaults(func=cmd_tasks)

    tr = sub.add_parser("train", help="train a model on a task and write a run directory")
    tr.add_argument("task", nargs="?", help="task name (see `toyformer tasks`)")
    tr.add_argument("--layout", choices=LAYOUTS, help="default: the task's own")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. model.n_layers=2 or length=20 (repeatable)")
    tr.add_argument("--config", help="a YAML, TOML or JSON config file")
    tr.add_argument("--out", help="run directory (default: runs/TASK-LAYOUT-TIME)")
    tr.add_argument("--seed", type=SEED)
    tr.add_argument("--device", choices=("auto", "cpu", "cuda"))
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    tr.add_argument("--replicas", type=number(int, at_least(1)), metavar="K",
                    help="train K replicas (seeds SEED..SEED+K-1) as one batched computation; "
                         "reports each and the mean with a 95%% confidence interval")
    tr.add_argument("--replica-set", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="vary train.lr across replicas: one value per replica, or a list whose length divides K")
    add_task_file(tr)
    add_store(tr)
    tr.add_argument("--json", action="store_true", help="end with one JSON line of results")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.add_argument("--live-plot", action=argparse.BooleanOptionalAction, default=True,
                    help="keep RUN_DIR/curves.png up to date while training (default: on)")
    add_tensorboard(tr)
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="re-evaluate a run from its directory (test set, or --lengths)")
    ev.add_argument("run_dir")
    ev.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ev.add_argument("--beam", type=number(int, at_least(1)), metavar="K",
                    help="decode by beam search of width K (default: the run's eval.decode)")
    ev.add_argument("--lengths", metavar="SPEC", help="evaluate at these task lengths: 1:64, 10,20,30 or 2:40:2")
    ev.add_argument("-n", "--n", type=number(int, at_least(1)), default=500,
                    help="with --lengths: examples per length (default 500)")
    ev.add_argument("--plot", metavar="PNG", help="with --lengths: plot path (default RUN_DIR/lengths.png)")
    add_task_file(ev)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)


def cmd_tasks(args) -> int:
    from toyformer.tasks import get_task, list_tasks
    from toyformer.tasks.base import readable_answer

    for name in list_tasks():
        task = get_task(name)
        ex = task.sample(1, torch.Generator().manual_seed(0))
        vocab = task.vocab
        print(f"{name:<20} {task.description}")
        print(f"{'':<20}   {vocab.decode(ex.input[0])}  ->  {vocab.decode(readable_answer(task, ex.target)[0])}")
    return 0


def config_from_args(args) -> RunConfig:
    """Defaults <- config file <- TASK <- --layout/--seed/--device <- --set overrides."""
    data = read_config_file(args.config) if args.config else {}
    if args.task:
        task = data.get("task", {})
        task = {"name": task} if isinstance(task, str) else dict(task)
        if task.get("name", args.task) != args.task:
            task = {}  # another task than the file's: its parameters do not apply
        data["task"] = {**task, "name": args.task}
    elif "task" not in data:
        raise ConfigError("no task given; name one (see `toyformer tasks`) or pass --config")
    for key in ("layout", "seed", "device"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    try:
        config = RunConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"config file {args.config!r}: {exc}" if args.config else str(exc)) from None
    return with_tensorboard(config.with_overrides(args.overrides), getattr(args, "tensorboard", None))


def add_tensorboard(parser) -> None:
    """``--tensorboard DIR``: the ``train.tensorboard`` of the run (or of every point)."""
    parser.add_argument("--tensorboard", metavar="DIR",
                        help="also write TensorBoard event files into DIR: scalars at each evaluation, attention and "
                             "curves at the end (train.tensorboard; pip install 'toyformer[tensorboard]')")


def with_tensorboard(config: RunConfig, log_dir: str | None) -> RunConfig:
    """``config`` with ``train.tensorboard=log_dir`` (unchanged for None)."""
    if log_dir is None:
        return config
    from dataclasses import replace

    return replace(config, train=replace(config.train, tensorboard=log_dir))


def _config_and_out(args, suffix: str = "") -> tuple[RunConfig | None, Path]:
    """The config (None when resuming: it is read from the directory) and the run directory."""
    if args.resume:
        if not args.out:
            raise ConfigError("--resume needs --out RUN_DIR")
        if args.tensorboard:
            raise ConfigError("--tensorboard with --resume: a resumed run keeps the train.tensorboard of its config")
        return None, Path(args.out)
    config = config_from_args(args)
    if args.out and not directory.is_empty(Path(args.out)):  # the library's message names no flag: word it here
        if directory.holds_run(Path(args.out)):
            raise ConfigError(f"output directory {args.out!r} already holds a run; pass --resume to continue it "
                              "or choose another --out")
        raise ConfigError(f"output directory {args.out!r} is not empty and holds no run; choose another --out")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.out = args.out or f"runs/{config.task.name}-{config.layout}{suffix}-{stamp}"  # a stop names it (cli.recovery)
    return config, Path(args.out)


def cmd_train(args) -> int:
    from toyformer.cli.store_args import raise_not_recorded, store_from_args
    from toyformer.experiments.recording import train

    resuming_replicas = args.resume and args.out and (Path(args.out) / "replicas.json").is_file()
    if args.replicas is not None or args.replica_set or resuming_replicas:
        return _train_replicas(args)
    config, out = _config_and_out(args)
    on_eval = None
    if args.live_plot:
        from toyformer.inspect.live import CurvesFile

        on_eval = CurvesFile(out)
    store = store_from_args(args)
    run = train(config, out_dir=out, resume=args.resume, quiet=args.quiet or args.json, device=args.device,
                on_eval=on_eval,
                store=store)
    _report(run.summary, args.json, out)
    raise_not_recorded(store, out)
    return _diverged([run.summary], out)


DIVERGED = 3  # the exit code of a run whose loss became NaN or infinite


def _diverged(summaries: Sequence[Mapping[str, Any]], out: Path) -> int:
    """0, or one line on stderr for the runs whose loss became NaN or infinite and ``DIVERGED``."""
    bad = [(i, s) for i, s in enumerate(summaries) if s.get("diverged")]
    if not bad:
        return 0
    i, s = bad[0]
    d = s["diverged"]
    who = f"replica {i} (of {len(bad)} that diverged) " if len(summaries) > 1 else ""
    kept = f"the weights of step {d['weights_from_step']}" if d["weights_from_step"] else "the initial weights"
    finding = next((f for f in s.get("diagnosis", []) if f["symptom"] == "diverged"), None)
    suspects = [f"{r['key']}={r['value']}" for r in (finding or {}).get("settings", []) if r["suspect"]]
    hint = f"; suspect: {', '.join(suspects)}" if suspects else ""
    print(f"toyformer: {who}diverged: the training loss was NaN or infinite at step {d['step']}; kept {kept} "
          f"in {out}{hint}", file=sys.stderr)
    return DIVERGED


def _train_replicas(args) -> int:
    from toyformer.cli.store_args import raise_not_recorded, store_from_args
    from toyformer.experiments.recording import train_replicas
    from toyformer.training import format_table, parse_replica_set

    if args.replicas is None and not args.resume:
        raise ConfigError("--replica-set needs --replicas K")
    values = parse_replica_set(args.replica_set)
    config, out = _config_and_out(args, f"-x{args.replicas}")
    store = store_from_args(args)
    rep = train_replicas(config, args.replicas, out_dir=out, lrs=values.get("train.lr"), resume=args.resume,
                         quiet=args.quiet or args.json, device=args.device, store=store)
    print(format_table(rep.summary))
    print(f"run_dir {out}")
    if args.json:
        print(dumps({**rep.summary, "run_dir": str(out)}))
    raise_not_recorded(store, out)
    return _diverged([r.summary for r in rep.runs], out)


def cmd_eval(args) -> int:
    if args.beam is not None and args.beam < 1:
        raise ConfigError(f"--beam {args.beam}: the beam width must be >= 1")
    if args.lengths is not None:
        return _eval_lengths(args)
    from toyformer.eval.evaluate import evaluate

    _report(evaluate(args.run_dir, device=args.device, beam_width=args.beam), args.json, None)
    return 0


def _eval_lengths(args) -> int:
    from toyformer.eval.lengths import evaluate_lengths, format_table, parse_lengths
    from toyformer.files import write_json
    from toyformer.inspect.plots import check_image_path, plot_lengths
    from toyformer.run import load_run

    lengths = parse_lengths(args.lengths)
    plot = check_image_path(Path(args.plot) if args.plot else Path(args.run_dir) / "lengths.png")
    run = load_run(args.run_dir, device=args.device)
    decode = {} if args.beam is None else {"decode": "beam", "beam_width": args.beam}
    result = evaluate_lengths(run, lengths, args.n, **decode)
    result["run_dir"] = str(args.run_dir)
    result["plot"] = str(plot_lengths(result, plot))
    write_json(Path(args.run_dir) / "lengths.json", result)
    print(format_table(result))
    print(f"plot: {result['plot']}")
    if args.json:
        print(dumps(result))
    return 0


def _report(result: Mapping[str, Any], as_json: bool, out: Path | None) -> None:
    for key, value in result.items():
        if isinstance(value, (dict, list)):
            continue
        shown = f"{value:.4f}" if isinstance(value, float) else value
        if key == "test_exact_match" and "test_exact_match_ci95" in result:  # every accuracy with its n and interval
            lo, hi = result["test_exact_match_ci95"]
            shown = f"{shown}  (n={result['test_n']}, 95% CI {lo:.4f}-{hi:.4f})"
        print(f"{key:<18} {shown}")
    note = (result.get("splits") or {}).get("note")
    if note:
        print(f"{'note':<18} {note}")
    if out is not None:
        print(f"{'run_dir':<18} {out}")
    if as_json:
        print(dumps({**result, **({"run_dir": str(out)} if out is not None else {})}))
