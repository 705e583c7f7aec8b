"""Where a sweep's runs execute: in this process, in N local processes, or on a Dask cluster.

An executor runs ``fn(**kwargs)`` for each job and yields ``(index, result, error)`` as jobs
finish (``error`` is the exception's one-line text, or None); one failing job never stops the
others. ``fn`` must be a module-level function (it is pickled by reference).

- ``InProcess``: one after another, here (simplest, easiest to debug).
- ``Processes(n)``: a ``ProcessPoolExecutor`` started by ``forkserver`` (Linux; ``spawn``
  elsewhere), never by a fork of a process holding torch threads; each worker uses ``max(1, cores // n)`` torch threads so the
  workers do not oversubscribe the CPU.
- ``DaskCluster(address)``: submits to a Dask distributed scheduler (``tcp://host:8786``); the
  results come back to this process, which writes the results store.

>>> for i, summary, error in Processes(2).run(run_point, jobs):     # doctest: +SKIP
...     print(i, error or summary["test_token_acc"])
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterator

from toyformer.errors import ConfigError


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


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
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - one failed point must not stop the sweep
                yield i, None, _error_text(exc)
            else:
                yield i, result, None


class Processes:
    """Run the jobs in ``workers`` local processes (spawned), ``threads`` torch threads each."""

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
        pool = ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=ctx, initializer=_set_threads,
                                   initargs=(self.threads,))
        try:
            futures = {pool.submit(fn, **kwargs): i for i, kwargs in enumerate(jobs)}
            for future in as_completed(futures):
                exc = future.exception()
                if isinstance(exc, ConfigError):
                    raise exc
                yield futures[future], None if exc else future.result(), _error_text(exc) if exc else None
        finally:  # stopped (an error, Ctrl-C): do not start the points still queued
            pool.shutdown(wait=True, cancel_futures=True)


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
                    if isinstance(exc, ConfigError):
                        raise exc
                    yield i, None, _error_text(exc)
                else:
                    yield i, future.result(), None
        finally:
            self.client.close()


def make_executor(workers: int = 1, cluster: str | None = None):
    """``DaskCluster(cluster)`` if an address is given, else ``Processes(workers)`` for workers > 1, else ``InProcess``."""
    if cluster:
        if workers != 1:
            raise ConfigError("--workers and --cluster exclude each other: a cluster's workers are its own")
        return DaskCluster(cluster)
    if workers < 1:
        raise ConfigError(f"--workers {workers}: allowed: >= 1")
    return Processes(workers) if workers > 1 else InProcess()
