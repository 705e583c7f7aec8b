"""``toyformer diagnose RUN_DIR [--try]``: why a run missed its target, suspected or measured."""

from __future__ import annotations

import sys

from toyformer.cli.args import at_least, greater_than, number
from toyformer.files import dumps


def register(sub) -> None:
    from toyformer.cli import add_task_file

    d = sub.add_parser("diagnose", help="why a run missed its target; --try measures which setting fixes it")
    d.add_argument("run_dir")
    d.add_argument("--try", dest="try_", action="store_true",
                   help="train each suspect setting changed alone (and the lr/steps levers) on --seeds seeds")
    d.add_argument("--budget-s", type=number(float, greater_than(0)), default=600.0, metavar="SECONDS",
                   help="with --try: training seconds for all the changes together (default 600)")
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

    read_config(args.run_dir)  # a clear error when it is not a run directory
    summary_path = f"{args.run_dir}/summary.json"
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
    from pathlib import Path

    from toyformer.bench import machine
    from toyformer.files import write_text

    m = machine()
    command = f"toyformer diagnose {args.run_dir} --try --budget-s {args.budget_s:g} --seeds {args.seeds}"
    head = (f"Command: `{command}`  \nMachine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, "
            f"torch {m['torch']}, Python {m['python']}  \nEach change: {result['seeds']} seeds as batched replicas, "
            f"at most {result['cap_s']:.0f} s, target {result['metric']} {result['target']:g}\n\n")
    rows = ["| change | seeds solved | seconds to solve (mean ± 95% CI) | final (mean ± 95% CI) | verdict |",
            "|---|---|---|---|---|"]
    for r in result["changes"]:
        t = r.get("solved_at_s")
        when = f"{t['mean']:.1f} ± {t['ci95']:.1f}" if t else "-"
        final = f"{r['final']['mean']:.3f} ± {r['final']['ci95']:.3f}"
        rows.append(f"| `{r['change']}` | {r['solved']}/{r['seeds']} | {when} | {final} | measured: {r['verdict']} |")
    write_text(Path(args.markdown), head + "\n".join(rows) + "\n")
