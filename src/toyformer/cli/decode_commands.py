"""``toyformer sample``: a trained decoder's answers to your inputs (sampled, greedy or beam)."""

from __future__ import annotations


from toyformer.cli.args import SEED, at_least, greater_than, number
from toyformer.files import dumps


def register(sub) -> None:
    from toyformer.cli import add_task_file

    p = sub.add_parser("sample", help="answers of a causal/seq2seq run to inputs: sampled, greedy or beam search")
    p.add_argument("run_dir")
    p.add_argument("--input", action="append", metavar="TOKENS",
                   help='space-separated tokens, e.g. "1 2 + 3 4" (repeatable; default: 4 test inputs)')
    p.add_argument("--n", type=number(int, at_least(1)), default=1, help="sampled answers per input (default 1)")
    p.add_argument("--temperature", type=number(float, greater_than(0)), default=1.0,
                   help="softmax temperature (default 1.0)")
    p.add_argument("--top-k", type=number(int, at_least(1)), metavar="K",
                   help="sample among the K most likely tokens only")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the sampling generator (default 0)")
    p.add_argument("--greedy", action="store_true", help="the argmax answer instead of sampling")
    p.add_argument("--beam", type=number(int, at_least(1)), metavar="K",
                   help="beam search of width K instead of sampling")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add_task_file(p)
    p.add_argument("--json", action="store_true", help="end with one JSON line of results")
    p.set_defaults(func=cmd_sample)


def cmd_sample(args) -> int:
    from toyformer.errors import ConfigError
    from toyformer.inspect.generate import generate

    if args.greedy and args.beam is not None:
        raise ConfigError("--greedy and --beam exclude each other; allowed: one of them, or neither (sampling)")
    method = "beam" if args.beam is not None else "greedy" if args.greedy else "sample"
    rows = generate(args.run_dir, args.input, method, args.n, args.temperature, args.top_k,
                    args.beam if args.beam is not None else 4, args.seed, device=args.device)
    for row in rows:
        for out in row["outputs"]:
            print(f"{row['input']}  ->  {out}")
    if args.json:
        print(dumps({"method": method, "rows": rows}))
    return 0
