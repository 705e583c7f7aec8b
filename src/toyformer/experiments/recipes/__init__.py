"""Ready recipes for the reference experiments R0-R4: each runs the experiment as described,
puts the reported numbers beside the reproduced ones, runs toyformer's improved configuration,
and explains from measurements what made the difference.

>>> result = toyformer.experiments.recipes.run_recipe("r1", "runs/r1", quick=True)   # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.experiments.store import as_store
from toyformer.experiments.recipes import lengths, r0, r1, r2, r3, r4
from toyformer.experiments.recipes.base import Context, RecipeResult, write_outputs

RECIPES = {
    "r0": (r0, "count the ones: why a 12-layer post-LN encoder does not learn"),
    "r1": (r1, "memorise a lookup table: symmetric vs asymmetric cells"),
    "r2": (r2, "reverse a sequence: the 8-row length x vocabulary table"),
    "r3": (r3, "the smallest transformer: seq2seq vs masked-token objectives"),
    "r4": (r4, "learning to calculate: positional encoding, greedy vs beam, embeddings"),
    "lengths": (lengths, "length generalisation: positional schemes (--budget-s); --preset addition: 10 -> 1,000 "
                         "digits on five seeds, with its ablation"),
}


def list_recipes() -> dict[str, str]:
    return {name: desc for name, (_, desc) in RECIPES.items()}


def presets(name: str) -> tuple[str, ...]:
    """The presets recipe ``name`` offers (its ``PRESETS``; the first is its default), or ()."""
    return tuple(getattr(RECIPES[name][0], "PRESETS", ())) if name in RECIPES else ()


def run_recipe(name: str, out: str | Path, quick: bool = False, quiet: bool = True,
               budget_s: float | None = None, store=None, preset: str | None = None) -> RecipeResult:
    """Run recipe ``name`` into ``out`` (summary.md, result.json, runs/); finished runs are reused.
    ``budget_s``: training seconds per configuration, for the recipes that take one. ``preset``: one
    of the recipe's presets (``lengths``: ``schemes``, the default, and ``addition``). With ``store``
    (a results store path or ``ResultsStore``) every run trained is recorded there."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; allowed: {', '.join(RECIPES)}")
    if preset is not None and preset not in presets(name):
        takes = [n for n in RECIPES if presets(n)]
        allowed = ", ".join(presets(name)) if presets(name) else f"none (recipes with presets: {', '.join(takes)})"
        raise ConfigError(f"preset {preset!r} for recipe {name!r}; allowed: {allowed}")
    if budget_s is not None and preset not in (None, *presets(name)[:1]):
        raise ConfigError(f"budget_s={budget_s:g} with preset={preset!r}: budget_s= applies to the preset "
                          f"{presets(name)[0]} (the others count steps); allowed: no budget_s=")
    if budget_s is not None:
        takes = [n for n, (module, _) in RECIPES.items() if hasattr(module, "BUDGET_S")]
        if name not in takes or budget_s <= 0:
            raise ConfigError(f"budget_s={budget_s:g} for recipe {name!r}; allowed: > 0, for: {', '.join(takes)}")
    store = as_store(store)
    if store is not None:
        store.check(writing=True)  # before the first run trains
    ctx = Context(Path(out), quick, quiet, budget_s, store=store, name=name, preset=preset)
    start = time.perf_counter()
    result = RECIPES[name][0].run(ctx)
    budget = f" --budget-s {budget_s:g}" if budget_s is not None else ""
    chosen = f" --preset {preset}" if preset is not None else ""
    command = f"toyformer recipe {name}{chosen}{budget}{' --quick' if quick else ''}"
    write_outputs(ctx, result, command, time.perf_counter() - start)
    return result
