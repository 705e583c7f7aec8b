"""Running a sweep: every point trained (or resumed, or skipped when finished), recorded in the
results store, and summed up in a table, plots and a report.

::

    SWEEP_DIR/                 (default runs/sweeps/NAME)
      runs/<point>/            one run directory per point (config.json, summary.json, ...)
      sweep.json               the spec, every point's status and numbers, the table
      table.md                 the table (markdown)
      <y>_by_<x>.png / .svg    the spec's plots
      report.html              table, plots and points on one self-contained page

A point is finished when its ``summary.json`` exists; a killed sweep run again skips those,
continues started points from their checkpoints and trains the rest, and records every finished
point that has no row in the store (or a row that is not this sweep's: one found by
``toyformer results --sync``). A point directory trained with a different config (the spec was
edited) is an error, never silently reused. One sweep at a time writes a sweep directory
(``SWEEP_DIR/.lock``, ``toyformer.run.lock``), and one process at a time a point.

Bit-identical results across executors: a point is the same computation wherever it runs, and its
numbers (weights, metrics) are equal to the bit when it trains with the same number of torch
threads. ``threads`` sets that number for every executor. Without it, a point trained in process
uses this process's torch threads (``torch.get_num_threads()``), one in N worker processes
``max(1, cores // N)``, one on Dask its worker's default; a different thread count splits the
parallel sums inside matrix products and reductions differently, which changes the rounding of
the weights and metrics in their last bits from the first step on.

With ``replicas: K`` each point is one batched replica run (``replicas.train_replicas``) of seeds
``seed .. seed+K-1`` in its run directory (``runs/<point>/replicas/<i>``); each replica is recorded
as its own row and is one value of its table cell, which then shows mean ± 95% CI (n=K).

>>> result = toyformer.sweep("examples/sweeps/r2_reverse.yaml", workers=2)   # doctest: +SKIP
>>> print(result.table.markdown())                                           # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from toyformer.files import read_json, remove_orphan_temporaries
from toyformer.run import lock
from toyformer.run.directory import read_config
from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.experiments.sweeps.executors import make_executor, stop_requested
from toyformer.experiments.store import rows as store_rows
from toyformer.experiments.store.store import ResultsStore, as_store, default_store_path, warn_not_recorded
from toyformer.experiments.store.table import PivotTable, pivot
from toyformer.experiments.store.where import resolve_field
from toyformer.experiments.sweeps.spec import Point, SweepSpec, load_sweep
from toyformer.stats import accuracy_text
from toyformer.training.summary import aggregate

class _DefaultStore:
    def __repr__(self) -> str:
        return "DEFAULT_STORE"


DEFAULT_STORE = _DefaultStore()  # sweep(store=DEFAULT_STORE): $TOYFORMER_RESULTS or runs/results.sqlite
NOT_COMPUTED = ("train.tensorboard",)  # config keys that change no number of a run
SHOWN = ("test_token_acc", "test_exact_match", "solved_at_step", "steps", "wall_s")
STATUSES = ("done", "trained", "resumed", "failed")  # what became of a point


@dataclass
class PointResult:
    """What happened to one point: ``done`` (finished before), ``trained``, ``resumed`` or ``failed``.
    A replica point's ``summary`` is the replica run's (``replicas``, ``mean``, ``ci95``) and
    ``replicas`` holds each replica's ``{"config", "summary", "run_dir"}``."""

    point: Point
    run_dir: Path
    status: str
    summary: dict | None = None
    error: str | None = None
    replicas: list[dict] | None = None

    def members(self) -> list[tuple[dict, dict, Path]]:
        """``(config, summary, run_dir)`` of the point's run, or of each of its replicas."""
        if self.summary is None:
            return []
        if self.replicas is None:
            return [(self.point.config.to_dict(), self.summary, self.run_dir)]
        return [(r["config"], r["summary"], Path(r["run_dir"])) for r in self.replicas]

    def rows(self) -> list[dict]:
        """The store's rows of the point: one per run (per replica)."""
        members = self.members()
        return [{**store_rows.result_row(config, summary), "point": self.point.name, "run_dir": str(run_dir),
                 "replica": i, "n_replicas": len(members)} for i, (config, summary, run_dir) in enumerate(members)]

    def numbers(self) -> dict:
        """The headline numbers (``SHOWN``, ``test_n``, the interval of the test exact match): the
        run's, or the replicas' mean (with ``interval95`` for the accuracies, ``ci95`` for the rest,
        ``replicas``, and ``test_n`` of them all)."""
        if not self.summary:
            return {}
        if self.replicas is None:
            return {**{k: self.summary.get(k) for k in SHOWN}, "test_n": self.summary.get("test_n"),
                    "interval95": {"test_exact_match": store_rows.test_interval(self.summary)}}
        s = self.summary
        if "interval95" not in s:  # written before the accuracies had one: from the replicas' rows
            s = {**s, **aggregate(s["replicas"])}
        sizes = [r.get("test_n") for r in s["replicas"]]
        return {**{k: s["mean"].get(k) for k in SHOWN}, "wall_s": s.get("wall_s"), "replicas": len(self.replicas),
                "test_n": sum(sizes) if all(sizes) else None, "interval95": dict(s["interval95"]),
                "ci95": {k: s["ci95"][k] for k in SHOWN if k in s["ci95"]}}

    def to_dict(self) -> dict:
        return {"name": self.point.name, "overrides": list(self.point.overrides), "seed": self.point.seed,
                "status": self.status, "run_dir": str(self.run_dir), "error": self.error, **self.numbers()}


@dataclass
class SweepResult:
    spec: SweepSpec
    out: Path
    points: list[PointResult]
    table: PivotTable | None
    executor: str
    wall_s: float
    store: Path | None
    plots: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[PointResult]:
        return [p for p in self.points if p.status == "failed"]

    def rows(self) -> list[dict]:
        """One dict per finished run (per replica): flattened config and metrics (as the store's rows)."""
        return [row for p in self.points for row in p.rows()]

    def to_dict(self) -> dict:
        return {"sweep": self.spec.name, "out": str(self.out), "executor": self.executor,
                "wall_s": round(self.wall_s, 2), "store": str(self.store) if self.store else None,
                "spec": self.spec.to_dict(), "counts": {s: sum(p.status == s for p in self.points) for s in STATUSES},
                "points": [p.to_dict() for p in self.points],
                "table": self.table.to_dict() if self.table else None, "plots": [str(p) for p in self.plots]}


def run_point(config: dict, run_dir: str, quiet: bool = True, task_files: tuple[str, ...] = (),
              replicas: int = 1, threads: int | None = None, stop: str | None = None) -> dict:
    """Train one point into ``run_dir`` (continuing it if started), as one run or as ``replicas``
    batched replicas, with ``threads`` torch threads (None: the process's own); runs in the worker,
    which first loads the user's ``task_files`` if it does not know the task. Returns the status,
    the summary (and each replica's config, summary and run directory), and the machine and
    toyformer revision it ran with (the client records them). ``stop``: on a Dask worker, the
    sweep's stop Event (``executors.stop_requested``)."""
    import torch

    from toyformer.tasks import list_tasks, load_task_file

    if config["task"]["name"] not in list_tasks():
        for path in task_files:
            load_task_file(path)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train_point(config, run_dir, quiet, replicas, stop)
    finally:
        torch.set_num_threads(before)


def _train_point(config: dict, run_dir: str, quiet: bool, replicas: int, stop: str | None) -> dict:
    from toyformer.training import train_into, train_replicas_into

    cfg = RunConfig.from_dict(config)
    logs = stop_requested(stop, point_tensorboard(cfg, Path(run_dir), replicas))
    if replicas == 1:
        run, status = train_into(run_dir, cfg, quiet=quiet, on_eval=logs)
        return {"status": status, "summary": run.summary, "machine": store_rows.machine_info(str(run.device)),
                "git_rev": store_rows.git_revision()}
    rep, status = train_replicas_into(run_dir, cfg, replicas, quiet=quiet, on_eval=logs)
    members = [{"config": r.config.to_dict(), "summary": r.summary, "run_dir": str(r.run_dir)} for r in rep.runs]
    return {"status": status, "summary": rep.summary, "replicas": members,
            "machine": store_rows.machine_info(str(rep.runs[0].device)), "git_rev": store_rows.git_revision()}


def point_tensorboard(config: RunConfig, run_dir: Path, replicas: int):
    """With ``train.tensorboard=DIR`` (``toyformer sweep --tensorboard DIR``) a point logs into
    ``DIR/<point name>`` (replica ``i`` into ``DIR/<point name>/replica-<i>``); else None."""
    if config.train.tensorboard is None or (run_dir / "summary.json").is_file():
        return None
    from toyformer.inspect.tensorboard import ReplicaTensorBoard, TensorBoardLog

    log_dir = Path(config.train.tensorboard) / run_dir.name
    if replicas == 1:
        return TensorBoardLog(log_dir, run_dir)
    return ReplicaTensorBoard(log_dir, [run_dir / "replicas" / str(i) for i in range(replicas)])


def sweep(spec, out: str | Path | None = None, workers: int = 1, cluster: str | None = None, store=DEFAULT_STORE,
          quiet: bool = True, log=None, task_files: list[str | Path] | tuple[str | Path, ...] = (),
          replicas: int | None = None, threads: int | None = None) -> SweepResult:
    """Run every point of ``spec`` (a sweep file path, a dict or a ``SweepSpec``) into ``out``
    (default ``runs/sweeps/NAME``) in process, in ``workers`` local processes, or on the Dask
    scheduler at ``cluster``; record each run in ``store`` (a path, a ``ResultsStore``, None for no
    recording; default ``$TOYFORMER_RESULTS`` or ``runs/results.sqlite``); write the table, plots
    and ``report.html``. ``log(line)`` is told about each point as it finishes. ``task_files``: the
    user's task files (already loaded here), which worker processes load too. ``replicas``
    overrides the spec's ``replicas: K`` (each point K batched replicas, seeds seed .. seed+K-1).
    ``threads``: torch threads per point on every executor (equal counts give equal bits; see the
    module's docstring). Another sweep writing ``out`` is refused (``DirectoryLocked``) before
    anything is written."""
    spec = (spec if isinstance(spec, SweepSpec) else load_sweep(spec)).with_replicas(replicas)
    points = spec.expand()  # every point validated before anything runs
    check_buildable(points)
    if any(p.config.train.tensorboard is not None for p in points):
        from toyformer.inspect.tensorboard import check_available

        check_available()  # once, here: not as a failure of every point
    out = Path(out) if out is not None else Path("runs/sweeps") / spec.name
    table_spec = table_settings(spec, points)
    store = as_store(default_store_path() if store is DEFAULT_STORE else store)
    if store is not None:
        store.check(writing=True)  # a store that cannot record is one line before any point trains
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads={threads!r}: allowed: an integer >= 1")
    executor = make_executor(workers, cluster, threads)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with lock.hold(out, "sweep directory"):
            remove_orphan_temporaries(out, recursive=False)  # its points' folders are their own writers'
            return _run(spec, points, out, table_spec, store, executor, quiet, log or (lambda line: None),
                        task_files, threads)
    finally:
        executor.close()


def _run(spec: SweepSpec, points: list[Point], out: Path, table_spec: dict, store: ResultsStore | None, executor,
         quiet: bool, log, task_files, threads: int | None) -> SweepResult:
    """The sweep itself, under the sweep directory's lock."""
    k = spec.replicas
    start = time.perf_counter()
    results: list = [None] * len(points)  # each point's PointResult once it has one (all, after the loop)
    jobs: list[tuple[int, dict]] = []
    for i, p in enumerate(points):
        run_dir = (out / "runs" / p.name).resolve()
        _check_same_config(p, run_dir, k)
        if (run_dir / "summary.json").is_file():
            results[i] = _finished_before(p, run_dir, k)
        else:
            jobs.append((i, {"config": p.config.to_dict(), "run_dir": str(run_dir), "quiet": quiet, "replicas": k,
                             "task_files": tuple(str(Path(f).resolve()) for f in task_files), "threads": threads}))
    (out / "runs").mkdir(parents=True, exist_ok=True)
    log(f"sweep {spec.name}: {len(points)} points, {len(points) - len(jobs)} finished before, "
        f"{len(jobs)} to run ({executor.description})")
    _record_missing(store, spec, [r for r in results if r is not None])
    finished = len(points) - len(jobs)
    try:
        for j, res, error in executor.run(run_point, [kw for _, kw in jobs]):
            i, run_dir = jobs[j][0], Path(jobs[j][1]["run_dir"])
            if error is not None:
                results[i] = PointResult(points[i], run_dir, "failed", error=error)
            else:
                results[i] = PointResult(points[i], run_dir, res["status"], res["summary"], None, res.get("replicas"))
                _record(store, spec, results[i], res["machine"], res["git_rev"])
            finished += 1
            log(f"[{finished}/{len(points)}] {_line(results[i])}")
    except KeyboardInterrupt:  # Ctrl-C: the points that finished as the workers stopped are recorded too
        _record_missing(store, spec, [_finished_before(points[i], Path(kw["run_dir"]), k) for i, kw in jobs
                                      if results[i] is None and (Path(kw["run_dir"]) / "summary.json").is_file()])
        raise
    result = SweepResult(spec, out, results, None, executor.description, time.perf_counter() - start,
                         store.path if store else None)
    rows = result.rows()
    if rows:
        result.table = pivot(rows, table_spec["rows"], table_spec["cols"], table_spec["value"])
    from toyformer.experiments.sweeps.outputs import write_outputs

    write_outputs(result)
    return result


def table_settings(spec: SweepSpec, points: list[Point]) -> dict:
    """The table's rows, cols and value (from the spec, else the swept fields and the target metric),
    checked against the config's fields and the metrics before anything runs."""
    base = points[0].config
    known = list(store_rows.flatten_config(base.to_dict())) + list(store_rows.METRICS)
    swept = [f for f in spec.swept_fields() if f != "seed"]
    by_seed = len(points) > 1 and spec.replicas == 1  # a replica's seed is its own: seed rows would split the cells
    default_rows = (swept[:-1] if len(swept) > 1 else swept) or (["seed"] if by_seed else ["task.name"])
    rows = spec.table.get("rows") or default_rows
    cols = spec.table.get("cols", swept[-1] if len(swept) > 1 and "rows" not in spec.table else None)
    value = spec.table.get("value") or f"test_{base.eval.target_metric}"

    def as_list(fields) -> list[str]:
        names = fields.split(",") if isinstance(fields, str) else fields
        return [resolve_field(f.strip(), known, "table field") for f in names]

    settings = {"rows": as_list(rows), "cols": as_list(cols) if cols else [],
                "value": resolve_field(value, known, "table value")}
    for plot in spec.plots:
        for key in ("x", "lines"):
            if plot.get(key):
                resolve_field(plot[key], known, f"plot {key}")
        resolve_field(plot["y"], known, "plot y")
    return settings


def check_buildable(points: list[Point]) -> None:
    """Build task, splits and model of each distinct point (tiny evaluation sets, on the CPU), so
    that a config that passes its own checks but cannot train (a task/layout mismatch, epochs
    without a pool) fails before any run starts."""
    from toyformer.run import build

    seen = set()
    for p in points:
        small = {"eval.val_size": 1, "eval.test_size": 1, "seed": 0}
        if p.config.data.train_size is not None:
            small["data.train_size"] = 1
        config = p.config.with_overrides(small)
        key = repr(config)
        if key in seen:
            continue
        seen.add(key)
        try:
            build(config, device="cpu")
        except ConfigError as exc:
            raise ConfigError(f"sweep point {p.name}: {exc}") from None


def _finished_before(point: Point, run_dir: Path, k: int) -> PointResult:
    """A point whose ``summary.json`` exists, read from its directory (each replica's too)."""
    members = None
    if k > 1:
        dirs = [run_dir / "replicas" / str(i) for i in range(k)]
        members = [{"config": read_config(d), "summary": read_json(d / "summary.json"), "run_dir": str(d)}
                   for d in dirs]
    return PointResult(point, run_dir, "done", read_json(run_dir / "summary.json"), replicas=members)


def _check_same_config(point: Point, run_dir: Path, k: int) -> None:
    meta = run_dir / "replicas.json"
    had_k = read_json(meta)["k"] if meta.is_file() else 1 if (run_dir / "config.json").is_file() else None
    if had_k is None:
        return
    if had_k != k:
        raise ConfigError(f"{str(run_dir)!r} was trained with replicas: {had_k}, not {k}; "
                          "remove it or choose another out=DIR")
    config = read_json(meta)["config"] if k > 1 else read_config(run_dir)
    had = store_rows.flatten_config(RunConfig.from_dict(config).to_dict())
    want = store_rows.flatten_config(point.config.to_dict())
    for key in NOT_COMPUTED:  # where the logs go: a point is the same run with or without them
        had.pop(key, None), want.pop(key, None)
    diff = [f"{k}: {had.get(k)!r} != {want.get(k)!r}" for k in {**want, **had} if had.get(k) != want.get(k)]
    if diff:
        raise ConfigError(f"{str(run_dir)!r} was trained with another config ({'; '.join(diff[:3])}); "
                          "remove it or choose another out=DIR")


def _record(store: ResultsStore | None, spec: SweepSpec, res: PointResult, machine: str | None, git_rev: str | None,
            only: set[int] | None = None) -> None:
    """Record the point's run (each replica: one row), or only the replicas in ``only``."""
    if store is None:
        return
    members = res.members()
    try:
        for i, (config, summary, run_dir) in enumerate(members):
            if only is None or i in only:
                store.record_summary(config, summary, run_dir, source="sweep", sweep=spec.name, point=res.point.name,
                                     replica=i, n_replicas=len(members), machine=machine, git_rev=git_rev)
    except OSError:  # a failing disk stops the sweep: every later point would fail on it too
        raise
    except Exception as exc:  # noqa: BLE001 - a locked or damaged store must not lose the sweep's results
        warn_not_recorded(store, exc)


def _record_missing(store: ResultsStore | None, spec: SweepSpec, done: list[PointResult]) -> None:
    """Record each run (each replica) of the points finished before whose row is missing (a process
    killed between training and recording) or is not this sweep's point (recorded by
    ``toyformer train --resume`` or ``results --sync``); rows that are this sweep's stay as they are."""
    if store is None or not done:
        return
    try:
        have = store.recorded()
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001
        warn_not_recorded(store, exc)
        return
    for res in done:
        mine = (spec.name, res.point.name)
        missing = {i for i, (_, _, run_dir) in enumerate(res.members())
                   if have.get((str(Path(run_dir).resolve()), i)) != mine}
        if missing:
            _record(store, spec, res, None, None, only=missing)


def _line(res: PointResult) -> str:
    if res.error:
        return f"{res.point.name}: failed: {res.error}"
    s = res.numbers()
    of = f"{s['replicas']} replicas" if "replicas" in s else None
    em = accuracy_text(s["test_exact_match"], s["interval95"].get("test_exact_match"), s["test_n"], of)
    return (f"{res.point.name}: {res.status}, test_token_acc {s['test_token_acc']:.4f}, test_exact_match {em}, "
            f"{s['steps']:.0f} steps, {s['wall_s']:.1f} s")
