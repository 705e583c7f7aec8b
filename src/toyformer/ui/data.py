"""What the results browser reads: the results store, opened read-only, and the run directories
under a runs folder (runs still training, or finished but not recorded, and tune directories).
Nothing here writes.

A run is named by a *key*: the store row's id (``"12"``) for a recorded run, ``"d:PATH"`` (PATH
relative to the runs folder) for a run directory without a row. Rows of both kinds have the
store's columns (dotted config fields, final metrics) plus ``key`` and ``status``: ``recorded``,
``training`` (its lock is held by a live process), ``stopped`` (started, not finished, no
writer) or ``unrecorded`` (finished, no row). A shown ``test_exact_match`` brings its ``test_n``
and 95% interval (``intervals``).

>>> source = Source("runs/results.sqlite", "runs")                        # doctest: +SKIP
>>> source.table("model.d_model >= 64", ["task.name", "test_token_acc"])   # doctest: +SKIP
{'columns': ['key', 'status', 'task.name', 'test_token_acc'], 'rows': [['3', 'recorded', 'reverse', 1.0], ...]}
>>> source.keys("task.name = 'sort'")                                        # doctest: +SKIP
{'keys': ['d:sort-live', '12', '9'], 'count': 3}
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from toyformer.errors import ConfigError
from toyformer.experiments.store.rows import flatten_config
from toyformer.experiments.store.store import TABLE, ResultsStore, quote
from toyformer.experiments.store.where import parse_where
from toyformer.run.directory import read_metrics
from toyformer.ui import intervals
from toyformer.ui.curves import SETTINGS, columns_of, differing, group_curves
from toyformer.ui.folders import dir_row, dir_status, mtime, read, walk, writer_pid
from toyformer.ui.frame import NAME, Frame, Query, sql_value
from toyformer.ui.mirror import Mirror

SCAN_TTL_S = 2.0  # the runs folder is walked again at most this often
FINAL_METRICS = ("test_token_acc", "test_exact_match", "test_n", "test_exact_match_lo", "test_exact_match_hi",
                 "test_loss", "train_loss", "val_token_acc", "val_exact_match", "solved", "solved_at_step",
                 "solved_at_s", "steps", "wall_s", "params")


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
        self.mirror = Mirror(self.store)
        self.frame = Frame(self.mirror)  # every run of the table, store rows and run directories, in SQL
        self.runs = Path(runs).resolve() if runs is not None else None
        self._lock = threading.Lock()
        self._scanned: tuple[float, list[DirRun], list[Path]] = (-1.0, [], [])
        self._dir_rows: dict[Path, DirRun] = {}
        self._walk_lock, self._walking = threading.Lock(), False
        self._listings: dict = {}  # the runs folder's folders as the last walk listed them (folders.walk)
        self._recorded_dirs: tuple = (None, set())  # (the mirror's version, its rows' run directories)

    # --- the store --------------------------------------------------------------------------
    def store_columns(self) -> list[str]:
        """The store's plain columns (and the test exact match's interval: ``intervals``)."""
        if self.store is None or not self.store.path.is_file():
            return []
        return self.mirror.plain_columns()

    def fields(self) -> list[str]:
        """Every field a filter, a column or a group may name: the store's columns, then those
        only unrecorded runs have, then ``key`` and ``status``."""
        names = dict.fromkeys(self.store_columns())
        for d in self.scan():
            names.update(dict.fromkeys(d.row))
        return ["key", "status", *[n for n in names if n not in ("key", "status")]]

    def store_row(self, row_id: int) -> dict | None:
        if self.store is None or not self.store_columns():  # no store: no columns
            return None
        with self.store._session() as con:
            cur = con.execute(f"SELECT * FROM {TABLE} WHERE id = ?", (row_id,))
            found = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], found)) if found else None

    def select(self, sql: str, params=()) -> list[tuple]:
        """``sql`` on the in-memory copy of the store's plain columns (``mirror``)."""
        return self.mirror.select(sql, params) if self.store_columns() else []

    def keys_of_dirs(self) -> dict[str, str]:
        """``run directory -> key`` of every recorded row (replica 0 of a replica run: ``RUN``)."""
        if "run_dir" not in self.store_columns():
            return {}
        out = {}
        for row_id, run_dir, replica in self.select(f"SELECT id, run_dir, replica FROM {TABLE} "
                                                     "WHERE run_dir IS NOT NULL ORDER BY id"):
            out[run_dir] = str(row_id)
            if replica == 0 and Path(run_dir).parent.name == "replicas":
                out.setdefault(str(Path(run_dir).parent.parent), str(row_id))
        return out

    # --- the runs folder --------------------------------------------------------------------
    def scan(self) -> list[DirRun]:
        """The run directories under the runs folder without a row (cached for ``SCAN_TTL_S``)."""
        return self._walk()[0]

    def tune_dirs(self) -> list[Path]:
        """The tune directories under the runs folder (walked with the run directories)."""
        return self._walk()[1]

    def _walk(self) -> tuple[list[DirRun], list[Path]]:
        """The last listing; walked again when older than ``SCAN_TTL_S``: in a background thread
        when there is one to serve meanwhile (so a request never waits for a walk but the first)."""
        if self.runs is None or not self.runs.is_dir():
            return [], []
        with self._lock:
            when, found, tunes = self._scanned
            if time.monotonic() - when < SCAN_TTL_S:
                return found, tunes
            if when >= 0:
                if not self._walking:
                    self._walking = True
                    threading.Thread(target=self._walk_now, daemon=True).start()
                return found, tunes
        return self._walk_now()

    def _walk_now(self) -> tuple[list[DirRun], list[Path]]:
        with self._walk_lock:  # one walk at a time
            try:
                # only from _walk, with a runs folder
                run_dirs, tunes = walk(cast(Path, self.runs), self._recorded(), self._listings)
                found = [d for d in map(self._dir_run, run_dirs) if d is not None]
                with self._lock:
                    self._dir_rows = {d.run_dir: d for d in found}
                    self._scanned = (time.monotonic(), found, tunes)
                return found, tunes
            finally:
                self._walking = False

    def _recorded(self) -> set[str]:
        """The run directories the store has rows for (read again only from a new copy of it)."""
        columns = self.store_columns()  # the copy made again first, if the store changed
        version = self.mirror.version if columns else None
        if self._recorded_dirs[0] != version:
            found = {d for (d,) in self.select(f"SELECT run_dir FROM {TABLE} WHERE run_dir IS NOT NULL")}
            self._recorded_dirs = (version, found)
        return self._recorded_dirs[1]

    def _dir_run(self, run_dir: Path) -> DirRun | None:
        stamp = (mtime(run_dir / "metrics.jsonl"), mtime(run_dir / "summary.json"), writer_pid(run_dir))
        old = self._dir_rows.get(run_dir)
        if old is not None and old.stamp == stamp:
            return old
        try:
            row = dir_row(run_dir, stamp[2])
        except (ConfigError, OSError):
            return None  # being written, or damaged: left out of the listing
        assert self.runs is not None  # a walk is made only with a runs folder
        key = "d:" + run_dir.relative_to(self.runs).as_posix()
        row["key"] = key
        return DirRun(key, run_dir, row, stamp)

    # --- runs by key ------------------------------------------------------------------------
    def rows(self, where: str | None = None, columns: list[str] | None = None) -> list[dict]:
        """Every run matching ``where`` (the ``--where`` language): the unrecorded run
        directories first, then the store's rows, newest first. ``columns``: the store's columns
        to read (default: all plain ones); with ``test_exact_match``, its n and interval."""
        known = self.fields()
        out = filter_rows([d.row for d in self.scan()], where, known)
        store_columns = self.store_columns()
        if store_columns:
            chosen = store_columns if columns is None else [c for c in _with_interval(columns) if c in store_columns]
            chosen = ["id", *[c for c in chosen if c != "id"]]
            found = self._store_rows(where, known, chosen)
            out += [{"key": str(r[0]), "status": "recorded", **dict(zip(chosen, r))} for r in found]
        return out

    def _store_rows(self, where: str | None, known: list[str], chosen: list[str]) -> list[tuple]:
        """The store's rows matching ``where``, newest first, as tuples of ``chosen`` (``id``
        first). The same SQL as ``toyformer results --where``, on the in-memory copy."""
        sql, params = parse_where(where, known) if where and where.strip() else ("1", [])
        if '"status"' in sql or '"key"' in sql:  # fields the store has not: filter its rows in memory
            every = self._store_rows(None, known, self.store_columns())
            rows = [{"key": str(r[0]), "status": "recorded", **dict(zip(self.store_columns(), r))} for r in every]
            return [tuple(r.get(c) for c in chosen) for r in filter_rows(rows, where, known)]
        try:
            return self.select(f"SELECT {', '.join(map(quote, chosen))} FROM {TABLE} WHERE {sql} ORDER BY id DESC",
                                params)
        except sqlite3.OperationalError as exc:
            if "no such column" in str(exc):  # a field only unrecorded runs have
                return []
            raise ConfigError(f"where={where!r}: {exc}") from None

    def warm(self) -> None:
        """Walk the runs folder and make the runs table (``frame``) now, as the server starts, so
        that the first page does not wait for it; a failure is left for the page to report."""
        try:
            self.framed(lambda q: None)
        except (ConfigError, OSError, sqlite3.Error):  # the page asks again, and shows it
            pass

    def framed(self, fn):
        """``fn(query)`` on every run in one SQL table (``frame``; ``query``: a ``frame.Query``),
        made current with the store and the runs folder's last walk."""
        return self.frame.use(self.scan(), fn)

    def table(self, where: str | None, columns: list[str] | None = None) -> dict:
        """``rows(where)`` as a compact table of ``key``, ``status`` and ``columns`` (and, with
        ``test_exact_match``, ``test_n`` and its interval's ``_lo`` and ``_hi``)."""
        columns = [c for c in (columns or []) if c not in ("key", "status")]
        cols = ["key", "status", *_with_interval(columns)]

        def answer(q: Query) -> dict:
            cond, params = q.where(where)
            rows = q.rows(f"SELECT {', '.join(map(q.column, cols))} FROM {NAME} WHERE {cond} ORDER BY {q.order()}",
                          params, where)
            return {"columns": cols, "rows": [list(r) for r in rows], "count": len(rows)}
        return self.framed(answer)

    def keys(self, where: str | None) -> dict:
        """The keys of the runs matching ``where``, in the table's order."""
        def answer(q: Query) -> dict:
            cond, params = q.where(where)
            rows = q.rows(f"SELECT \"key\" FROM {NAME} WHERE {cond} ORDER BY {q.order()}", params, where)
            return {"keys": [k for (k,) in rows], "count": len(rows)}
        return self.framed(answer)

    def resolve(self, key: str) -> tuple[Path, dict | None]:
        """The run directory of ``key`` and its store row (None for an unrecorded run); RunGone
        when the key names no run or its directory was removed."""
        run_dir: Path | None
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
        config = read(run_dir / "config.json", RunGone)
        summary = read(run_dir / "summary.json", RunGone) if (run_dir / "summary.json").is_file() else {}
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
        """The selected runs' curves, their config (``differing``: the keys that differ), their
        final metrics, and with ``group`` (a config field, or ``*settings``: every setting but the
        seed) the mean and 95% band of each curve per group."""
        if not keys:
            raise ConfigError("select at least one run to compare")
        runs, errors = [], []
        for key in dict.fromkeys(keys):
            try:
                runs.append(self._compared(key))
            except RunGone as exc:
                errors.append(str(exc))
        configs = [r["config"] for r in runs]
        result = {"runs": runs, "differing": differing(configs), "errors": errors, "group": group, "groups": []}
        if group:
            names = list(dict.fromkeys(k for c in configs for k in c))
            if group != SETTINGS and runs and all(group not in c for c in configs):
                raise ConfigError(f"group field {group!r} is not a config field of these runs; allowed: "
                                  f"{SETTINGS}, {', '.join(names)}")
            result["groups"] = group_curves(runs, group)
        return result

    def _compared(self, key: str) -> dict:
        run_dir, row = self.resolve(key)
        config = flatten_config(read(run_dir / "config.json", RunGone))
        summary = read(run_dir / "summary.json", RunGone) if (run_dir / "summary.json").is_file() else {}
        final = intervals.add_interval({m: summary.get(m) for m in FINAL_METRICS}, summary) if summary else {}
        label = (row or {}).get("point") or run_dir.name
        return {"key": key, "label": f"#{key} {label}" if key.isdigit() else label, "config": config,
                "final": final or {m: None for m in FINAL_METRICS}, "curves": columns_of(read_metrics(run_dir))}


def _with_interval(columns: list[str]) -> list[str]:
    """``columns``, and after them ``test_n`` and the interval when ``test_exact_match`` is one."""
    return [*columns, *[c for c in intervals.EXTRA if intervals.METRIC in columns and c not in columns]]


def filter_rows(rows: list[dict], where: str | None, known: list[str]) -> list[dict]:
    """``rows`` matching ``where``, evaluated by SQLite in memory on the same SQL as the store's."""
    if not where or not where.strip():
        return rows
    sql, params = parse_where(where, known)
    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"CREATE TABLE t ({', '.join(quote(k) for k in known)}, _i INTEGER)")
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * (len(known) + 1))})",
                        [[sql_value(r.get(k)) for k in known] + [i] for i, r in enumerate(rows)])
        keep = [i for (i,) in con.execute(f"SELECT _i FROM t WHERE {sql}", params)]
    finally:
        con.close()
    return [rows[i] for i in keep]
