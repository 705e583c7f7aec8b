"""The search: an Optuna study whose trials are ordinary toyformer runs, minimising time-to-solve.

Each trial samples the space, trains the base config with those values into
``OUT/trials/<number>`` (capped at ``train.max_time_s``; with ``seeds`` > 1 as that many seeds
in one batched replica run, so that a configuration is judged by its slowest seed), reports its
validation metric after every evaluation to the pruner (a trial behind the median of the others
at the same step stops, once it has used a third of its time), and scores:

- ``time_to_solve``: the seconds to the validation target when it was reached; otherwise
  ``cap * (2 - best validation metric)``, so every unsolved trial ranks behind every solved one,
  and among unsolved ones the closer one ranks first;
- ``metric``: ``1 - best validation metric``.

The study lives in ``OUT/study.sqlite``: a killed tune run again continues it (a trial that was
running when the process died is tried again with the same values), and worker processes (or
Dask workers that see the same filesystem) share it, together taking exactly ``trials`` trials.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import cast

from toyformer import faults
from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.experiments.store import health
from toyformer.experiments.sweeps.executors import stop_requested
from toyformer.experiments.tune.space import Space
from toyformer.run.directory import holds_run

OBJECTIVES = ("time_to_solve", "metric")
FINISHED = ("COMPLETE", "PRUNED")


def storage_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'study.sqlite'}"


def optuna():
    """The optuna module (an optional dependency: ``pip install 'toyformer[tune]'``)."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("toyformer tune needs Optuna; install it: pip install 'toyformer[tune]'") from None
    return optuna


def open_study(out: Path, name: str, worker: int = 0):
    """The study of a tune directory, created on first use (minimising, TPE, a median pruner). A
    study file that cannot serve is one line (``study_error``), before Optuna writes into it.

    The sampler's seed is the number of trials the study already holds, plus ``WORKER_SEED`` times
    the ``worker``'s index: a new search draws as it always did (seed 0), a search run again after
    a stop draws values of its own, not those its first run drew (the same seed would draw them
    again, trying one setting twice), and workers that open the study at the same moment do not
    draw the same values as one another."""
    optuna = globals()["optuna"]()

    check_study(out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5)
    try:
        study = optuna.create_study(study_name=name, storage=storage_url(out), direction="minimize",
                                    pruner=pruner, load_if_exists=True)
        seed = len(study.get_trials(deepcopy=False)) + WORKER_SEED * worker
        study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
        return study
    except Exception as exc:  # noqa: BLE001 - said in one line, or raised as it was
        raise study_error(exc, out) from None


STUDY = "tune study"
WORKER_SEED = 100_003  # apart in seed between the samplers of two workers
REMEDY = "move it away to start the search anew (the trials' run directories stay), or choose another out=DIR"


def check_study(out: Path) -> None:
    """A one-line ``StoreError`` unless ``OUT/study.sqlite`` is missing, empty or an Optuna study:
    not SQLite, an SQLite database of another program (which Optuna would write its tables into),
    or damaged."""
    path = Path(out) / "study.sqlite"
    problem = health.header_problem(path, STUDY)
    if problem:
        raise health.StoreError(problem)
    if not path.is_file() or not path.stat().st_size:
        return
    try:
        con = sqlite3.connect(health.read_uri(path), uri=True, timeout=health.wait_s())
        try:
            found = health.tables(con)
            damage = con.execute("PRAGMA quick_check(1)").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise study_error(exc, out) from None
    if damage != "ok":
        raise health.StoreError(f"{STUDY} {str(path)!r} is damaged ({damage}); {REMEDY}")
    if found and "studies" not in found:
        raise health.StoreError(f"{str(path)!r} is not a toyformer {STUDY}: an SQLite database with other tables "
                                f"({', '.join(found)}); {REMEDY}")


def study_error(exc: BaseException, out: Path) -> BaseException:
    """An error from the study's storage (Optuna, SQLAlchemy, sqlite3) as one line naming
    ``OUT/study.sqlite``: locked, damaged, of another Optuna version, a failing disk; else ``exc``."""
    path = Path(out) / "study.sqlite"
    if isinstance(exc, RuntimeError) and "compatible" in str(exc):  # Optuna's schema version check
        first = str(exc).split(". ")[0]
        return health.StoreError(f"{STUDY} {str(path)!r} was written by another version of Optuna ({first}); "
                                 "upgrade Optuna, or choose another out=DIR")
    if isinstance(exc, (ConfigError, OSError)):
        return exc
    return health.translate(exc, path, STUDY, REMEDY, health.wait_s())


def retry_interrupted(study, out: Path) -> int:
    """Trials cut short are queued again with their values and continue in their run directory:
    those left RUNNING by a killed tune (marked failed now: only one tune process holds a tune
    directory, so a RUNNING trial now is an orphan) and those stopped by Ctrl-C, SIGTERM or a
    failing disk (failed, with ``stopped`` naming their directory). Each is retried once."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    orphans = [t for t in trials if t.number not in retried and (t.state == optuna.trial.TrialState.RUNNING or
               t.state == optuna.trial.TrialState.FAIL and "stopped" in t.user_attrs)]
    for t in orphans:
        if t.state == optuna.trial.TrialState.RUNNING:
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        run_dir = t.user_attrs.get("stopped") or str(Path(out) / "trials" / f"{t.number:04d}")
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, "resume_dir": run_dir}, skip_if_exists=False)
    return len(orphans)


def finished(study) -> int:
    return sum(t.state.name in FINISHED for t in study.get_trials(deepcopy=False))


class _Enough(Exception):
    """The study already has enough trials finished or under way: this one is not taken."""


class _Pruning:
    """``on_eval`` callback: report ``1 - validation metric`` (the worst seed's, with several) at
    each step; stop a trial that lags the others at the same step, but only once it has used a
    third of its time (a slow start is no verdict: grokking tasks jump late)."""

    def __init__(self, trial, metric: str, seeds: int, cap: float):
        self.trial, self.key, self.seeds, self.cap = trial, f"val_{metric}", seeds, cap
        self.latest: dict[int, dict] = {}
        self.reported: set[int] = set()

    def __call__(self, *args) -> None:
        import optuna

        i, record = args if len(args) == 2 else (0, args[0])
        if record.get(self.key) is None:
            return
        self.latest[i] = record
        step = record["step"]
        if (step in self.reported or len(self.latest) < self.seeds
                or any(r["step"] != step for r in self.latest.values())):
            return
        self.reported.add(step)
        self.trial.report(1.0 - min(r[self.key] for r in self.latest.values()), step)
        if record["wall_s"] >= self.cap / 3 and self.trial.should_prune():
            raise optuna.TrialPruned()


def _callbacks(trial, config: RunConfig, run_dir: Path, seeds: int):
    """The pruning reporter, and with ``train.tensorboard=DIR`` a TensorBoard log in ``DIR/trial-<number>``."""
    cap = cast(float, config.train.max_time_s)  # tune always sets it (driver.tune)
    pruning = _Pruning(trial, config.eval.target_metric, seeds, cap)
    if config.train.tensorboard is None:
        return pruning
    from toyformer.inspect.tensorboard import Callbacks, ReplicaTensorBoard, TensorBoardLog

    log_dir = Path(config.train.tensorboard) / f"trial-{trial.number:04d}"
    log = (TensorBoardLog(log_dir, run_dir, config.to_dict()) if seeds == 1 else
           ReplicaTensorBoard(log_dir, [run_dir / "replicas" / str(i) for i in range(seeds)]))
    return Callbacks(log, pruning)


def score(runs: list, objective: str, cap: float) -> tuple[float, float]:
    """The objective value of a finished trial (its slowest, or least accurate, seed), and the
    worst seed's best validation metric."""
    metric = runs[0].summary["target"]["metric"]
    best = min(max((r[f"val_{metric}"] for r in run.metrics if r.get(f"val_{metric}") is not None), default=0.0)
               for run in runs)
    if objective == "metric":
        return 1.0 - best, best
    times = [run.summary.get("solved_at_s") for run in runs]
    if all(t is not None for t in times):
        return float(max(times)), best
    return cap * (2.0 - best), best


def run_trials(out: str | Path, name: str, base: dict, space: dict, objective: str, trials: int, timeout_s: float,
               quiet: bool = True, threads: int | None = None, seeds: int = 1, stop: str | None = None,
               worker: int = 0) -> int:
    """Take trials of the study in ``out`` until it has ``trials`` finished ones or ``timeout_s``
    passed; runs in each worker (processes, Dask; ``worker``: its index) and in process. With ``seeds`` > 1 a trial
    trains that many seeds as one batched replica run and scores its slowest seed. Returns the
    trials it took."""
    import optuna
    import torch

    from toyformer.experiments.tune.space import parse_space
    from toyformer.training import train, train_replicas

    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    base_cfg = RunConfig.from_dict(base)
    cap = base_cfg.train.max_time_s
    params = parse_space(space, base_cfg)
    study = open_study(out, name, worker)
    taken = 0
    stopped_by: list[BaseException] = []  # what stopped a trial (Optuna loses it when the study then fails too)

    def objective_fn(trial):
        nonlocal taken
        others = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number]
        if sum(t.state.name in (*FINISHED, "RUNNING") for t in others) >= trials:  # workers racing for the last one
            trial.set_user_attr("not_taken", "the study had its trials")
            study.stop()
            raise _Enough
        taken += 1
        values = params.sample(trial)
        trial.set_user_attr("pid", os.getpid())
        resume_dir = trial.user_attrs.get("resume_dir")  # a retried trial continues where it stopped
        run_dir = Path(resume_dir) if resume_dir else out / "trials" / f"{trial.number:04d}"
        resume = resume_dir is not None and holds_run(run_dir)
        try:
            config = base_cfg.with_overrides(values)
            trial.set_user_attr("config", config.to_dict())
            callbacks = stop_requested(stop, _callbacks(trial, config, run_dir, seeds))
            runs = ([train(config, out_dir=run_dir, resume=resume, quiet=quiet, on_eval=callbacks)] if seeds == 1 else
                    train_replicas(config, seeds, out_dir=run_dir, resume=resume, quiet=quiet, on_eval=callbacks).runs)
            value, best = score(runs, objective, cap)  # noted in the study: a failed write here continues it too
            slowest = max(runs, key=lambda r: (r.summary.get("solved_at_s") is None,
                                               r.summary.get("solved_at_s") or 0))
            for key in ("solved_at_s", "solved_at_step", "steps", "wall_s", "test_exact_match", "test_token_acc"):
                trial.set_user_attr(key, slowest.summary.get(key))
            trial.set_user_attr("seeds_solved", sum(r.summary.get("solved_at_s") is not None for r in runs))
            trial.set_user_attr("best_val", best)
            trial.set_user_attr("run_dir", str(run_dir))
        except ConfigError as exc:  # values the config or the machine refuses (d_model not divisible by n_heads)
            trial.set_user_attr("error", str(exc))
            raise optuna.TrialPruned() from None
        except BaseException as exc:
            plain = isinstance(exc, (KeyboardInterrupt, OSError))
            if not plain and faults.io_error(exc) is None:
                raise
            # stopped from outside, or by a failed write (the run's, or the study's as the trial
            # reports its progress or its result): the re-run tune continues it in its directory
            # (a finished run there is taken as it is)
            stopped_by.append(exc if plain else study_error(exc, out))
            _note(trial, "stopped", str(run_dir))
            raise
        return value

    def enough(study, _trial):
        if finished(study) >= trials:
            study.stop()

    if finished(study) < trials:
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # a trial not taken is no failure to warn about
        try:
            study.optimize(objective_fn, timeout=timeout_s, callbacks=[enough], catch=(_Enough,))
        except Exception as exc:  # the study's storage said in one line here, in the worker (a cause is not pickled)
            raise (stopped_by[0] if stopped_by else study_error(exc, out)) from None
    return taken


def _note(trial, key: str, value) -> None:
    """A user attribute on a trial that is stopping; nothing when the study cannot take it (its disk is full)."""
    try:
        trial.set_user_attr(key, value)
    except Exception:  # noqa: BLE001 - the stop itself is what the user hears about
        pass


def search(out: Path, name: str, base: RunConfig, space: Space, objective: str, trials: int, budget_s: float,
           executor, quiet: bool = True, threads: int | None = None, log=None, seeds: int = 1) -> dict:
    """Run the search on ``executor`` (one job per worker); returns what happened."""
    log = log or (lambda line: None)
    study = open_study(out, name)
    retried = retry_interrupted(study, out)
    if retried:
        log(f"tune {name}: {retried} interrupted trial(s) queued again")
    before = finished(study)
    workers = getattr(executor, "workers", 1)
    job = {"out": str(out), "name": name, "base": base.to_dict(), "space": space.to_dict(), "objective": objective,
           "trials": trials, "timeout_s": budget_s, "quiet": quiet, "threads": threads, "seeds": seeds}
    start = time.perf_counter()
    errors = []
    if before < trials:
        log(f"tune {name}: {before} of {trials} trials finished before; searching ({executor.description})")
        for _, _, error in executor.run(run_trials, [{**job, "worker": i} for i in range(workers)]):
            if error:
                errors.append(error)
    if errors and finished(open_study(out, name)) == before:
        raise ConfigError(f"tune {name}: every worker failed: {errors[0]}")
    return {"finished_before": before, "retried": retried, "search_s": round(time.perf_counter() - start, 1),
            "worker_errors": errors}
