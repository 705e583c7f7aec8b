"""A failed read or write, from any library beneath toyformer's I/O, as one ``OSError``.

toyformer writes through Python's own files (``toyformer.files``), safetensors (Rust), SQLite (the
results store, and Optuna's study through SQLAlchemy), matplotlib and Pillow (figures) and PyYAML
(config files). On a full or read-only disk each of them raises its own type:

============================  =====================================================================
library                       what it raises
============================  =====================================================================
Python, PyYAML, matplotlib,   ``OSError(28, 'No space left on device')``
Pillow
safetensors                   ``SafetensorError('Error while serializing: I/O error: No space left
                              on device (os error 28)')``
sqlite3                       ``OperationalError('database or disk is full')``, ``('disk I/O
                              error')``, ``('attempt to write a readonly database')``, ``('unable
                              to open database file')``: the kind in ``sqlite_errorcode``
Optuna (SQLAlchemy)           ``StorageInternalError``, caused by SQLAlchemy's ``OperationalError``,
                              whose ``orig`` is sqlite3's
torch serialisation           ``RuntimeError('... file write failed')``
============================  =====================================================================

``io_error(exc, path)`` turns each into ``OSError(errno, reason, path)``, ``path`` being the file
meant (not a temporary one), and returns None for anything that is not an I/O failure (a
malformed database, a bug). Where a library's words are vague (SQLite's "disk I/O error",
torch's "file write failed") the reason is read from the filesystem itself: read-only, full, or
not writable by this user. Everything above (``toyformer.files``, the CLI) handles only the
``OSError``.

>>> e = io_error(RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"), "w.st")
>>> e.errno, e.strerror, e.filename
(28, 'No space left on device', 'w.st')
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

# SQLite's primary result codes (the low byte of sqlite_errorcode) that mean the disk failed
SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_AUTH = 3, 8, 10, 13, 14, 23
SQLITE_CODES = {SQLITE_FULL: errno.ENOSPC, SQLITE_READONLY: errno.EROFS, SQLITE_PERM: errno.EPERM,
                SQLITE_AUTH: errno.EACCES, SQLITE_IOERR: None, SQLITE_CANTOPEN: None}  # None: ask the filesystem
SQLITE_WORDS = {"database or disk is full": errno.ENOSPC, "attempt to write a readonly database": errno.EROFS,
                "disk i/o error": None, "unable to open database file": None}
OS_ERROR = re.compile(r"os error (\d+)")
TORCH_WRITE = ("file write failed", "pytorchstreamwriter failed", "unexpected pos")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def io_error(exc: BaseException, path: str | Path | None = None) -> OSError | None:
    """``exc`` (or the error that caused it) as ``OSError(errno, reason, path)`` when it is a
    failed read or write; None otherwise. ``path``: the file meant; default the one ``exc`` names."""
    seen = 0
    while exc is not None and seen < 8:  # the chain of causes: Optuna -> SQLAlchemy -> sqlite3
        found = _direct(exc, path)
        if found is not None:
            return found
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return None


def _direct(exc: BaseException, path) -> OSError | None:
    if isinstance(exc, OSError):
        if type(exc).__module__ == "socket":
            return None
        number = exc.errno if exc.errno is not None else errno.EIO  # Pillow: OSError("cannot write ...")
        return OSError(number, exc.strerror or str(exc) or os.strerror(number), _where(path, exc.filename))
    kind = type(exc).__name__
    text = str(exc)
    if kind == "SafetensorError" or "I/O error" in text and OS_ERROR.search(text):
        match = OS_ERROR.search(text)
        if match:
            code = int(match.group(1))
            return OSError(code, os.strerror(code), _where(path, None))
        return None
    if type(exc).__module__ == "sqlite3":
        return _sqlite(exc, path)
    if isinstance(exc, RuntimeError) and any(w in text.lower() for w in TORCH_WRITE):
        code = reason_from_disk(path) or errno.EIO
        return OSError(code, os.strerror(code), _where(path, None))
    return None


def _sqlite(exc: BaseException, path) -> OSError | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        if code & 0xFF not in SQLITE_CODES:
            return None  # busy, locked, corrupt, not a database: the store says what (store/health.py)
        number = SQLITE_CODES[code & 0xFF]
    else:  # built by hand (tests, wrappers): the words say which
        words = str(exc).lower()
        if not any(w in words for w in SQLITE_WORDS):
            return None
        number = next(n for w, n in SQLITE_WORDS.items() if w in words)
    number = number or reason_from_disk(path) or errno.EIO
    return OSError(number, os.strerror(number), _where(path, None))


def reason_from_disk(path: str | Path | None) -> int | None:
    """Why ``path`` cannot be written, asked of its filesystem: ``EROFS`` (mounted read-only),
    ``ENOSPC`` (no free block), ``EACCES`` (not writable by this user), or of this process:
    ``EFBIG`` (a file-size limit, ``ulimit -f``); None when none holds."""
    if path is None:
        return None
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    folder = folder if folder.is_dir() else folder.parent
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if st.f_bavail == 0 or st.f_favail == 0 and st.f_files:
        return errno.ENOSPC
    if not os.access(folder, os.W_OK):
        return errno.EACCES
    try:
        import resource

        if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:  # ulimit -f: files capped
            return errno.EFBIG
    except (ImportError, OSError, ValueError):
        pass
    return None


def _where(path, fallback) -> str | None:
    return str(path) if path is not None else fallback


def is_disk_full(exc: BaseException) -> bool:
    """True for a full disk (or quota, or a file too large for it)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def remedy(exc: OSError) -> str:
    """What to do about a failed write, in a few words, by its errno."""
    if exc.errno in DISK_FULL:
        return "free some space"
    if exc.errno == errno.EROFS:
        return "make that filesystem writable (or write elsewhere)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "make that path writable for this user"
    return "fix the cause"


def describe(exc: OSError) -> str:
    """``'PATH': reason``: the path meant and why, for the one line of the CLI."""
    where = f"{exc.filename!r}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"
