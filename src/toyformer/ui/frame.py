"""Every run the runs table shows, as one in-memory SQL table ``frame``: the store's rows (from
the ``mirror``'s copy, in the same database) and the run directories without a row, with what
the table asks of each row computed once:

- ``key`` and ``status`` (``data``), as columns a filter may name;
- its place in the table's order: ``__part`` (0: a run directory, in the walk's order; 1: a
  store row, the newest first) and ``__pos``;
- its settings but the seed, numbered (``GROUPS``, in a table beside it, made when a grouping
  first asks): the key of *group by every setting but the seed*; equal numbers, equal settings.

A filter, a sort, a page, a group and the min and max of a column are then each one SQL query
over rows already in memory, not a pass of Python over every run. The table is made again from
the mirror when the store changes (a new copy), and its run-directory rows are replaced when
the walk of the runs folder finds them changed.

>>> frame = Frame(Mirror(ResultsStore("runs/results.sqlite", read_only=True)))   # doctest: +SKIP
>>> frame.use(dirs, lambda q: q.rows("SELECT key FROM frame WHERE " + q.where("seed = 1")[0], [1]))  # doctest: +SKIP
[('d:live',), ('12',), ('3',)]
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3

from toyformer.errors import ConfigError
from toyformer.experiments.store.store import TABLE, quote
from toyformer.experiments.store.where import parse_where
from toyformer.ui.curves import is_setting

NAME = "frame"
HIGHER = ("_token_acc", "_exact_match", "_exact_match_lo", "_exact_match_hi", "solved")
LOWER = ("_loss", "solved_at_step", "solved_at_s", "wall_s")
PART, POS = "__part", "__pos"
RANKS = "__settings"  # rowid -> the number of its settings
GROUPS = f"(SELECT g FROM {RANKS} WHERE r = {NAME}.rowid)"  # SQL: a row's settings, numbered
OWN = ("key", "status")  # the frame's own fields, first in its columns


def direction(field: str) -> str | None:
    """``"max"`` where a higher value is better (accuracies, solved), ``"min"`` where lower is
    (losses, time and steps to solve, wall time), else None (settings, sizes).

    >>> direction("val_exact_match"), direction("test_loss"), direction("model.d_model")
    ('max', 'min', None)
    """
    if "." in field:
        return None
    if field.endswith(HIGHER):
        return "max"
    if field.endswith(LOWER):
        return "min"
    return None


class Frame:
    """The ``frame`` table in the ``mirror``'s database, kept current by ``use``."""

    def __init__(self, mirror) -> None:
        self.mirror = mirror
        self._made: tuple = (None, None)  # (the mirror's version, the run directories' stamp) it was made from
        self._numbered = False  # whether GROUPS numbers the rows as they are now
        self.varying: list[str] = []  # the settings not the same in every row (when numbered)
        self._numeric: dict[str, str | None] = {}  # column -> SQL of its numbers (``numeric``), for the rows now
        self.columns: list[str] = []  # its fields: key, status, the store's columns, those only run directories have

    def use(self, dirs: list, fn):
        """``fn(Query)`` on the table made current with ``dirs`` (the walk's ``DirRun``s), all under
        one lock, so the queries of one answer see the same rows."""
        def run(con, version):
            stamp = tuple((d.key, d.stamp) for d in dirs)
            if self._made[0] != version:
                self._from_store(con)
                self._made = (version, None)
            if self._made[1] != stamp:
                self._put_dirs(con, dirs)
                self._made = (version, stamp)
                self._numbered, self._numeric = False, {}
            return fn(Query(con, list(self.columns), self))
        return self.mirror.use(run)

    def _from_store(self, con: sqlite3.Connection) -> None:
        con.create_function("natural_key", 1, natural, deterministic=True)
        store = [c for c in self.mirror.columns if c not in OWN]
        con.execute(f"DROP TABLE IF EXISTS {NAME}")
        if store:
            con.execute(f"CREATE TABLE {NAME} AS SELECT 1 AS {PART}, -id AS {POS}, CAST(id AS TEXT) AS \"key\", "
                        f"'recorded' AS \"status\", {', '.join(map(quote, store))} FROM {TABLE}")
        else:
            con.execute(f"CREATE TABLE {NAME} ({PART}, {POS}, \"key\", \"status\")")
        self.columns = [*OWN, *store]
        for i, name in enumerate(["", *[c for c in store if direction(c)]]):  # the table's order, and the bests
            con.execute(f"CREATE INDEX __i{i} ON {NAME} ({quote(name) if name else f'{PART}, {POS}'})")

    def _put_dirs(self, con: sqlite3.Connection, dirs: list) -> None:
        con.execute(f"DELETE FROM {NAME} WHERE {PART} = 0")
        have = set(self.columns)
        for d in dirs:
            for name in d.row:
                if name not in have:
                    con.execute(f"ALTER TABLE {NAME} ADD COLUMN {quote(name)}")
                    self.columns.append(name)
                    have.add(name)
        names = self.columns
        con.executemany(f"INSERT INTO {NAME} ({PART}, {POS}, {', '.join(map(quote, names))}) "
                        f"VALUES ({', '.join('?' * (len(names) + 2))})",
                        [[0, i, *[sql_value(d.row.get(c)) for c in names]] for i, d in enumerate(dirs)])

    def number_settings(self, con: sqlite3.Connection) -> None:
        """Number every row by its settings (``GROUPS``; equal settings, equal numbers), once
        after each change of the rows, when a grouping first asks: the settings that vary
        between rows found in one pass, then SQLite's ``dense_rank`` over them (one sort)."""
        if self._numbered:
            return
        names = sorted(c for c in self.columns if is_setting(c))
        tests = ", ".join(f"min({q}) IS max({q}) AND count({q}) IN (0, count(*))" for q in map(quote, names))
        same = con.execute(f"SELECT {tests} FROM {NAME}").fetchone() if names else []  # 1: one value in every row
        self.varying = [c for c, constant in zip(names, same) if not constant]
        con.execute(f"DROP TABLE IF EXISTS {RANKS}")
        con.execute(f"CREATE TABLE {RANKS} (r INTEGER PRIMARY KEY, g INTEGER)")
        con.execute(f"INSERT INTO {RANKS} SELECT rowid, dense_rank() OVER "
                    f"(ORDER BY {', '.join(map(quote, self.varying)) or 'NULL'}) FROM {NAME}")
        self._numbered = True

    def numeric(self, con: sqlite3.Connection, columns: list[str]) -> dict[str, str]:
        """SQL of each of ``columns`` that holds a number in some row, as a number (NULL where a
        row's is not): the column itself where every value is a number or none. What each column
        holds is looked up once per change of the rows."""
        unknown = [c for c in columns if c not in self._numeric]
        if unknown:
            kinds = ", ".join(f"max(typeof({q}) IN ('integer', 'real')), max(typeof({q}) IN ('text', 'blob'))"
                              for q in map(quote, unknown))
            found = con.execute(f"SELECT {kinds} FROM {NAME}").fetchone()
            for c, numbers, other in zip(unknown, found[::2], found[1::2]):
                self._numeric[c] = None if not numbers else number(quote(c)) if other else quote(c)
        return {c: sql for c in columns if (sql := self._numeric[c])}


class Query:
    """One look at the frame (inside ``Frame.use``): its ``columns``, a filter as SQL, rows."""

    def __init__(self, con: sqlite3.Connection, columns: list[str], frame: Frame):
        self.con, self.columns, self.frame = con, columns, frame

    def settings(self) -> str:
        """SQL of each row's settings' number (``GROUPS``), numbering the rows first if needed."""
        self.frame.number_settings(self.con)
        return GROUPS

    def varying(self) -> list[str]:
        """The settings not the same in every run (only these can tell groups apart)."""
        self.frame.number_settings(self.con)
        return list(self.frame.varying)

    def numeric(self, columns: list[str]) -> dict[str, str]:
        """``Frame.numeric`` of the known ``columns``: SQL of each as a number, if it holds one."""
        return self.frame.numeric(self.con, [c for c in columns if c in self.columns])

    def where(self, expr: str | None) -> tuple[str, list]:
        """``expr`` (the ``--where`` language) as SQL on the frame, and its parameters."""
        return parse_where(expr, self.columns) if expr and expr.strip() else ("1", [])

    def column(self, name: str) -> str:
        """``name`` quoted, or NULL for a field no run has."""
        return quote(name) if name in self.columns else "NULL"

    def order(self, sort: str | None = None, descending: bool = False) -> str:
        """ORDER BY terms: the table's order, or ``sort``'s values first (no value last; numbers
        by value, text naturally: ``p2`` before ``p10``), ties in the table's order."""
        if not sort:
            return f"{PART}, {POS}"
        if sort not in self.columns:
            raise ConfigError(f"sort column {sort!r} is unknown; allowed: {', '.join(self.columns)}")
        q = quote(sort)
        natural = f"CASE WHEN typeof({q}) = 'text' THEN natural_key({q}) ELSE {q} END"
        key = q if self.numeric([sort]).get(sort) == q else natural  # numbers only: by value, a cheaper sort
        return f"{q} IS NULL, {key} {'DESC' if descending else 'ASC'}, {PART}, {POS}"

    def rows(self, sql: str, params=(), where: str | None = None) -> list[tuple]:
        """The rows of ``sql``; SQLite's complaint about a filter (``where``) as a ConfigError."""
        try:
            return self.con.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise ConfigError(f"where={where!r}: {exc}") from None


def number(q: str) -> str:
    """SQL: the value of column ``q`` where it is a number, else NULL (text, no value)."""
    return f"CASE WHEN typeof({q}) IN ('integer', 'real') THEN {q} END"


def sql_value(v):
    """A row's value as SQLite keeps it (lists and dicts as JSON text)."""
    return v if v is None or isinstance(v, (int, float, str)) else json.dumps(v)


@functools.lru_cache(maxsize=65536)
def natural(text: str) -> str:
    """A sort key of ``text``: case folded, each run of digits by its value (``p2`` < ``p10``)."""
    return re.sub(r"\d+", lambda m: m.group().zfill(24), text.casefold())
