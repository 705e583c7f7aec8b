"""What can be wrong with an SQLite file toyformer opens (the results store, a tune's study), in one line.

A file given as a store may be something else (not SQLite at all, or an SQLite database of
another program), written by a newer toyformer, cut short (truncated by a full disk or a copy
that stopped), locked by another process for longer than we wait, or empty. Each is a
``StoreError`` (a ``ConfigError``: exit code 2 from the CLI) naming the file, what is wrong and
what to do; a locked file names the process that holds it (read from ``/proc/locks`` where
there is one). A failed read or write of the disk itself (full, read-only) is the ``OSError`` of
``toyformer.faults`` instead.

>>> header_problem(Path("notes.txt"), "results store")                      # doctest: +SKIP
"results store 'notes.txt' is not an SQLite database (it begins 'hello wo'); ..."
"""

from __future__ import annotations

import errno
import os
import sqlite3
import urllib.parse
from pathlib import Path

from toyformer import faults
from toyformer.errors import ConfigError

HEADER = b"SQLite format 3\x00"
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CORRUPT, SQLITE_NOTADB = 5, 6, 11, 26
WAIT_ENV = "TOYFORMER_STORE_WAIT_S"  # seconds to wait for a locked store (default 60)
DEFAULT_WAIT_S = 60.0


class StoreError(ConfigError):
    """A store (or study) file that cannot be used as it is; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process held the file's lock for longer than we waited."""


class StoreEmpty(StoreError):
    """A store that holds no runs (an empty file, or no row yet): nothing to read."""


def wait_s() -> float:
    """How long to wait for a locked store: ``$TOYFORMER_STORE_WAIT_S`` or 60 seconds."""
    text = os.environ.get(WAIT_ENV)
    try:
        value = float(text) if text else DEFAULT_WAIT_S
    except ValueError:
        raise ConfigError(f"${WAIT_ENV}={text!r} is not a number of seconds; allowed: a number >= 0") from None
    if not value >= 0:
        raise ConfigError(f"${WAIT_ENV}={text!r}: allowed: a number >= 0")
    return value


def header_problem(path: Path, what: str) -> str | None:
    """Why ``path`` cannot be an SQLite file (a directory, another kind of file), or None (an
    SQLite file, an empty one, or none yet)."""
    path = Path(path)
    if path.is_dir():
        return (f"{str(path)!r} is not a toyformer {what}: it is a directory; pass a file, e.g. "
                f"{str(path / 'x.sqlite')!r}")
    if not path.exists():
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(len(HEADER))
    except OSError:
        return None  # unreadable: opening it says why
    if head and head != HEADER[:len(head)] or 0 < len(head) < len(HEADER):
        shown = head[:8].decode("ascii", "replace")
        return (f"{str(path)!r} is not a toyformer {what}: not an SQLite database (it begins {shown!r}); pass the "
                "file toyformer wrote, or a path where none is yet")
    return None


def read_uri(path: Path) -> str:
    """The URI that opens ``path`` read-only. On a read-only filesystem SQLite cannot make the
    shared-memory file of a WAL database, so it is opened as immutable there (nobody can write
    it anyway)."""
    uri = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"
    if faults.reason_from_disk(path) == errno.EROFS:
        uri += "&immutable=1"
    return uri


def translate(exc: BaseException, path: Path, what: str, remedy: str, waited_s: float | None = None) -> BaseException:
    """``exc`` from SQLite (directly, or through SQLAlchemy and Optuna) as what the user is told:
    a ``StoreLocked`` naming the holder, a ``StoreError`` for a damaged or foreign file, the
    ``OSError`` of a failed disk; ``exc`` itself when it is none of these."""
    inner = _sqlite_error(exc)
    if inner is None:
        return exc
    failed = faults.io_error(inner, path)
    if failed is not None:
        return failed
    code = (getattr(inner, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(inner).splitlines()[0] if str(inner) else type(inner).__name__
    if code in (SQLITE_BUSY, SQLITE_LOCKED) or "locked" in text:
        held = holders(path)
        by = ", ".join(f"process {pid} ({command_of(pid)})" for pid in held) if held else "another process"
        waited = f" for {waited_s:g} s" if waited_s is not None else ""
        return StoreLocked(f"{what} {str(path)!r} is locked by {by}; waited{waited} and it stayed locked; try again "
                           f"when that process has finished (${WAIT_ENV} sets the wait)")
    if code == SQLITE_NOTADB or "not a database" in text:
        return StoreError(header_problem(path, what) or f"{str(path)!r} is not a toyformer {what}: not an SQLite "
                          f"database ({text}); {remedy}")
    if code == SQLITE_CORRUPT or "malformed" in text:
        return StoreError(f"{what} {str(path)!r} is damaged ({text}: cut short or overwritten); {remedy}")
    return StoreError(f"{what} {str(path)!r}: {text}; {remedy}")


def _sqlite_error(exc: BaseException | None) -> BaseException | None:
    """The sqlite3 error at the root of ``exc`` (Optuna -> SQLAlchemy -> sqlite3), if any."""
    for _ in range(8):
        if exc is None:
            return None
        if isinstance(exc, sqlite3.Error):
            return exc
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return None


def holders(path: Path) -> list[int]:
    """The processes (other than this one) holding a lock on the database file or its WAL and
    shared-memory files, from ``/proc/locks`` (Linux); ``[]`` where that cannot be read."""
    inodes = set()
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            inodes.add(os.stat(f"{path}{suffix}").st_ino)
        except OSError:
            pass
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":  # "->" marks a waiter, not a holder
            continue
        try:
            pid, inode = int(fields[4]), int(fields[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if inode in inodes and pid != os.getpid() and pid not in found:
            found.append(pid)
    return found


def command_of(pid: int) -> str:
    """A process's command line, shortened (``"?"`` when it cannot be read)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(a.decode(errors="replace") for a in argv if a)
    return text if len(text) <= 80 else text[:77] + "..."


def tables(con: sqlite3.Connection) -> dict[str, list[str]]:
    """Every table of an open database and its columns."""
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n: [r[1] for r in con.execute(f"PRAGMA table_info({quote(n)})")] for n in names}


def quote(name: str) -> str:
    """An SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'
