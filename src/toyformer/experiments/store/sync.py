"""Record the finished runs a results store is missing: ``toyformer results --sync RUNS_DIR``.

A run is finished when its ``summary.json`` exists; it is recorded after that, so a process
killed in between leaves a finished run without a row. ``sync`` walks a directory tree for
finished runs and records each one (each replica of a replica run) whose key
``(run_dir, replica)`` has no row; rows already there are left as they are, so a second sync adds
nothing.

What a directory holds decides what it is::

    RUN_DIR/config.json + summary.json        a single run: one row
    RUN_DIR/replicas.json + summary.json      a replica run: one row per RUN_DIR/replicas/<i>
    SWEEP_DIR/runs/<point>/...                with SWEEP_DIR/sweep.json: recorded as that sweep's point
    RECIPE_DIR/runs/<name>/...                with RECIPE_DIR/result.json: recorded as that recipe's run

A sweep killed before it ever wrote ``sweep.json`` leaves points that sync records without their
sweep's name (``source`` is ``sync``); running the sweep again records them as its own.

>>> ResultsStore("runs/results.sqlite").sync("runs")     # doctest: +SKIP
3
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

from toyformer.errors import ConfigError
from toyformer.files import read_json


@dataclass
class Finished:
    """One row's worth of a finished run found on disk."""

    config: dict
    summary: dict
    run_dir: Path
    replica: int = 0
    n_replicas: int = 1
    source: str = "sync"
    sweep: str | None = None
    point: str | None = None


def sync(store, root: str | Path) -> int:
    """Record in ``store`` every finished run under ``root`` that has no row; returns how many rows were added."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"runs folder {str(root)!r} to sync from: no such directory")
    try:
        have = store.recorded()
        added = 0
        for run in finished_runs(root):
            if (str(run.run_dir.resolve()), run.replica) in have:
                continue
            store.record_summary(run.config, run.summary, run.run_dir, source=run.source, sweep=run.sweep,
                                 point=run.point, replica=run.replica, n_replicas=run.n_replicas)
            added += 1
    except sqlite3.Error as exc:
        raise ConfigError(f"results store {str(store.path)!r}: {exc}") from None
    return added


def finished_runs(root: Path) -> Iterator[Finished]:
    """Every finished run (every replica of a finished replica run) under ``root``, in path order.
    A directory that cannot be read is skipped with one warning line."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        if "replicas.json" in filenames or "config.json" in filenames:
            dirnames[:] = []  # a run directory: its replicas are read from it, never found on their own
            if "summary.json" not in filenames:
                continue  # not finished: --resume or the sweep continues it
            try:
                yield from _read(here, "replicas.json" in filenames)
            except (OSError, ValueError) as exc:  # ValueError: bad JSON, a ConfigError
                print(f"toyformer: warning: skipped {str(here)!r}: {exc}", file=sys.stderr)


def _read(run_dir: Path, replicas: bool) -> list[Finished]:
    """The rows of the finished run in ``run_dir`` (read in full before any is recorded)."""
    owner = _owner(run_dir)
    if not replicas:
        return [Finished(read_json(run_dir / "config.json"), read_json(run_dir / "summary.json"), run_dir, **owner)]
    k = read_json(run_dir / "replicas.json")["k"]
    dirs = [run_dir / "replicas" / str(i) for i in range(k)]
    return [Finished(read_json(d / "config.json"), read_json(d / "summary.json"), d, i, k, **owner)
            for i, d in enumerate(dirs)]


def _owner(run_dir: Path) -> dict:
    """``source``, ``sweep`` and ``point`` of a run directory, from the sweep or recipe around it."""
    if run_dir.parent.name == "runs":
        home = run_dir.parent.parent
        try:
            if (home / "sweep.json").is_file():
                return {"source": "sweep", "sweep": read_json(home / "sweep.json")["sweep"], "point": run_dir.name}
            if (home / "result.json").is_file():
                return {"source": "recipe", "sweep": f"recipe {read_json(home / 'result.json')['recipe']}"}
        except (OSError, KeyError, TypeError, json.JSONDecodeError):
            pass  # not one of ours after all
    return {}
