"""Where a sweep's runs execute: in this process, in N local processes, or on a Dask cluster.

An executor runs ``fn(**kwargs)`` for each job and yields ``(index, result, error)`` as jobs
finish (``error`` is the exception's one-line text, or None); one failing job never stops the
others (a job whose run directory another process is writing fails alone, ``DirectoryLocked``;
any other ``ConfigError`` stops the sweep). ``fn`` must be a module-level function (it is pickled
by reference).

- ``InProcess``: one after another, here (simplest, easiest to debug).
- ``Processes(n)``: a ``ProcessPoolExecutor`` started by ``forkserver`` (Linux; ``spawn``
  elsewhere), never by a fork of a process holding torch threads; each worker uses
  ``max(1, cores // n)`` torch threads (or ``threads``) so the workers do not oversubscribe the
  CPU. The workers die with the process that started them, however it ends (SIGKILL included):
  a worker left training would write points that nobody records, and the forkserver, which
  exits only when the last worker has gone, would stay with it.
- ``DaskCluster(address)``: submits to a Dask distributed scheduler (``tcp://host:8786``); the
  results come back to this process, which writes the results store.

>>> for i, summary, error in Processes(2).run(run_point, jobs):     # doctest: +SKIP
...     print(i, error or summary["test_token_acc"])
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterator

from toyformer.errors import ConfigError
from toyformer.run.lock import DirectoryLocked


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _start_worker(threads: int, parent: int) -> None:
    """A worker's initializer: its torch threads, and death with ``parent`` (the sweep's pid)."""
    import torch

    torch.set_num_threads(threads)
    die_with(parent)


def die_with(pid: int) -> None:
    """Kill this process (SIGKILL) as soon as process ``pid`` exits.

    A forkserver worker's parent is the forkserver, not the sweep, so ``PR_SET_PDEATHSIG`` alone
    would never fire (the forkserver outlives the sweep as long as a worker lives). A daemon
    thread waits on a pidfd of ``pid`` instead (Linux: woken at once, no polling), else polls
    whether ``pid`` is alive or this process was re-parented every half second."""
    _pdeathsig()
    ppid = os.getppid()
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (macOS, old kernels), or pid gone already: poll
        fd = None

    def watch():
        if fd is not None:
            select.select([fd], [], [])
        else:
            while os.getppid() == ppid and _alive(pid):
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="toyformer-die-with-parent", daemon=True).start()


def _pdeathsig() -> None:
    """Linux: SIGKILL this process when its parent (the forkserver, or the sweep when spawned) dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _context():
    """``forkserver`` where there is one (Linux): a server process imports toyformer and torch once,
    and every worker is forked from it, clean (no threads, no CUDA); else ``spawn``."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["toyformer.experiments.sweeps.run"])
        return ctx
    return multiprocessing.get_context("spawn")


class InProcess:
    """Run the jobs one by one in this process."""

    description = "in process"

    def run(self, fn: Callable, jobs: list[dict]) -> Iterator[tuple[int, object, str | None]]:
        for i, kwargs in enumerate(jobs):
            try:
                result = fn(**kwargs)
            except DirectoryLocked as exc:
                yield i, None, _error_text(exc)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - one failed point must not stop the sweep
                yield i, None, _error_text(exc)
            else:
                yield i, result, None

    def close(self) -> None:
        pass


class Processes:
    """Run the jobs in ``workers`` local processes, ``threads`` torch threads each."""

    def __init__(self, workers: int, threads: int | None = None):
        if workers < 1:
            raise ConfigError(f"--workers {workers}: allowed: >= 1")
        self.workers = workers
        self.threads = threads or max(1, cores() // workers)
        self.description = f"{workers} local processes, {self.threads} torch thread(s) each"

    def run(self, fn: Callable, jobs: list[dict]) -> Iterator[tuple[int, object, str | None]]:
        if not jobs:
            return
        ctx = _context()
        pool = ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=ctx, initializer=_start_worker,
                                   initargs=(self.threads, os.getpid()))
        try:
            futures = {pool.submit(fn, **kwargs): i for i, kwargs in enumerate(jobs)}
            for future in as_completed(futures):
                exc = future.exception()
                if isinstance(exc, ConfigError) and not isinstance(exc, DirectoryLocked):
                    raise exc
                yield futures[future], None if exc else future.result(), _error_text(exc) if exc else None
        finally:  # stopped (an error, Ctrl-C): do not start the points still queued
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pass


class DaskCluster:
    """Submit the jobs to the Dask distributed scheduler at ``address`` (``tcp://host:8786``).

    Workers need the same toyformer (and torch) installed and a filesystem where the sweep's run
    directories are visible at the same path (the run directories are written by the workers; the
    results store is written here, by the client). Start workers with ``--nthreads 1`` (torch's
    thread count is per process); ``--nworkers K`` runs K of them on one machine."""

    def __init__(self, address: str, timeout_s: float = 30.0):
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--cluster needs the 'distributed' package: pip install 'toyformer[cluster]'") from None
        try:
            self.client = Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--cluster {address!r}: cannot reach a Dask scheduler there ({exc})") from None
        self.address = address
        self.description = f"Dask cluster at {address}"

    def run(self, fn: Callable, jobs: list[dict]) -> Iterator[tuple[int, object, str | None]]:
        from distributed import as_completed as dask_completed

        try:
            futures = {self.client.submit(fn, pure=False, **kwargs): i for i, kwargs in enumerate(jobs)}
            for future in dask_completed(list(futures), loop=self.client.loop):
                i = futures[future]
                if future.status == "error":
                    exc = future.exception()
                    if isinstance(exc, ConfigError) and not isinstance(exc, DirectoryLocked):
                        raise exc
                    yield i, None, _error_text(exc)
                else:
                    yield i, future.result(), None
        finally:
            self.close()

    def close(self) -> None:
        self.client.close()


def make_executor(workers: int = 1, cluster: str | None = None, threads: int | None = None):
    """``DaskCluster(cluster)`` if an address is given, else ``Processes(workers, threads)`` for
    workers > 1, else ``InProcess``. ``threads`` reaches the points themselves (``run_point``)."""
    if cluster:
        if workers != 1:
            raise ConfigError("--workers and --cluster exclude each other: a cluster's workers are its own")
        return DaskCluster(cluster)
    if workers < 1:
        raise ConfigError(f"--workers {workers}: allowed: >= 1")
    return Processes(workers, threads) if workers > 1 else InProcess()
