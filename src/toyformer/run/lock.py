"""One writer per directory: an exclusive lock on ``DIR/.lock`` while a process writes a run
(``training.train``, ``training.train_replicas``) or a sweep (``sweep()``).

Two processes writing one run directory would interleave checkpoints and metrics; the second
one is refused instead, with a one-line ``DirectoryLocked`` error (a ``ConfigError``) naming the
directory and the holder's pid, before it writes anything. The lock is ``flock`` on the file:
the kernel releases it when its holder exits, however it exits (SIGKILL included), so a crash
never leaves a directory locked. The file itself stays (removing it would let two processes lock
two different files of one name); an empty or stale pid in it means nothing, the lock is what
counts.

>>> with hold("runs/x"):            # doctest: +SKIP
...     ...                         # another process's hold("runs/x") raises DirectoryLocked
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

from toyformer.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is not taken there
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"


class DirectoryLocked(ConfigError):
    """The directory is being written by another process (or by another writer in this one)."""


@contextmanager
def hold(directory: str | Path, what: str = "run directory"):
    """Hold ``directory``'s lock for the ``with`` block; ``directory`` must exist. Raises
    ``DirectoryLocked`` at once when another process holds it (no waiting: two writers of one
    directory are a mistake to report, not a queue)."""
    directory = Path(directory)
    if fcntl is None:
        yield
        return
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: held elsewhere
        holder = _holder(fd)
        os.close(fd)
        who = f"process {holder}" if holder else "another process"
        raise DirectoryLocked(f"{what} {str(directory)!r} is being written by {who}; "
                              "wait for it to finish or stop it") from None
    try:
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # a full disk: the lock holds without the pid (the next write names the file it fails on)
            pass
        yield
    finally:
        os.ftruncate(fd, 0)  # a reader racing the next holder sees no pid rather than ours
        os.close(fd)  # releases the lock


def _holder(fd: int) -> int | None:
    """The pid written in the lock file (the holder writes it right after locking: wait briefly)."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return None
