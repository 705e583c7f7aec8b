"""``toyformer plot`` and ``toyformer report``: pictures of a run, and one HTML page with all of them."""

from __future__ import annotations

from toyformer.cli.args import at_least, number
from toyformer.inspect.plots import WHAT


def register(sub) -> None:
    from toyformer.cli import add_task_file

    p = sub.add_parser("plot", help="draw a figure of a run (PNG in the run directory)")
    p.add_argument("run_dir")
    p.add_argument("--what", choices=WHAT, default="curves", help="which figure (default: curves)")
    p.add_argument("--sample", type=number(int, at_least(0)), help="attention: the test example to show (default 0)")
    p.add_argument("--input", help='attention: your own input, space-separated tokens, e.g. "3 1 4 1"')
    p.add_argument("--out", help="PNG path (default: RUN_DIR/<what>.png)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_task_file(p)
    p.set_defaults(func=cmd_plot)

    r = sub.add_parser("report", help="write RUN_DIR/report.html: one self-contained page about a run")
    r.add_argument("run_dir")
    r.add_argument("--out", help="HTML path (default: RUN_DIR/report.html)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_task_file(r)
    r.set_defaults(func=cmd_report)


def cmd_plot(args) -> int:
    from toyformer.inspect.plots import plot_run

    print(plot_run(args.run_dir, args.what, args.sample, args.input, args.out, args.device))
    return 0


def cmd_report(args) -> int:
    from toyformer.report import write_report

    print(write_report(args.run_dir, args.out, args.device))
    return 0
