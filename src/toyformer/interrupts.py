"""Ctrl-C (SIGINT) and SIGTERM: stop at a safe point, never inside a write; a second one exits at once.

``installed()`` (the CLI runs every command inside it) replaces Python's handlers of both
signals. The first signal raises ``Interrupted`` where the program is, unless it is inside a
``critical()`` section (an atomic file write, a results-store transaction): then as that section
ends, so the file is whole, its old or its new version, and the temporary file is gone. Training
needs no more than that: every file of a run is written atomically and the checkpoint on disk is
the last one written, so stopping between two writes loses only the steps since that checkpoint.
A second signal while the first is still being handled exits at once with ``128 + signal``,
after removing the temporary files of the writes under way (``temporary``).

Worker processes (a sweep's or a tune's, ``worker()``) ignore SIGINT, which a terminal sends to
the whole process group, and leave stopping to their parent: it sends them SIGTERM, which stops
the job they run at its next safe point. An idle worker does not exit then: it may be waiting on
its pool's queue while holding the queue's lock, and a process that dies holding that lock blocks
every other worker of the pool, and the parent waiting for them, forever. It starts no further
job and leaves when its pool tells it to, as at the end of a sweep.

Before any of that exists, while the command line starts (torch's import takes seconds),
``guard_start()`` holds the signals: ``toyformer/__init__.py`` calls it first thing, before its
heavy imports, and it acts only in the process of the command line itself (``python -m toyformer``
or the ``toyformer`` script; a program that imports toyformer keeps Python's own handlers). A
signal then prints one line and exits with ``128 + signal``: nothing was written yet.

>>> with installed():                     # doctest: +SKIP
...     train(...)                        # Ctrl-C: Interrupted(signal.SIGINT), code 130
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Stopped by a signal (SIGINT or SIGTERM) at a safe point. ``code``: the exit code a shell
    gives a process killed by that signal (130, 143). A ``KeyboardInterrupt``, so that code which
    catches ``Exception`` (one failed point of a sweep) does not swallow it."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum

    @property
    def code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def __str__(self) -> str:
        return f"interrupted by {self.name}"


class _State:
    depth = 0  # critical sections entered (main thread)
    pending: Interrupted | None = None  # a signal that arrived inside one
    stopping = False  # a first signal is being handled: the next one exits at once
    worker = False  # a worker process: SIGTERM outside a job only marks it stopping
    in_job = False
    temps: set[str] = set()  # temporary files of the writes under way


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _handle(signum, frame) -> None:
    if _State.stopping:
        remove_temporaries()
        os._exit(128 + signum)
    _State.stopping = True
    if _State.worker and not _State.in_job:  # idle: no job to stop, and no exit here (see above)
        return
    exc = Interrupted(signum)
    if _State.depth:
        _State.pending = exc
        return
    raise exc


@contextmanager
def installed():
    """Handle SIGINT and SIGTERM as above for the ``with`` block (the previous handlers come
    back after it). Outside the main thread, where Python allows no handler, it does nothing."""
    if not _main_thread():
        yield
        return
    before = {s: _after_start(s, signal.getsignal(s)) for s in SIGNALS}
    _State.stopping, _State.pending = False, None
    for s in SIGNALS:
        signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        _State.stopping, _State.pending = False, None


def worker() -> None:
    """Make this process a worker: SIGINT ignored, SIGTERM stops the running job at a safe point
    (an idle worker starts no further job)."""
    _State.worker = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _handle)


@contextmanager
def job():
    """A worker's job: SIGTERM raises ``Interrupted`` inside it. A worker told to stop starts no
    further job (its pool may have handed it one already): the job raises at once."""
    if _State.stopping:
        raise Interrupted(signal.SIGTERM)
    _State.in_job = True
    try:
        yield
    finally:
        _State.in_job = False


@contextmanager
def critical():
    """A section a signal never cuts: one that arrives inside it is raised when the section ends
    (when it ends without an error of its own). Nested sections count as one."""
    if not _main_thread():
        yield
        return
    _State.depth += 1
    try:
        yield
    except BaseException:
        _State.depth -= 1
        raise
    _State.depth -= 1
    if _State.depth == 0 and _State.pending is not None:
        exc, _State.pending = _State.pending, None
        raise exc


def pending() -> Interrupted | None:
    """The signal that arrived inside a section that then failed (so it was not raised), if any;
    taken: a later section does not raise it again."""
    exc, _State.pending = _State.pending, None
    return exc


@contextmanager
def temporary(path: str):
    """``path`` is a temporary file of a write under way: removed if a second signal exits at once."""
    _State.temps.add(str(path))
    try:
        yield
    finally:
        _State.temps.discard(str(path))


def remove_temporaries() -> None:
    for path in list(_State.temps):
        try:
            os.unlink(path)
        except OSError:
            pass


# --- while the command line starts --------------------------------------------------------------

STARTING = "toyformer: interrupted while starting, before anything was written\n"
COMMAND = "toyformer"


def guard_start() -> None:
    """In the process of the command line only: until ``installed()`` takes over, SIGINT and
    SIGTERM print ``STARTING`` and exit at once with ``128 + signal`` (instead of a
    ``KeyboardInterrupt`` traceback from inside torch's import)."""
    if _main_thread() and command_line():
        for s in SIGNALS:
            if signal.getsignal(s) in (signal.default_int_handler, signal.SIG_DFL):  # never one set by a program
                signal.signal(s, _starting)


def command_line() -> bool:
    """True in the process started as ``python [options] -m toyformer`` (while its package is
    being located, Python sets ``sys.argv[0]`` to ``-m``) or by the ``toyformer`` console script
    (its ``__main__``: a file of that name)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-m":
        orig = list(getattr(sys, "orig_argv", []))
        for i, arg in enumerate(orig[1:], 1):
            if arg.startswith("-m"):  # the interpreter's options come first: the first -m is its own
                module = arg[2:] or (orig[i + 1] if i + 1 < len(orig) else "")
                return module.split(".")[0] == COMMAND
        return False
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    return bool(argv0) and script == argv0 and os.path.basename(argv0) in (COMMAND, f"{COMMAND}-script.py")


def _starting(signum, frame) -> None:
    os.write(2, STARTING.encode())  # not print: no buffer to flush, no lock to take inside a handler
    os._exit(128 + signum)


def _after_start(signum: int, handler):
    """The handler to restore after ``installed()``: Python's own in place of the start-up guard,
    which would say "while starting" at the exit."""
    if handler is _starting:
        return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    return handler
