"""An in-memory copy of the results store's plain columns, which the runs table is read from.

The store keeps each run's whole config and summary as JSON beside its columns, so a row is a
few kilobytes and a filter over ten thousand runs reads tens of megabytes. The browser reads the
store once into an in-memory SQLite table of the plain columns (and the test exact match's
``test_exact_match_lo`` / ``_hi``, see ``intervals``), with one ``CREATE TABLE ... AS SELECT``
over the store attached read-only, and answers the table, its filters (the same SQL, on the same
column names and values) and its groups from it. It is made again when the store's files change
(a run recorded: the database or its write-ahead log written). Without a store (none given, or
not written yet) it is an empty in-memory database, which the runs table (``frame``) still uses.

>>> mirror = Mirror(ResultsStore("runs/results.sqlite", read_only=True))   # doctest: +SKIP
>>> mirror.select('SELECT id FROM runs WHERE "task.name" = ?', ["sort"])   # doctest: +SKIP
[(3,), (9,)]
"""

from __future__ import annotations

import sqlite3
import threading

from toyformer.experiments.store.health import read_uri
from toyformer.experiments.store.store import JSON_COLUMNS, TABLE, ResultsStore, quote
from toyformer.ui import intervals
from toyformer.ui.folders import mtime


class Mirror:
    """The store's plain columns in memory, refreshed when the store's files change."""

    def __init__(self, store: ResultsStore | None):
        self.store = store
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._stamp: tuple | None = None
        self.columns: list[str] = []  # the store's plain columns, as in the copy (intervals' too)
        self.version = 0  # counts the copies made (a cache of answers keys on it)

    def _files(self) -> tuple:
        if self.store is None:
            return ()
        path = self.store.path
        return tuple((mtime(p), _size(p)) for p in (path, path.with_name(path.name + "-wal")))

    def _refresh(self) -> None:
        stamp = self._files()
        if stamp == self._stamp and self._con is not None:
            return
        self._stamp = stamp
        con = sqlite3.connect(":memory:", uri=True, check_same_thread=False, isolation_level=None)
        con.create_function("wilson_lo", 2, lambda acc, n: _wilson(acc, n, 0), deterministic=True)
        con.create_function("wilson_hi", 2, lambda acc, n: _wilson(acc, n, 1), deterministic=True)
        plain, extra = [], []
        if self.store is not None and self.store.path.is_file():
            con.execute("ATTACH DATABASE ? AS store", (read_uri(self.store.path),))  # immutable on a read-only disk
            try:
                have = [r[1] for r in con.execute(f"PRAGMA store.table_info({TABLE})")]
                plain = [c for c in have if c not in JSON_COLUMNS and c not in (intervals.LO, intervals.HI)]
                extra = _interval_columns(have) if intervals.METRIC in have else []
                select = ", ".join([quote(c) for c in plain] + extra)
                if plain:
                    con.execute(f"CREATE TABLE {TABLE} AS SELECT {select} FROM store.{TABLE} ORDER BY id")
            finally:
                con.execute("DETACH DATABASE store")
        old, self._con = self._con, con
        self.columns = plain + ([intervals.LO, intervals.HI] if extra else [])
        self.version += 1
        if old is not None:
            old.close()

    def select(self, sql: str, params=()) -> list[tuple]:
        """Rows of ``sql`` on the copy (made again first if the store changed)."""
        with self._lock:
            self._refresh()
            if not self.columns:
                return []
            assert self._con is not None  # _refresh has made the copy
            return self._con.execute(sql, params).fetchall()

    def plain_columns(self) -> list[str]:
        with self._lock:
            self._refresh()
            return list(self.columns)

    def use(self, fn):
        """``fn(connection, version)`` with the copy up to date, holding it for the call: for
        tables made from the copy in the same database (``frame``); ``version`` changes with
        each new copy, which starts with the store's table alone."""
        with self._lock:
            self._refresh()
            return fn(self._con, self.version)


def _size(path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _interval_columns(have: list[str]) -> list[str]:
    """``_lo`` and ``_hi``: the store's columns, else the summary's interval, else Wilson's
    interval of the correct rows ``test_exact_match * test_n`` implies."""
    n = quote(intervals.N) if intervals.N in have else "NULL"
    out = []
    for name, i, fn in ((intervals.LO, 0, "wilson_lo"), (intervals.HI, 1, "wilson_hi")):
        sources = [quote(name)] if name in have else []
        if "summary_json" in have:
            sources.append(f"json_extract(summary_json, '$.test_exact_match_ci95[{i}]')")
        sources.append(f"{fn}({quote(intervals.METRIC)}, {n})")
        out.append(f"COALESCE({', '.join(sources)}) AS {quote(name)}")
    return out


def _wilson(acc, n, i: int):
    row = intervals.complete({intervals.METRIC: acc, intervals.N: n})
    return row.get(intervals.HI if i else intervals.LO)
