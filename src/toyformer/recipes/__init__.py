"""Ready recipes for the reference experiments R0-R4: each runs the experiment as described,
puts the reported numbers beside the reproduced ones, runs toyformer's improved configuration,
and explains from measurements what made the difference.

>>> result = toyformer.recipes.run_recipe("r1", "runs/r1", quick=True)   # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.recipes import r0, r1, r2, r3, r4
from toyformer.recipes.base import Context, RecipeResult, write_outputs

RECIPES = {
    "r0": (r0, "count the ones: why a 12-layer post-LN encoder does not learn"),
    "r1": (r1, "memorise a lookup table: symmetric vs asymmetric cells"),
    "r2": (r2, "reverse a sequence: the 8-row length x vocabulary table"),
    "r3": (r3, "the smallest transformer: seq2seq vs masked-token objectives"),
    "r4": (r4, "learning to calculate: positional encoding, greedy vs beam, embeddings"),
}


def list_recipes() -> dict[str, str]:
    return {name: desc for name, (_, desc) in RECIPES.items()}


def run_recipe(name: str, out: str | Path, quick: bool = False, quiet: bool = True, store=None) -> RecipeResult:
    """Run recipe ``name`` into ``out`` (summary.md, result.json, runs/); finished runs are reused.
    With ``store`` (a results store path or ``ResultsStore``) every run trained is recorded there."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; allowed: {', '.join(RECIPES)}")
    ctx = Context(Path(out), quick, quiet, store=store, name=name)
    start = time.perf_counter()
    result = RECIPES[name][0].run(ctx)
    command = f"toyformer recipe {name}{' --quick' if quick else ''}"
    write_outputs(ctx, result, command, time.perf_counter() - start)
    return result
