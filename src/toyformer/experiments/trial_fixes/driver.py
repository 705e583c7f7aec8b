"""``try_fixes``: the measured diagnosis of one finished run (see the package docstring)."""

from __future__ import annotations

import shutil
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.experiments.trial_fixes.halving import Search, _numbers
from toyformer.experiments.trial_fixes.levers import candidates
from toyformer.experiments.trial_fixes.outputs import mark, ordered
from toyformer.files import read_json, write_json
from toyformer.run import directory

FLOOR = 0.25  # the first rung's cap: at least this share of the broken run's training seconds, if the budget allows


def try_fixes(run_dir: str | Path, budget_s: float = 600.0, seeds: int = 3, quiet: bool = True, log=None,
              space: dict | None = None) -> dict:
    """Find and measure the change that fixes the run in ``run_dir`` within ``budget_s`` seconds,
    every change on ``seeds`` seeds; ``space``: the search space after the levers (default: the
    layout's). Returns the result (also ``RUN_DIR/try.json``); ``log(line)`` hears each step."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise ConfigError(f"{str(run_dir)!r} has not finished (no summary.json); diagnose a finished run")
    if not budget_s > 0 or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"budget_s={budget_s} and seeds={seeds}: allowed: budget_s > 0 and seeds >= 1")
    summary = read_json(summary_path)
    config = directory.run_config(run_dir)
    if not summary.get("diagnosis"):
        raise ConfigError(f"{str(run_dir)!r} reached its target: there is nothing to fix")
    if config.model.family == "lstm":
        raise ConfigError("try_fixes trains each change's seeds as batched replicas, which model.family='lstm' "
                          "cannot; allowed: a transformer run")
    target = config.eval.target if config.eval.target is not None else 1.0  # a run without one: every answer right
    base = config.with_overrides({"eval.target": target})
    symptoms = [f["symptom"] for f in summary["diagnosis"]]
    changes = candidates(base, symptoms, space)
    log = log or (lambda line: None)
    if (run_dir / "try").exists():  # an earlier search's runs (other caps, other seeds): this one starts afresh
        shutil.rmtree(run_dir / "try")
    log(f"symptoms: {', '.join(symptoms)}; {len(changes)} changes to try within {budget_s:g} s")
    floor = FLOOR * (summary.get("wall_s") or 0.0)  # a share of the broken run's own training time
    found = Search(base, changes, seeds, budget_s, run_dir / "try", quiet, log, floor).run()
    rows = ordered([{**_numbers(r), "change": r["change"], "overrides": r["overrides"]}
                    for r in found["rows"].values()])
    result = {"run_dir": str(run_dir), "budget_s": budget_s, "seeds": seeds, "target": target,
              "metric": config.eval.target_metric, "symptoms": symptoms, "candidates": len(changes),
              "rungs": found["rungs"], "stopped_at_fix": found["found"], "spent_s": round(found["spent_s"], 1),
              "untried": found["untried"],
              "changes": rows, "recommendation": found["fresh"]}
    write_json(run_dir / "try.json", result)
    summary["diagnosis"] = mark(summary["diagnosis"], rows)
    write_json(summary_path, summary)
    return result
