"""The results store: one SQLite row per finished run, queried into tables and plots.

Every run trained by ``toyformer train``, ``toyformer sweep`` or a recipe is recorded with its
config fields as columns (``task.length``, ``model.d_model``, ``train.lr`` ... quoted, since they
hold dots), its final metrics (``test_token_acc``, ``test_exact_match`` with its size ``test_n`` and
95% interval ``test_exact_match_lo`` .. ``test_exact_match_hi``, ``solved`` as the run's summary
decided it, ``solved_at_step`` ...), where it ran (``machine``, ``git_rev``), its ``run_dir``, ``source`` and
``sweep``. New config fields become new columns on demand, so old rows keep working; when the interval's columns are
added to an older store, its rows that know their ``test_n`` get their interval then (and a store
only read, never written, gets it in ``query``). A run that trains several replicas
records one row per replica (``replica`` 0..``n_replicas``-1); ``(run_dir, replica)`` is unique,
so recording a run again replaces its row and never adds a second one. A process killed between
finishing a run and recording it leaves the run without a row; ``toyformer train --resume``, a
re-run sweep and ``ResultsStore.sync`` (``toyformer results --sync RUNS_DIR``) record such runs.

The database is in WAL mode with a busy timeout, and every write is one ``BEGIN IMMEDIATE``
transaction: parallel writers (worker processes, several sweeps) wait for each other and lose
nothing. Keep the file on a local disk: SQLite's locking is not safe over NFS (a cluster sweep
records from the client, so its workers never open the store).

A file that cannot serve as a store is one line before anything is done (``check``; the commands
that record check their store before they train): not SQLite, an SQLite database of another
program, a newer schema (``PRAGMA user_version`` above ``SCHEMA_VERSION``), damaged (cut short),
locked by another process for longer than ``$TOYFORMER_STORE_WAIT_S`` (60 s; the line names
that process), or, for reading, empty (it holds no runs). See ``health``.

>>> store = ResultsStore("runs/results.sqlite")                                  # doctest: +SKIP
>>> store.record("runs/rev30")                                                    # doctest: +SKIP
>>> store.query(where="task.length >= 20 and model.norm = 'pre'")                 # doctest: +SKIP
[{'id': 1, 'task.length': 30, 'test_token_acc': 1.0, ...}]
>>> print(store.pivot("task.length", "task.vocab_size", "test_token_acc").markdown())  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from toyformer import faults, interrupts
from toyformer.errors import ConfigError
from toyformer.experiments.store import health
from toyformer.experiments.store.health import StoreEmpty, StoreError, quote
from toyformer.experiments.store.rows import INTERVAL, METRICS, git_revision, machine_info, result_row, test_interval
from toyformer.experiments.store.where import parse_where, resolve_field

DEFAULT_PATH = "runs/results.sqlite"
TABLE = "runs"
BASE_COLUMNS = {  # name -> SQL declaration
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT", "recorded_at": "TEXT", "source": "TEXT", "sweep": "TEXT",
    "point": "TEXT", "run_dir": "TEXT", "replica": "INTEGER NOT NULL DEFAULT 0",
    "n_replicas": "INTEGER NOT NULL DEFAULT 1", "git_rev": "TEXT", "machine": "TEXT",
}
JSON_COLUMNS = {"config_json": "TEXT", "summary_json": "TEXT"}  # the whole config and summary
REQUIRED = ("id", "run_dir", "recorded_at", "source")  # columns every toyformer store has
SCHEMA_VERSION = 1  # PRAGMA user_version of the stores this toyformer writes; a newer one is refused
WHAT = "results store"
RECORD_ARGS = ("config", "summary", "run_dir", "source", "sweep", "point", "replica", "n_replicas", "machine",
               "git_rev")  # what ``record_summaries`` takes of each entry: ``record_summary``'s arguments
SUMMARY_SKIP = {"test_by_position", "test_by_length", "diagnosis"}  # big, and already in the run directory


def default_store_path() -> Path:
    """``$TOYFORMER_RESULTS`` if set, else ``runs/results.sqlite`` under the current directory."""
    return Path(os.environ.get("TOYFORMER_RESULTS") or DEFAULT_PATH)


class ResultsStore:
    """A SQLite results database at ``path`` (created on first write). ``read_only``: opened with
    SQLite's ``mode=ro`` and never written (the results browser, ``toyformer ui``, reads it so).
    A run that could not be recorded (``record_run``) is kept in ``failures``; with ``warn`` a
    warning line says so at once (the CLI reports them itself, after the command)."""

    def __init__(self, path: str | Path | None = None, read_only: bool = False, warn: bool = True):
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        self.warn = warn
        self.failures: list[BaseException] = []

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r}{', read_only=True' if self.read_only else ''})"

    def _connect(self, read_only: bool | None = None, peek: bool = False) -> sqlite3.Connection:
        """A connection: read-only (``mode=ro``; immutable on a read-only filesystem, where SQLite
        could not make a WAL file's shared memory), or read-write in WAL mode. ``peek``: read-write
        but with no pragma that writes (a check that must leave a foreign database as it is; its
        closing removes the WAL files a read-only connection would leave behind)."""
        read_only = self.read_only if read_only is None else read_only
        wait = health.wait_s()
        on_read_only_disk = faults.reason_from_disk(self.path) == errno.EROFS
        try:
            if read_only or on_read_only_disk:  # no directory made, no pragma that writes; SQLite refuses writes
                con = sqlite3.connect(health.read_uri(self.path), uri=True, timeout=wait, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
            con.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
            if not (read_only or on_read_only_disk or peek):
                con.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            raise self._said(exc) from None
        except OSError as exc:
            raise (faults.io_error(exc, self.path) or exc) from None  # io_error is None only for a socket's error
        return con

    @contextmanager
    def _session(self, read_only: bool | None = None, peek: bool = False):
        """A connection whose SQLite errors become one line (``health.translate``); closed after."""
        con = self._connect(read_only, peek)
        try:
            yield con
        except sqlite3.Error as exc:
            raise self._said(exc) from None
        finally:
            con.close()

    def _said(self, exc: BaseException) -> BaseException:
        return health.translate(exc, self.path, WHAT, self._remedy(), health.wait_s())

    def _remedy(self) -> str:
        return ("restore it from a copy, or move it away and rebuild it from the run directories: "
                f"toyformer results --sync RUNS_DIR --store {self.path}")

    def check(self, writing: bool = False) -> None:
        """Raise a one-line ``StoreError`` (or the ``OSError`` of a disk that cannot be written)
        unless the file can serve: for reading, a toyformer store that holds runs; for writing
        (``writing=True``) also no file yet or an empty one, on a disk this user can write."""
        problem = health.header_problem(self.path, WHAT)
        if problem:
            raise StoreError(problem)
        if not self.path.exists():
            if writing:
                return self._check_writable()
            raise ConfigError(f"results store {str(self.path)!r} does not exist; train or sweep first, or pass "
                              "store=PATH")
        rows = 0
        if self.path.stat().st_size:
            with self._session(peek=not self.read_only) as con:
                found = health.tables(con)
                version = con.execute("PRAGMA user_version").fetchone()[0]
                damage = con.execute("PRAGMA quick_check(1)").fetchone()[0]
                if damage != "ok":
                    raise StoreError(f"{WHAT} {str(self.path)!r} is damaged ({damage}); {self._remedy()}")
                missing = [c for c in REQUIRED if c not in found.get(TABLE, [])]
                if found and missing:
                    raise StoreError(f"{str(self.path)!r} is not a toyformer {WHAT}: an SQLite database with other "
                                     f"tables ({', '.join(found)}, no {TABLE!r} table with the columns "
                                     f"{', '.join(REQUIRED)}); pass the results.sqlite that toyformer train or sweep "
                                     "wrote")
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{WHAT} {str(self.path)!r} was written by a newer toyformer (schema version "
                                     f"{version}; this one reads up to {SCHEMA_VERSION}); upgrade toyformer")
                rows = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] if found else 0
        if writing:
            return self._check_writable()
        if not rows:
            raise StoreEmpty(f"{WHAT} {str(self.path)!r} holds no runs yet; train or sweep with "
                             f"store={self.path} first")

    def _check_writable(self) -> None:
        reason = faults.reason_from_disk(self.path)
        if reason is None and self.path.exists() and not os.access(self.path, os.W_OK):
            reason = errno.EACCES
        if reason is not None:
            raise OSError(reason, os.strerror(reason), str(self.path))

    # --- writing --------------------------------------------------------------------------------
    def record(self, run, source: str = "api", sweep: str | None = None, point: str | None = None,
               replica: int = 0, n_replicas: int = 1) -> int:
        """Record a finished run (a ``Run`` or a run directory; replica ``replica`` of ``n_replicas``
        for a replicated run); returns the row id."""
        if isinstance(run, (str, Path)):
            from toyformer.files import read_json
            from toyformer.run.directory import read_config

            run_dir = Path(run)
            if not (run_dir / "summary.json").is_file():
                raise ConfigError(f"{str(run_dir)!r} is not a finished run directory (no summary.json)")
            config, summary = read_config(run_dir), read_json(run_dir / "summary.json")
        else:
            config, summary, run_dir = run.config.to_dict(), run.summary, run.run_dir
        return self.record_summary(config, summary, run_dir, source=source, sweep=sweep, point=point,
                                   replica=replica, n_replicas=n_replicas)

    def record_summary(self, config: dict, summary: dict, run_dir: str | Path | None = None, *, source: str = "api",
                       sweep: str | None = None, point: str | None = None, replica: int = 0, n_replicas: int = 1,
                       machine: str | None = None, git_rev: str | None = None) -> int:
        """Record one row from a config dict and a summary dict (one replica's, for a replicated run)."""
        return self._insert([self._row(config, summary, run_dir, source=source, sweep=sweep, point=point,
                                       replica=replica, n_replicas=n_replicas, machine=machine, git_rev=git_rev)])[0]

    def record_summaries(self, entries) -> list[int]:
        """Record many rows in one transaction: all of them or, when one fails, none (an import, a
        benchmark's store). ``entries``: dicts of ``record_summary``'s arguments (``config`` and
        ``summary``, and any of ``run_dir``, ``source``, ``sweep``, ``point``, ``replica``,
        ``n_replicas``, ``machine``, ``git_rev``). Every row is made before the write lock is
        taken, and the lock is held only while they are inserted. Returns the row ids, in order.

        >>> store.record_summaries([{"config": c, "summary": s, "run_dir": d} for c, s, d in runs])  # doctest: +SKIP
        [1, 2, 3]
        """
        rows = []
        for i, entry in enumerate(entries):
            unknown = sorted(set(entry) - set(RECORD_ARGS)) if isinstance(entry, dict) else None
            if unknown is None or unknown or not {"config", "summary"} <= set(entry):
                what = f"unknown key {unknown[0]!r}" if unknown else "not a dict with config and summary"
                raise ConfigError(f"entries[{i}]: {what}; allowed keys: {', '.join(RECORD_ARGS)}")
            rows.append(self._row(**entry))
        return self._insert(rows) if rows else []

    def _row(self, config: dict, summary: dict, run_dir: str | Path | None = None, *, source: str = "api",
             sweep: str | None = None, point: str | None = None, replica: int = 0, n_replicas: int = 1,
             machine: str | None = None, git_rev: str | None = None) -> dict:
        row = {
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": source, "sweep": sweep, "point": point,
            "run_dir": str(Path(run_dir).resolve()) if run_dir is not None else None, "replica": replica,
            "n_replicas": n_replicas, "git_rev": git_rev or git_revision(),
            "machine": machine or machine_info(summary.get("device")),
        }
        row.update(result_row(config, summary))
        row["config_json"] = json.dumps(config)
        row["summary_json"] = json.dumps({k: v for k, v in summary.items() if k not in SUMMARY_SKIP})
        return row

    def _insert(self, rows: list[dict]) -> list[int]:
        """``rows`` in one ``BEGIN IMMEDIATE`` transaction (new columns added in it); their ids."""
        if self.read_only:
            raise ConfigError(f"results store {str(self.path)!r} was opened read-only; it records nothing")
        with self._session() as con, interrupts.critical():  # a Ctrl-C waits for the transaction
            try:
                con.execute("BEGIN IMMEDIATE")  # take the write lock now: the column check and the inserts are one step
                self._create(con)
                have = set(self._columns(con))
                for name in dict.fromkeys(n for row in rows for n in row):
                    if name not in have:
                        con.execute(f"ALTER TABLE {TABLE} ADD COLUMN {quote(name)}")
                if INTERVAL[0] not in have and "test_n" in have:  # an older store: its rows get their interval now
                    self._fill_intervals(con)
                ids = []
                for row in rows:
                    names = list(row)
                    cur = con.execute(f"INSERT OR REPLACE INTO {TABLE} ({', '.join(map(quote, names))}) "
                                      f"VALUES ({', '.join('?' * len(names))})", [row[n] for n in names])
                    ids.append(cur.lastrowid)
                con.execute("COMMIT")
                return ids
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    @staticmethod
    def _create(con) -> None:
        cols = {**BASE_COLUMNS, **METRICS, **JSON_COLUMNS}
        decl = ", ".join(f"{quote(n)} {t}" for n, t in cols.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({decl}, UNIQUE (run_dir, replica))")
        if con.execute("PRAGMA user_version").fetchone()[0] == 0:
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    def _fill_intervals(con) -> None:
        cur = con.execute(f"SELECT id, test_exact_match, test_n FROM {TABLE} WHERE test_n > 0 AND "
                          f"test_exact_match IS NOT NULL AND {quote(INTERVAL[0])} IS NULL")
        for row_id, value, n in cur.fetchall():
            con.execute(f"UPDATE {TABLE} SET {quote(INTERVAL[0])} = ?, {quote(INTERVAL[1])} = ? WHERE id = ?",
                        (*test_interval({"test_exact_match": value, "test_n": n}), row_id))

    @staticmethod
    def _columns(con) -> list[str]:
        return [r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")]

    # --- reading --------------------------------------------------------------------------------
    def columns(self) -> list[str]:
        """Every column name (fields that ``where``, ``pivot`` and ``query`` accept)."""
        if not self.path.is_file():
            return []
        with self._session() as con:
            return self._columns(con)

    def recorded_run_dirs(self) -> set[str]:
        """The (resolved) run directories that already have a row."""
        return {run_dir for run_dir, _ in self.recorded()}

    def recorded(self) -> dict[tuple[str, int], tuple[str | None, str | None]]:
        """``(run_dir, replica) -> (sweep, point)`` of every row with a run directory: the unique
        key of a row, and what it was recorded as part of."""
        if "run_dir" not in self.columns():
            return {}
        with self._session() as con:
            cur = con.execute(f"SELECT run_dir, replica, sweep, point FROM {TABLE} WHERE run_dir IS NOT NULL")
            return {(r[0], r[1]): (r[2], r[3]) for r in cur}

    def has(self, run_dir: str | Path, replica: int = 0) -> bool:
        """Whether replica ``replica`` of the run in ``run_dir`` has a row."""
        if "run_dir" not in self.columns():
            return False
        with self._session() as con:
            cur = con.execute(f"SELECT 1 FROM {TABLE} WHERE run_dir = ? AND replica = ?",
                              (str(Path(run_dir).resolve()), replica))
            return cur.fetchone() is not None

    def sync(self, runs_dir: str | Path) -> int:
        """Record every finished run under ``runs_dir`` that has no row (a process killed between
        finishing a run and recording it); returns the number of rows added. Idempotent: a second
        sync adds nothing. See ``toyformer.experiments.store.sync``."""
        from toyformer.experiments.store.sync import sync

        return sync(self, runs_dir)

    def query(self, where: str | None = None, columns: list[str] | None = None) -> list[dict]:
        """Rows (dicts keyed by column) matching ``where``, e.g. ``"task.length >= 200 and model.norm = 'pre'"``,
        oldest first. ``columns`` picks columns (dotted or unique leaf names); default: all but the JSON ones."""
        known = self.columns()
        if not known:
            return []
        sql_where, params = parse_where(where, known) if where else ("1", [])
        chosen = [resolve_field(c, known) for c in columns] if columns else [c for c in known if c not in JSON_COLUMNS]
        with self._session() as con:
            cur = con.execute(f"SELECT {', '.join(map(quote, chosen))} FROM {TABLE} WHERE {sql_where} ORDER BY id",
                              params)
            rows = [dict(zip(chosen, r)) for r in cur.fetchall()]
        if not columns:  # a store never written since the interval's columns came: computed here
            for r in rows:
                if r.get(INTERVAL[0]) is None:
                    r.update(zip(INTERVAL, test_interval(r)))
        return rows

    def pivot(self, rows: str | list[str], cols: str | list[str] | None = None, value: str = "test_token_acc",
              where: str | None = None):
        """A ``PivotTable``: ``value`` by ``rows`` x ``cols`` (mean ± 95% CI where several runs share a cell)."""
        from toyformer.experiments.store.table import pivot

        return pivot(self.query(where), rows, cols, value, known=self.columns())


def as_store(store) -> ResultsStore | None:
    """A ``ResultsStore`` from a store, a path, or None (no recording)."""
    if store is None or isinstance(store, ResultsStore):
        return store
    return ResultsStore(store)


def record_run(store, run, source: str, sweep: str | None = None, point: str | None = None,
               replica: int = 0, n_replicas: int = 1, if_missing: bool = False) -> int | None:
    """Record ``run`` (a ``Run`` with a run directory) in ``store``; a store that cannot take it
    (locked past the wait, damaged) never loses the training result: it is noted in
    ``store.failures`` (with ``store.warn``, one warning line says so) and None is returned. A
    failing disk (full, read-only) raises its ``OSError``: whatever came next would fail too; the
    run is kept in its directory, and ``train(..., resume=True)`` records it. A replicated run
    records each replica's ``Run``:
    ``record_run(store, runs[i], "train", replica=i, n_replicas=len(runs))``.
    ``if_missing``: only when the run has no row yet (a run that had finished before: its row, if
    any, stays as it was recorded)."""
    store = as_store(store)
    if store is None or getattr(run, "run_dir", None) is None:
        return None
    try:
        if if_missing and store.has(run.run_dir, replica):
            return None
        return store.record(run, source=source, sweep=sweep, point=point, replica=replica, n_replicas=n_replicas)
    except (StoreError, sqlite3.Error) as exc:
        disk = faults.io_error(exc, store.path) if isinstance(exc, sqlite3.Error) else None
        if disk is not None:  # SQLite's "disk is full" or "readonly": the disk's OSError goes on up
            raise disk from None
        warn_not_recorded(store, exc)
        return None


def warn_not_recorded(store: ResultsStore, exc: BaseException) -> None:
    """Note a run that could not be recorded (``store.failures``); with ``store.warn``, say so."""
    store.failures.append(faults.io_error(exc, store.path) or exc)
    if store.warn:
        print(f"toyformer: warning: run not recorded in results store {str(store.path)!r}: {exc}", file=sys.stderr)
