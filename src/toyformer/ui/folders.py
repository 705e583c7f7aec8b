"""The runs folder as the results browser sees it: the run directories under it (a run still
training, one stopped, one finished but not recorded) and the tune directories (a folder with
an Optuna ``study.sqlite``). Only read: a lock is never taken, nothing is written.

The walk skips the run directories the store already has a row for without listing them, so
a folder of ten thousand recorded runs costs one listing of each parent, not one per run; and a
walk again lists only the folders changed since the last one (``listing``).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Collection
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.experiments.store.rows import flatten_config, result_row
from toyformer.files import read_json
from toyformer.run.directory import read_metrics
from toyformer.ui.intervals import add_interval

MAX_DEPTH = 8  # folders below the runs folder that are searched for run directories
STUDY = "study.sqlite"  # what makes a folder a tune directory (``toyformer tune --out``)
SETTLED_S = 2.0  # a folder changed more recently is listed again even if its modification time looks the same


def walk(root: Path, skip: Collection[str] = frozenset(),
         listings: dict | None = None) -> tuple[list[Path], list[Path]]:
    """``(run directories, tune directories)`` under ``root`` (resolved): a run directory is a
    folder with ``config.json`` (inside a replica run only its ``replicas/<i>``), a tune
    directory one with ``study.sqlite``; hidden folders and the folders named in ``skip``
    (resolved paths: runs already known) are not entered. Symbolic links are not followed, so
    every path is as resolved as ``root``. ``listings``: the folders' listings of the last walk
    (``listing``), updated to this one's."""
    runs, tunes = [], []
    stack = [(str(root), 0)]
    seen: dict = {}
    while stack:
        folder, depth = stack.pop()
        try:
            entries, names = listing(folder, listings, seen)
        except OSError:
            continue
        if "config.json" in names:
            runs.append(Path(folder))
            continue
        if STUDY in names:
            tunes.append(Path(folder))
        if depth >= MAX_DEPTH:
            continue
        inside = ["replicas"] if "replicas.json" in names else None
        for name, path, is_dir in reversed(entries):
            if name.startswith(".") or (inside is not None and name not in inside) or path in skip or not is_dir:
                continue
            stack.append((path, depth + 1))
    if listings is not None:
        listings.clear()
        listings.update(seen)  # the folders walked this time: a removed one is forgotten
    return runs, tunes


def listing(folder: str, listings: dict | None = None, seen: dict | None = None) -> tuple[list[tuple], set[str]]:
    """``(name, path, is a folder)`` of each entry of ``folder``, by name, and the set of names:
    from ``listings`` (``folder -> (mtime, entries, names)``) when the folder's modification
    time is the same (an entry added, removed or renamed changes it) and older than
    ``SETTLED_S`` (a time too coarse to tell two changes apart), else read again; ``seen`` gets
    it."""
    changed = os.stat(folder).st_mtime_ns
    old = (listings or {}).get(folder)
    if old is not None and old[0] == changed and time.time_ns() - changed > SETTLED_S * 1e9:
        entries, names = old[1], old[2]
    else:
        entries = [(e.name, e.path, e.is_dir(follow_symlinks=False))
                   for e in sorted(os.scandir(folder), key=lambda e: e.name)]
        names = {name for name, _, _ in entries}
    if seen is not None:
        seen[folder] = (changed, entries, names)
    return entries, names


def writer_pid(folder: Path) -> int | None:
    """The pid in the folder's lock file when that process is alive (a run being trained, a tune
    searching), else None. Read only: the lock itself is never taken, so a writer starting
    meanwhile is never refused."""
    try:
        text = (Path(folder) / ".lock").read_text().strip()
        pid = int(text) if text.isdigit() else None
        if pid is not None:
            os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def dir_status(run_dir: Path, pid: int | None) -> str:
    if (run_dir / "summary.json").is_file():
        return "unrecorded"
    return "training" if pid is not None else "stopped"


def mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def dir_row(run_dir: Path, pid: int | None) -> dict:
    """The row of an unrecorded run directory, with the store's column names: its config, the
    numbers of its summary (finished, with the interval of its test exact match) or of its last
    evaluation (in progress)."""
    config = read_json(run_dir / "config.json")
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else None
    if summary is not None:
        row = add_interval(result_row(config, summary), summary)
    else:
        row = flatten_config(config)
        metrics = read_metrics(run_dir)
        if metrics:
            last = metrics[-1]
            row.update({k: v for k, v in last.items() if k.startswith(("train_", "val_")) or k == "wall_s"})
            row["steps"] = last.get("step")
    when = mtime(run_dir / "metrics.jsonl") or mtime(run_dir / "config.json")
    if when is None:  # removed since it was read: the listing leaves it out (an OSError, as for a damaged one)
        raise FileNotFoundError(errno.ENOENT, "removed while listed", str(run_dir / "config.json"))
    row.update(status=dir_status(run_dir, pid), source="unrecorded" if summary is not None else "in progress",
               run_dir=str(run_dir), recorded_at=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when / 1e9)))
    return row


def read(path: Path, gone) -> dict:
    """``read_json(path)``; ``gone`` (an exception class) when its folder was removed meanwhile."""
    try:
        return read_json(path)
    except ConfigError:
        if not path.parent.is_dir():
            raise gone(f"run directory {str(path.parent)!r} was removed") from None
        raise
