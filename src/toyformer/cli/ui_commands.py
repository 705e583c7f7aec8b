"""``toyformer ui``: the results browser, a local read-only web app over the results store and
the run directories (``toyformer.ui``; needs ``pip install 'toyformer[ui]'``)."""

from __future__ import annotations

from toyformer.cli.args import between, number


def register(sub) -> None:
    u = sub.add_parser("ui", help="browse the results store and run directories in a web browser (read only)")
    u.add_argument("--store", metavar="PATH",
                   help="results database (default: $TOYFORMER_RESULTS or runs/results.sqlite)")
    u.add_argument("--runs", metavar="DIR", help="folder of run directories, for runs still training or not recorded "
                                                 "(default: the store's folder)")
    u.add_argument("--port", type=number(int, between(0, 65535)), default=8765,
                   help="port (default 8765; 0: a free one)")
    u.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; anything else exposes your runs)")
    u.set_defaults(func=cmd_ui)


def cmd_ui(args) -> int:
    from toyformer.ui.server import serve

    try:
        serve(store=args.store, runs=args.runs, host=args.host, port=args.port)
    except KeyboardInterrupt:
        pass
    return 0
