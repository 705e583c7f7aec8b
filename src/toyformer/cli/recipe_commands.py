"""``toyformer recipe list`` and ``toyformer recipe NAME [--quick] [--out DIR] [--json]``."""

from __future__ import annotations


from toyformer.cli.args import greater_than, number
from toyformer.files import dumps


def register(sub) -> None:
    from toyformer.cli.store_args import add_store

    r = sub.add_parser("recipe", help="run a reference experiment (R0-R4) as described and improved")
    r.add_argument("name", help="a recipe name, or `list`")
    r.add_argument("--out", help="recipe directory (default: runs/recipes/NAME)")
    r.add_argument("--quick", action="store_true", help="a few seconds: checks the pipeline, not the numbers")
    r.add_argument("--json", action="store_true", help="end with one JSON line holding every number")
    add_store(r)
    r.add_argument("--budget-s", type=number(float, greater_than(0)), metavar="SECONDS",
                   help="training seconds per configuration (recipes that take one: lengths)")
    r.add_argument("--preset", help="a preset of the recipe (lengths: schemes, the default; addition)")
    r.set_defaults(func=cmd_recipe)


def cmd_recipe(args) -> int:
    from toyformer.cli.store_args import raise_not_recorded, store_from_args
    from toyformer.experiments.recipes import list_recipes, run_recipe

    if args.name == "list":
        for name, desc in list_recipes().items():
            print(f"{name:<5} {desc}")
        return 0
    out = args.out or f"runs/recipes/{args.name}{'-quick' if args.quick else ''}"
    if args.preset is not None and args.out is None:
        out = f"runs/recipes/{args.name}-{args.preset}{'-quick' if args.quick else ''}"
    store = store_from_args(args)
    result = run_recipe(args.name, out, quick=args.quick, budget_s=args.budget_s, store=store, preset=args.preset)
    for table in result.tables:
        print(table.markdown(), end="\n\n")
    for finding in result.findings:
        print(f"- {finding}")
    print(f"\nrecipe directory: {out}")
    if args.json:
        print(dumps({"recipe": result.name, "out": out, "numbers": result.numbers}))
    raise_not_recorded(store, out)
    return 0
