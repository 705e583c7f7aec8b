"""``toyformer diagnose RUN_DIR [--try]``: why a run missed its target, suspected or measured;
``toyformer diagnose --levers``: the lever table ``--try`` starts from."""

from __future__ import annotations

import sys
from pathlib import Path

from toyformer.cli.args import at_least, greater_than, number
from toyformer.files import dumps


def register(sub) -> None:
    from toyformer.cli import add_task_file

    d = sub.add_parser("diagnose",
                       help="why a run missed its target; --try finds and measures the change that fixes it")
    d.add_argument("run_dir", nargs="?", help="a finished run directory")
    d.add_argument("--try", dest="try_", action="store_true",
                   help="try the symptoms' levers, then the layout's search space, by successive halving on --seeds "
                        "seeds; re-measure the best on fresh seeds")
    d.add_argument("--levers", action="store_true", help="print the lever table (symptom -> settings to try) and exit")
    d.add_argument("--budget-s", type=number(float, greater_than(0)), default=600.0, metavar="SECONDS",
                   help="with --try: wall-clock seconds for the whole search and the re-measure (default 600)")
    d.add_argument("--seeds", type=number(int, at_least(1)), default=3, help="with --try: seeds per change (default 3)")
    d.add_argument("--markdown", metavar="FILE", help="with --try: also write the table, the command and the machine")
    d.add_argument("--quiet", action="store_true", help="no line per change")
    d.add_argument("--json", action="store_true", help="end with one JSON line")
    add_task_file(d)
    d.set_defaults(func=cmd_diagnose)


def cmd_diagnose(args) -> int:
    from toyformer.errors import ConfigError
    from toyformer.files import read_json
    from toyformer.run.directory import read_config

    if args.levers:
        from toyformer.experiments.trial_fixes import table_markdown

        print(table_markdown())
        return 0
    if args.run_dir is None:
        raise ConfigError("diagnose needs a run directory (or --levers for the lever table)")
    read_config(args.run_dir)  # a clear error when it is not a run directory
    summary_path = Path(args.run_dir) / "summary.json"
    if args.try_:
        from toyformer.experiments.trial_fixes import format_table, try_fixes

        log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        result = try_fixes(args.run_dir, args.budget_s, args.seeds, log=log)
        print(format_table(result))
        if args.markdown:
            _markdown(args, result)
    try:
        summary = read_json(summary_path)
    except ConfigError:
        raise ConfigError(f"{args.run_dir!r} has not finished (no summary.json); diagnose a finished run") from None
    findings = summary.get("diagnosis") or []
    if not findings:
        print("The run reached its target: nothing to diagnose.")
    for f in findings:
        print(f"\n{f['title']}\n  {f['detail']}")
        for s in f["settings"]:
            m = s.get("measured")
            status = f"measured: {m['verdict']} ({m['change']}, {m['solved']}/{m['seeds']} seeds)" if m else (
                "suspect" if s["suspect"] else "")
            print(f"  {s['key']}={s['value']}  {status}")
    if args.json:
        print(dumps({"diagnosis": findings, **({"try": result} if args.try_ else {})}))
    return 0


def _markdown(args, result: dict) -> None:
    from toyformer.bench import machine
    from toyformer.experiments.trial_fixes import markdown
    from toyformer.files import write_text

    m = machine()
    command = f"toyformer diagnose {args.run_dir} --try --budget-s {args.budget_s:g} --seeds {args.seeds}"
    where = (f"{m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, torch {m['torch']}, "
             f"Python {m['python']}")
    write_text(Path(args.markdown), markdown(result, command, where))
