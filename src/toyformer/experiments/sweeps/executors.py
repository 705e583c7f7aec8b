"""Where a sweep's runs execute: in this process, in N local processes, or on a Dask cluster.

An executor runs ``fn(**kwargs)`` for each job and yields ``(index, result, error)`` as jobs
finish (``error`` is the exception's one-line text, or None); one failing job never stops the
others (a job whose run directory another process is writing fails alone, ``DirectoryLocked``),
but bad input (any other ``ConfigError``) and a failing disk (an ``OSError``: full, read-only;
every later job would fail the same way) stop them all, as does Ctrl-C or SIGTERM: the jobs under
way stop at their next safe point (``toyformer.interrupts``), keeping their checkpoints, and the
error is raised here. ``fn`` must be a module-level function (it is pickled by reference).

- ``InProcess``: one after another, here (simplest, easiest to debug).
- ``Processes(n)``: a ``ProcessPoolExecutor`` started by ``forkserver`` (Linux; ``spawn``
  elsewhere), never by a fork of a process holding torch threads; each worker uses
  ``max(1, cores // n)`` torch threads (or ``threads``) so the workers do not oversubscribe the
  CPU. The workers die with the process that started them, however it ends (SIGKILL included):
  a worker left training would write points that nobody records, and the forkserver, which
  exits only when the last worker has gone, would stay with it. They ignore the terminal's
  Ctrl-C; when the sweep stops, it sends them SIGTERM, and SIGKILL to any still there
  ``STOP_GRACE_S`` later (a job that never reaches a safe point must not hold the sweep forever).
- ``DaskCluster(address)``: submits to a Dask distributed scheduler (``tcp://host:8786``); the
  results come back to this process, which writes the results store. When the sweep stops it
  cancels the jobs not started and sets a Dask ``Event`` that the jobs under way read at each
  evaluation (``stop_requested``), so they stop there, after writing their checkpoint.

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
from collections.abc import Callable, Iterator

from toyformer import faults, interrupts
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


def stops_all(exc: BaseException) -> bool:
    """Whether a job's error stops every job: bad input (but not a run directory another process
    holds) and a failing disk; a point's own failure (a RuntimeError, a bug) stops only it."""
    if isinstance(exc, ConfigError):
        return not isinstance(exc, DirectoryLocked)
    return isinstance(exc, OSError) or faults.io_error(exc) is not None


def _raised(exc: BaseException) -> BaseException:
    """What a job's error that stops all is raised as: a failing disk as the ``OSError`` naming the file."""
    return exc if isinstance(exc, (ConfigError, OSError)) else faults.io_error(exc) or exc


def _start_worker(threads: int, parent: int) -> None:
    """A worker's initializer: its torch threads, death with ``parent`` (the sweep's pid), and its
    signals (Ctrl-C left to the parent; SIGTERM stops the job at a safe point)."""
    import torch

    torch.set_num_threads(threads)
    die_with(parent)
    interrupts.worker()


def _call(fn: Callable, kwargs: dict):
    """Run one job in a worker; a SIGTERM from the parent stops it at its next safe point."""
    with interrupts.job():
        return fn(**kwargs)


STOP_GRACE_S = 30.0  # how long a stopped worker may take to reach its job's next safe point


def _stop_workers(pool: ProcessPoolExecutor) -> threading.Timer:
    """SIGTERM to each worker: a job under way stops at its next safe point, an idle worker starts
    no other job and leaves when the pool shuts down. Returns the timer that SIGKILLs the workers
    still there after ``STOP_GRACE_S`` (cancel it once the pool has shut down)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    _signal_all(processes, "terminate")
    timer = threading.Timer(STOP_GRACE_S, _signal_all, (processes, "kill"))
    timer.daemon = True
    timer.start()
    return timer


def _signal_all(processes: list, method: str) -> None:
    for process in processes:
        _signal(process, method)


def _signal(process, method: str) -> None:
    """``process.terminate()`` or ``process.kill()``, nothing if it is gone or closed already."""
    try:
        getattr(process, method)()
    except (OSError, ValueError, AttributeError):
        pass


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
        _start_forkserver()
        return ctx
    return multiprocessing.get_context("spawn")


def _start_forkserver() -> None:
    """Start the server with SIGINT ignored (kept across its exec): a terminal's Ctrl-C reaches the
    whole process group, and the server, still importing toyformer, would die of it with a
    traceback. Its workers leave stopping to their parent (``interrupts.worker``). (A Ctrl-C in
    the milliseconds of the start is lost: pressed again, it stops the sweep.)"""
    from multiprocessing import forkserver

    try:
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: no handler can be changed here
        forkserver.ensure_running()
        return
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, before)


def _submit(pool: ProcessPoolExecutor, fn: Callable, jobs: list[dict]) -> dict:
    """Every job submitted (its worker started) with signals held: one inside a worker's start
    would leave that worker untracked, never stopped. A SIGTERM to the whole group may stop the
    pool's server meanwhile: the pool then fails, and the signal is what is raised."""
    try:
        with interrupts.critical():
            return {pool.submit(_call, fn, kwargs): i for i, kwargs in enumerate(jobs)}
    except Exception:
        stopped = interrupts.pending()
        if stopped is not None:
            raise stopped from None
        raise


class InProcess:
    """Run the jobs one by one in this process."""

    description = "in process"

    def run(self, fn: Callable, jobs: list[dict]) -> Iterator[tuple[int, object, str | None]]:
        for i, kwargs in enumerate(jobs):
            try:
                result = fn(**kwargs)
            except Exception as exc:  # noqa: BLE001 - one failed point must not stop the sweep
                if stops_all(exc):
                    raise _raised(exc) from None
                yield i, None, _error_text(exc)
            else:
                yield i, result, None

    def close(self) -> None:
        pass


class Processes:
    """Run the jobs in ``workers`` local processes, ``threads`` torch threads each."""

    def __init__(self, workers: int, threads: int | None = None):
        if workers < 1:
            raise ConfigError(f"workers={workers}: allowed: >= 1")
        self.workers = workers
        self.threads = threads or max(1, cores() // workers)
        self.description = f"{workers} local processes, {self.threads} torch thread(s) each"

    def run(self, fn: Callable, jobs: list[dict]) -> Iterator[tuple[int, object, str | None]]:
        if not jobs:
            return
        ctx = _context()
        pool = ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=ctx, initializer=_start_worker,
                                   initargs=(self.threads, os.getpid()))
        stopping = None
        try:
            futures = _submit(pool, fn, jobs)
            for future in as_completed(futures):
                exc = future.exception()
                if exc is not None and stops_all(exc):
                    raise _raised(exc)
                yield futures[future], None if exc else future.result(), _error_text(exc) if exc else None
        except BaseException:  # an error that stops all, Ctrl-C, SIGTERM: the jobs under way stop too
            stopping = _stop_workers(pool)
            raise
        finally:  # do not start the points still queued; wait for the workers to stop
            pool.shutdown(wait=True, cancel_futures=True)
            if stopping is not None:
                stopping.cancel()

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
            raise ConfigError("cluster= needs the 'distributed' package: pip install 'toyformer[cluster]'") from None
        try:
            self.client = Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cluster={address!r}: cannot reach a Dask scheduler there ({exc})") from None
        self.address = address
        self.description = f"Dask cluster at {address}"

    def run(self, fn: Callable, jobs: list[dict]) -> Iterator[tuple[int, object, str | None]]:
        from distributed import Event
        from distributed import as_completed as dask_completed

        stop = f"toyformer-stop-{os.getpid()}-{time.time_ns()}"
        futures = {}
        try:
            futures = {self.client.submit(fn, pure=False, stop=stop, **kwargs): i for i, kwargs in enumerate(jobs)}
            for future in dask_completed(list(futures), loop=self.client.loop):
                i = futures[future]
                if future.status == "error":
                    exc = future.exception()
                    if stops_all(exc):
                        raise _raised(exc)
                    yield i, None, _error_text(exc)
                else:
                    yield i, future.result(), None
        except BaseException:  # the jobs not started are cancelled; those under way stop at an evaluation
            try:
                Event(stop, client=self.client).set()
                self.client.cancel(list(futures))
            except Exception:  # noqa: BLE001 - the scheduler is gone: nothing runs there any more
                pass
            raise
        finally:
            self.close()

    def close(self) -> None:
        self.client.close()


class JobStopped(RuntimeError):
    """A job on a Dask worker stopped because its sweep (or tune) stopped. Not a
    ``KeyboardInterrupt``: Dask shuts a worker down on those."""


class StopAtEvaluation:
    """An ``on_eval`` callback (around ``inner``, if any) that stops a job on a Dask worker once
    the sweep's stop ``Event`` is set: raised after an evaluation, its checkpoint just written."""

    def __init__(self, stop: str, inner=None):
        self.stop, self.inner = stop, inner

    def __call__(self, *args) -> None:
        from distributed import Event

        if self.inner is not None:
            self.inner(*args)
        if Event(self.stop).is_set():
            raise JobStopped("stopped with its sweep; its checkpoint is kept")

    def finish(self, *args) -> None:
        if hasattr(self.inner, "finish"):
            self.inner.finish(*args)


def stop_requested(stop: str | None, on_eval=None):
    """``on_eval`` for a job: as given, or, on a Dask worker (``stop`` names the sweep's Event),
    wrapped so that the job stops when the sweep does."""
    return on_eval if stop is None else StopAtEvaluation(stop, on_eval)


def make_executor(workers: int = 1, cluster: str | None = None, threads: int | None = None):
    """``DaskCluster(cluster)`` if an address is given, else ``Processes(workers, threads)`` for
    workers > 1, else ``InProcess``. ``threads`` reaches the points themselves (``run_point``)."""
    if cluster:
        if workers != 1:
            raise ConfigError("workers= and cluster= exclude each other: a cluster's workers are its own")
        return DaskCluster(cluster)
    if workers < 1:
        raise ConfigError(f"workers={workers}: allowed: >= 1")
    return Processes(workers, threads) if workers > 1 else InProcess()
