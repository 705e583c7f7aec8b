"""``toyformer tune``: search a space for the configuration that solves a task fastest, then
re-measure the best one on fresh seeds beside the defaults (the base config, without the
searched values) on the same seeds: the gain, as solved counts and the ratio of the times.

::

    TUNE_DIR/                 (default runs/tune/NAME, NAME = TASK-LAYOUT)
      study.sqlite            the Optuna study (a killed tune continues from it)
      trials/<number>/        one ordinary run directory per trial
      best.yaml               the best configuration, a config file for --config
      best/seed_<s>/          the best configuration re-trained on fresh seeds
      defaults/seed_<s>/      the base config on the same seeds (capped as the trials)
      tune.json, summary.md   the best trial, its re-measured time-to-solve, the gain over the
                              defaults, the top trials, the parameter importances

Every trial is recorded in the results store (``source`` tune, ``sweep`` the tune's name). The
recording happens here, after the search, for every finished trial that has no row yet, so
trials run by worker processes or a Dask cluster are recorded by this process alone.

>>> result = toyformer.tune(RunConfig.from_dict({"task": "sort"}), budget_s=600, trials=20)   # doctest: +SKIP
>>> result["best"]["params"], result["remeasured"]["solved_at_s"]["mean"]                      # doctest: +SKIP
>>> result["gain"]["ratio"], result["gain"]["defaults_solved"]                                  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from toyformer.config import RunConfig
from toyformer.errors import ConfigError
from toyformer.experiments.store import as_store, record_run
from toyformer.experiments.sweeps.executors import make_executor
from toyformer.experiments.tune import outputs
from toyformer.experiments.tune.search import OBJECTIVES, check_study, open_study, search, study_error
from toyformer.experiments.tune.space import Space, default_space, parse_space
from toyformer.files import check_folder_name, remove_orphan_temporaries, write_text
from toyformer.run import lock

if TYPE_CHECKING:
    from toyformer.run.records import Summary

REMEASURE_SEEDS = 3


def load_space(path: str | Path, base: RunConfig) -> Space:
    """A ``--space`` file: a YAML or TOML file with one ``space:`` section."""
    from toyformer.config import read_config_file

    data = read_config_file(path, "space file", "a mapping with one key, space")
    if set(data) != {"space"}:
        raise ConfigError(f"space file {str(path)!r} has keys {', '.join(map(str, data))}; allowed: space")
    return parse_space(data["space"], base, f"space file {str(path)!r}")


def tune(base: RunConfig, budget_s: float, trials: int = 20, space: Space | dict | None = None,
         objective: str = "time_to_solve", out: str | Path | None = None, workers: int = 1, cluster: str | None = None,
         store=None, trial_s: float | None = None, threads: int | None = None, name: str | None = None,
         quiet: bool = True, log=None, seeds: int = 1) -> dict:
    """Search ``space`` (default: the layout's) around ``base`` for ``trials`` trials or at most
    ``budget_s`` seconds of search, each trial capped at ``trial_s`` (default
    ``base.train.max_time_s``, else a quarter of the budget); then write the best config and
    re-measure it on fresh seeds. With ``seeds`` > 1 every trial trains that many seeds as batched
    replicas and is judged by its slowest. Returns the result (also in ``tune.json``)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective={objective!r} is not allowed; allowed: {', '.join(OBJECTIVES)}")
    if not budget_s > 0 or not trials >= 1 or not seeds >= 1:
        raise ConfigError(f"tune needs a budget > 0, trials >= 1 and seeds >= 1; got budget_s={budget_s}, "
                          f"trials={trials}, seeds={seeds}")
    cap = trial_s or base.train.max_time_s or max(1.0, budget_s / 4)
    base = base.with_overrides({"train.max_time_s": cap})
    if space is None:
        space = parse_space(default_space(base.layout), base, f"the default {base.layout} space")
    elif isinstance(space, dict):
        space = parse_space(space, base)
    name = check_folder_name(name or f"{base.task.name}-{base.layout}", "tune name")
    out = Path(out) if out is not None else Path("runs/tune") / name
    store = as_store(store)
    if store is not None:
        store.check(writing=True)
    executor = make_executor(workers, cluster, threads)  # every input checked before anything is written
    if base.train.tensorboard is not None:
        from toyformer.inspect.tensorboard import check_available

        check_available()
    check_study(out)  # a study file that cannot serve: one line before anything is written
    _check_same_base(out, base)
    out.mkdir(parents=True, exist_ok=True)
    with lock.hold(out, "tune directory"):
        remove_orphan_temporaries(out, recursive=False)  # a killed tune's half-written files
        _check_same_base(out, base)
        try:
            return _tune(out, name, base, space, objective, trials, budget_s, executor, store, cap, quiet, threads,
                         log, seeds)
        except Exception as exc:  # noqa: BLE001 - the study's storage failing: one line naming study.sqlite
            raise study_error(exc, out) from None


def _tune(out: Path, name: str, base: RunConfig, space: Space, objective: str, trials: int, budget_s: float, executor,
          store, cap: float, quiet: bool, threads: int | None, log, seeds: int) -> dict:
    """The search, the recording of its trials, the re-measured best and the outputs (under the lock)."""
    write_text(out / "base.yaml", yaml.safe_dump(base.to_dict(), sort_keys=False))
    run = search(out, name, base, space, objective, trials, budget_s, executor, quiet, threads, log, seeds)
    study = open_study(out, name)
    _record_trials(study, store, name, out)
    best = outputs.best_trial(study)
    remeasured = defaults = None
    if best is not None:
        config = RunConfig.from_dict(best.user_attrs["config"])
        write_text(out / "best.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        best_runs = _remeasure(out / "best", config, store, name, "best", quiet)
        same = config.to_dict() == base.to_dict()  # the defaults won: their runs are the best's
        default_runs = best_runs if same else _remeasure(out / "defaults", base, store, name, "defaults", quiet)
        remeasured, defaults = outputs.remeasure_summary(best_runs), outputs.remeasure_summary(default_runs)
    result = outputs.result(study, best, remeasured, base, space, objective, cap, trials, run, defaults)
    outputs.write(out, result)
    return result


def _tensorboard(config: RunConfig, run_dir: Path, name: str):
    """With ``train.tensorboard=DIR``, a TensorBoard log in ``DIR/name``; else None."""
    if config.train.tensorboard is None:
        return None
    from toyformer.inspect.tensorboard import TensorBoardLog

    return TensorBoardLog(Path(config.train.tensorboard) / name, run_dir, config.to_dict())


def _check_same_base(out: Path, base: RunConfig) -> None:
    """A tune directory continues only the search it started."""
    path = out / "base.yaml"
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text())
            if not isinstance(data, dict):
                raise ConfigError(f"it holds {type(data).__name__ if data is not None else 'nothing'}, not a config")
            had = RunConfig.from_dict(data).to_dict()
        except (yaml.YAMLError, UnicodeDecodeError, ConfigError) as exc:  # cut short, or edited by hand
            raise ConfigError(f"{str(path)!r} is damaged ({' '.join(str(exc).split())[:120]}); restore it, or "
                              "choose another out=DIR") from None
        if had != base.to_dict():
            raise ConfigError(f"tune directory {str(out)!r} holds a search of another base config; "
                              "choose another out=DIR")


def _record_trials(study, store, name: str, out: Path) -> None:
    """Record every finished trial run that has no row (idempotent: a resumed tune adds only new
    ones); a trial of several seeds records each. A run directory that finished although its
    trial was cut short before Optuna heard of it (a kill between the two) is recorded too, as
    that trial's: the store holds every run that finished."""
    from toyformer.run import load_run
    from toyformer.training import load_replicas

    store = as_store(store)
    if store is None:
        return
    owner: dict[str, int] = {}  # run directory -> the trial it is, a complete one first
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.state.name == "COMPLETE"):
        for key in ("resume_dir", "stopped", "run_dir"):
            if t.user_attrs.get(key):
                owner[str(Path(t.user_attrs[key]))] = t.number
        owner.setdefault(str(out / "trials" / f"{t.number:04d}"), t.number)
    for run_dir, number in sorted(owner.items()):
        if not (Path(run_dir) / "summary.json").is_file():
            continue
        runs = (load_replicas(run_dir, "cpu").runs if (Path(run_dir) / "replicas.json").is_file()
                else [load_run(run_dir, device="cpu")])
        for i, run in enumerate(runs):
            record_run(store, run, "tune", sweep=name, point=f"trial {number}", replica=i, n_replicas=len(runs),
                       if_missing=True)


def _remeasure(out: Path, config: RunConfig, store, name: str, label: str, quiet: bool) -> list[Summary]:
    """``config`` trained on ``REMEASURE_SEEDS`` seeds no trial was searched on (``seed + 1000 i``:
    the same for the best configuration and the defaults) into ``out/seed_<s>``; their summaries."""
    from toyformer.training import train_into

    runs = []
    for i in range(1, REMEASURE_SEEDS + 1):
        seed = config.seed + 1000 * i
        folder = out / f"seed_{seed}"
        run, status = train_into(folder, config.with_overrides({"seed": seed}), quiet=quiet,
                                 on_eval=_tensorboard(config, folder, f"{label}-seed-{seed}"))
        record_run(store, run, "tune", sweep=name, point=f"{label} seed {seed}", if_missing=True)
        runs.append(run.summary)
    return runs
