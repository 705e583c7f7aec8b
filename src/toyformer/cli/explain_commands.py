"""``toyformer explain RUN_DIR``: what the run learned, in sentences built from measurements;
writes ``RUN_DIR/explain.json`` and the "What it learned" section of ``RUN_DIR/report.html``."""

from __future__ import annotations

import json

from toyformer.cli.args import at_least, number


def register(sub) -> None:
    from toyformer.cli import add_task_file

    p = sub.add_parser("explain", help="what a run learned: head roles, ablations, circuits, probes, logit lens, "
                                       "in sentences")
    p.add_argument("run_dir")
    p.add_argument("--input", help='a clean input for activation patching (with --corrupt) and the attention grid, '
                                   'space-separated tokens, e.g. "3 1 4 1"')
    p.add_argument("--corrupt", help="the corrupted input patched from --input (same number of tokens)")
    p.add_argument("--full", action="store_true", help="more examples, and activation patching on held-out pairs")
    p.add_argument("--circuit", action="store_true",
                   help="also the circuit: the smallest faithful and complete set of edges under each ablation "
                        "(EAP-IG, confirmed by path patching)")
    p.add_argument("--over-training", action="store_true",
                   help="also at every kept checkpoint (a run trained with --set train.keep_checkpoints=log)")
    p.add_argument("-n", type=number(int, at_least(1)),
                   help="held-out examples per analysis (default 512; --full 2000)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON instead of sentences")
    p.add_argument("--no-report", action="store_true", help="write explain.json only, not report.html")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_task_file(p)
    p.set_defaults(func=cmd_explain)


def cmd_explain(args) -> int:
    from toyformer.explain import explain
    from toyformer.report import write_report

    result = explain(args.run_dir, args.input, args.corrupt, args.full, args.over_training, args.n, args.device,
                     circuit=args.circuit)
    results = result.get("replicas", [result])
    if args.json:
        print(json.dumps(result, default=str))
    for i, r in enumerate(results):
        if not args.json:
            if len(results) > 1:
                print(f"replica {i} ({r['run_dir']}):")
            print("\n".join(r["sentences"]))
            print(f"({r['timings']['analysis_s']:.1f} s of analysis; {r['run_dir']}/explain.json)")
        if not args.no_report:
            path = write_report(r["run_dir"], device=args.device)
            if not args.json:
                print(path)
    return 0
