"""What the results browser reads: the results store, opened read-only, and the run directories
under a runs folder (runs still training, or finished but not recorded). Nothing here writes.

A run is named by a *key*: the store row's id (``"12"``) for a recorded run, ``"d:PATH"`` (PATH
relative to the runs folder) for a run directory without a row. Rows of both kinds have the
store's columns (dotted config fields, final metrics) plus ``key`` and ``status``: ``recorded``,
``training`` (its lock is held by a live process), ``stopped`` (started, not finished, no
writer) or ``unrecorded`` (finished, no row).

>>> source = Source("runs/results.sqlite", "runs")                        # doctest: +SKIP
>>> source.table("model.d_model >= 64", ["task.name", "test_token_acc"])   # doctest: +SKIP
{'columns': ['key', 'status', 'task.name', 'test_token_acc'], 'rows': [['3', 'recorded', 'reverse', 1.0], ...]}
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from toyformer.errors import ConfigError
from toyformer.experiments.store.store import JSON_COLUMNS, TABLE, ResultsStore, flatten_config, quote, result_row
from toyformer.experiments.store.where import parse_where
from toyformer.files import read_json
from toyformer.run.directory import read_metrics
from toyformer.stats import mean_ci

SCAN_TTL_S = 2.0  # the runs folder is walked again at most this often
MAX_DEPTH = 8  # folders below the runs folder that are searched for run directories
CURVE_METRICS = ("train_loss", "val_loss", "train_token_acc", "val_token_acc", "train_exact_match",
                 "val_exact_match", "lr")
FINAL_METRICS = ("test_token_acc", "test_exact_match", "test_loss", "train_loss", "val_token_acc", "val_exact_match",
                 "solved_at_step", "solved_at_s", "steps", "wall_s", "params")


class RunGone(ConfigError):
    """A run that is not (or no longer) there: an unknown key, or a directory removed since."""


def check_store(path: Path) -> None:
    """A one-line ConfigError unless ``path`` is a toyformer results store that holds runs (an
    SQLite file with a ``runs`` table of toyformer's columns, see ``ResultsStore.check``); reads only."""
    ResultsStore(path, read_only=True).check()


@dataclass
class DirRun:
    """A run directory found under the runs folder that has no row in the store."""

    key: str
    run_dir: Path
    row: dict
    stamp: tuple  # what the row was read from: (mtime of metrics.jsonl, of summary.json)


class Source:
    """The store (``store``: its path, or None) and the runs folder (``runs``, or None)."""

    def __init__(self, store: str | Path | None, runs: str | Path | None):
        self.store = ResultsStore(store, read_only=True) if store is not None else None
        self.runs = Path(runs).resolve() if runs is not None else None
        self._lock = threading.Lock()
        self._scanned: tuple[float, list[DirRun]] = (-1.0, [])
        self._dir_rows: dict[Path, DirRun] = {}

    # --- the store --------------------------------------------------------------------------
    def store_columns(self) -> list[str]:
        if self.store is None or not self.store.path.is_file():
            return []
        return [c for c in self.store.columns() if c not in JSON_COLUMNS]

    def fields(self) -> list[str]:
        """Every field a filter, a column or a group may name: the store's columns, then those
        only unrecorded runs have, then ``key`` and ``status``."""
        names = list(self.store_columns())
        for d in self.scan():
            names += [k for k in d.row if k not in names and k not in ("key", "status")]
        return ["key", "status", *names]

    def store_row(self, row_id: int) -> dict | None:
        if not self.store_columns():
            return None
        with self.store._session() as con:
            cur = con.execute(f"SELECT * FROM {TABLE} WHERE id = ?", (row_id,))
            found = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], found)) if found else None

    # --- the runs folder --------------------------------------------------------------------
    def scan(self) -> list[DirRun]:
        """The run directories under the runs folder without a row (cached for ``SCAN_TTL_S``)."""
        if self.runs is None or not self.runs.is_dir():
            return []
        with self._lock:
            when, found = self._scanned
            if time.monotonic() - when < SCAN_TTL_S:
                return found
            recorded = self.store.recorded_run_dirs() if self.store_columns() else set()
            found = [self._dir_run(d) for d in walk_runs(self.runs) if str(d) not in recorded]
            found = [d for d in found if d is not None]
            self._dir_rows = {d.run_dir: d for d in found}
            self._scanned = (time.monotonic(), found)
            return found

    def _dir_run(self, run_dir: Path) -> DirRun | None:
        stamp = (_mtime(run_dir / "metrics.jsonl"), _mtime(run_dir / "summary.json"), writer_pid(run_dir))
        old = self._dir_rows.get(run_dir)
        if old is not None and old.stamp == stamp:
            return old
        try:
            row = dir_row(run_dir, stamp[2])
        except (ConfigError, OSError):
            return None  # being written, or damaged: left out of the listing
        key = "d:" + run_dir.relative_to(self.runs).as_posix()
        row["key"] = key
        return DirRun(key, run_dir, row, stamp)

    # --- runs by key ------------------------------------------------------------------------
    def rows(self, where: str | None = None, columns: list[str] | None = None) -> list[dict]:
        """Every run matching ``where`` (the ``--where`` language): the unrecorded run
        directories first, then the store's rows, newest first. ``columns``: the store's columns
        to read (default: all but the JSON ones)."""
        dirs = [d.row for d in self.scan()]
        known = self.fields()
        out = []
        if dirs:
            out += _filter(dirs, where, known)
        store_columns = self.store_columns()
        if store_columns:
            chosen = None if columns is None else ["id", *[c for c in columns if c in store_columns and c != "id"]]
            rows = self._store_query(where, known, chosen)
            out += [{"key": str(r["id"]), "status": "recorded", **r} for r in reversed(rows)]
        return out

    def _store_query(self, where: str | None, known: list[str], columns: list[str] | None) -> list[dict]:
        if not where or not where.strip():
            return self.store.query(columns=columns)
        sql, _ = parse_where(where, known)
        if '"status"' in sql or '"key"' in sql:  # fields the store has not: filter its rows in memory
            rows = [{"key": str(r["id"]), "status": "recorded", **r} for r in self.store.query()]
            return _filter(rows, where, known)
        try:
            return self.store.query(where, columns)
        except ConfigError:  # a field only unrecorded runs have
            return []

    def table(self, where: str | None, columns: list[str] | None = None) -> dict:
        """``rows(where)`` as a compact table of ``key``, ``status`` and ``columns``."""
        columns = [c for c in (columns or []) if c not in ("key", "status")]
        rows = self.rows(where, columns)
        cols = ["key", "status", *columns]
        return {"columns": cols, "rows": [[r.get(c) for c in cols] for r in rows], "count": len(rows)}

    def resolve(self, key: str) -> tuple[Path, dict | None]:
        """The run directory of ``key`` and its store row (None for an unrecorded run); RunGone
        when the key names no run or its directory was removed."""
        if key.startswith("d:"):
            if self.runs is None:
                raise RunGone(f"run {key!r} is not known (no runs folder)")
            run_dir = (self.runs / key[2:]).resolve()
            if not run_dir.is_relative_to(self.runs) or not (run_dir / "config.json").is_file():
                raise RunGone(f"run directory {str(run_dir)!r} is not there (removed?)")
            return run_dir, None
        if not key.isdigit():
            raise RunGone(f"run {key!r} is not known; runs are named by their store id or d:PATH")
        row = self.store_row(int(key))
        if row is None:
            raise RunGone(f"run {key} is not in the results store")
        run_dir = Path(row["run_dir"]) if row.get("run_dir") else None
        if run_dir is None or not (run_dir / "config.json").is_file():
            raise RunGone(f"run {key}: its run directory {str(run_dir)!r} was removed; the store still has its row")
        return run_dir, row

    def run(self, key: str) -> dict:
        """What the run page shows from files: config, summary, metrics, status, store row."""
        run_dir, row = self.resolve(key)
        config = _read(run_dir / "config.json")
        summary = _read(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
        status = "recorded" if row else dir_status(run_dir, writer_pid(run_dir))
        return {"key": key, "run_dir": run_dir, "config": config, "summary": summary,
                "metrics": read_metrics(run_dir), "status": status, "row": row}

    def curves(self, key: str) -> dict:
        """A run's metrics as columns (``step``, ``wall_s``, each metric) and whether it finished."""
        run_dir, _ = self.resolve(key)
        records = read_metrics(run_dir)
        return {"key": key, "finished": (run_dir / "summary.json").is_file(), "status": self.run_status(key, run_dir),
                "curves": columns_of(records)}

    def run_status(self, key: str, run_dir: Path) -> str:
        if key.isdigit():
            return "recorded"
        return dir_status(run_dir, writer_pid(run_dir))

    def compare(self, keys: list[str], group: str | None = None) -> dict:
        """The selected runs' curves, the config keys that differ, their final metrics, and with
        ``group`` (a config field) the mean and 95% band of each curve per value of the field."""
        if not keys:
            raise ConfigError("select at least one run to compare")
        runs, errors = [], []
        for key in dict.fromkeys(keys):
            try:
                runs.append(self._compared(key))
            except RunGone as exc:
                errors.append(str(exc))
        configs = [r["config"] for r in runs]
        names = list(dict.fromkeys(k for c in configs for k in c))
        differing = [k for k in names if len({json.dumps(c.get(k)) for c in configs}) > 1]
        result = {"runs": runs, "differing": differing, "errors": errors, "group": group, "groups": []}
        if group:
            if runs and all(group not in c for c in configs):
                raise ConfigError(f"group field {group!r} is not a config field of these runs; allowed: "
                                  f"{', '.join(names)}")
            result["groups"] = group_curves(runs, group)
        return result

    def _compared(self, key: str) -> dict:
        run_dir, row = self.resolve(key)
        config = flatten_config(_read(run_dir / "config.json"))
        summary = _read(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
        label = (row or {}).get("point") or run_dir.name
        return {"key": key, "label": f"#{key} {label}" if key.isdigit() else label, "config": config,
                "final": {m: summary.get(m) for m in FINAL_METRICS}, "curves": columns_of(read_metrics(run_dir))}


def _read(path: Path) -> dict:
    try:
        return read_json(path)
    except ConfigError:
        if not path.parent.is_dir():
            raise RunGone(f"run directory {str(path.parent)!r} was removed") from None
        raise


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def walk_runs(root: Path):
    """Run directories under ``root`` (resolved): folders with ``config.json``; inside a replica
    run only its ``replicas/<i>``; hidden folders skipped."""
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        names = {e.name for e in entries}
        if "config.json" in names:
            yield folder.resolve()
            continue
        if depth >= MAX_DEPTH:
            continue
        inside = ["replicas"] if "replicas.json" in names else None
        for e in reversed(entries):
            if e.is_dir(follow_symlinks=False) and not e.name.startswith(".") and (inside is None or e.name in inside):
                stack.append((Path(e.path), depth + 1))


def writer_pid(run_dir: Path) -> int | None:
    """The pid in the run's lock file when that process is alive (a run being trained), else None.
    Read only: the lock itself is never taken, so a trainer starting meanwhile is never refused."""
    try:
        text = (run_dir / ".lock").read_text().strip()
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


def dir_row(run_dir: Path, pid: int | None) -> dict:
    """The row of an unrecorded run directory, with the store's column names: its config, the
    numbers of its summary (finished) or of its last evaluation (in progress)."""
    config = read_json(run_dir / "config.json")
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else None
    if summary is not None:
        row = result_row(config, summary)
    else:
        row = flatten_config(config)
        metrics = read_metrics(run_dir)
        if metrics:
            last = metrics[-1]
            row.update({k: v for k, v in last.items() if k.startswith(("train_", "val_")) or k == "wall_s"})
            row["steps"] = last.get("step")
    when = _mtime(run_dir / "metrics.jsonl") or _mtime(run_dir / "config.json")
    row.update(status=dir_status(run_dir, pid), source="unrecorded" if summary is not None else "in progress",
               run_dir=str(run_dir), recorded_at=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when / 1e9)))
    return row


def _filter(rows: list[dict], where: str | None, known: list[str]) -> list[dict]:
    """``rows`` matching ``where``, evaluated by SQLite in memory on the same SQL as the store's."""
    if not where or not where.strip():
        return rows
    sql, params = parse_where(where, known)
    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"CREATE TABLE t ({', '.join(quote(k) for k in known)}, _i INTEGER)")
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * (len(known) + 1))})",
                        [[_sql_value(r.get(k)) for k in known] + [i] for i, r in enumerate(rows)])
        keep = [i for (i,) in con.execute(f"SELECT _i FROM t WHERE {sql}", params)]
    finally:
        con.close()
    return [rows[i] for i in keep]


def _sql_value(v):
    return v if v is None or isinstance(v, (int, float, str)) else json.dumps(v)


def columns_of(records: list[dict]) -> dict[str, list]:
    """Metric records as columns: ``{"step": [...], "wall_s": [...], "train_loss": [...], ...}``."""
    names = ["step", "wall_s", *[m for m in CURVE_METRICS if any(m in r for r in records)]]
    return {n: [r.get(n) for r in records] for n in names}


def group_curves(runs: list[dict], group: str) -> list[dict]:
    """Per value of ``group``: at each step, the mean of every curve over the runs of that value
    and its 95% confidence band (``lo``, ``hi``), and how many runs had the step (``n``)."""
    by_value: dict[str, list[dict]] = {}
    for r in runs:
        by_value.setdefault(json.dumps(r["config"].get(group)), []).append(r)
    out = []
    for value, members in by_value.items():
        steps = sorted({s for r in members for s in r["curves"]["step"] if s is not None})
        curves: dict = {"step": steps}
        for metric in CURVE_METRICS:
            if not any(metric in r["curves"] for r in members):
                continue
            at = [dict(zip(r["curves"]["step"], r["curves"].get(metric, []))) for r in members]
            mean, lo, hi = [], [], []
            for s in steps:
                vals = [a[s] for a in at if a.get(s) is not None]
                m, ci = mean_ci(vals) if vals else (None, 0.0)
                mean.append(m)
                lo.append(None if m is None else m - ci)
                hi.append(None if m is None else m + ci)
            curves[metric] = {"mean": mean, "lo": lo, "hi": hi}
        n_at = [sum(s in r["curves"]["step"] for r in members) for s in steps]
        out.append({"value": json.loads(value), "n": len(members), "keys": [r["key"] for r in members],
                    "curves": curves, "n_at_step": n_at})
    return out
