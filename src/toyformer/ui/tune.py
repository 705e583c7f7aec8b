"""The tune pages' numbers, read from each tune directory's Optuna study (``study.sqlite``,
opened with SQLite's read-only mode, so a study being searched is read while it is written and
never changed): every trial with its state, objective, searched values, the best value so far,
the values it reported to the pruner, and its run; the parameter importances; the best trial's
re-measured seeds (``best/seed_<s>/``).

Tune directories are found under the runs folder (a folder holding ``study.sqlite``) and through
the store's rows recorded by ``toyformer tune`` (``source`` tune). Optuna is the ``tune`` extra,
imported only here, when a tune page is asked for.

>>> [s["name"] for s in list_studies(source)]          # doctest: +SKIP
['sort-causal', 'reverse-tagger']
"""

from __future__ import annotations

import math
import urllib.parse
import warnings
from pathlib import Path

import yaml

from toyformer.errors import ConfigError
from toyformer.experiments.store.store import TABLE
from toyformer.experiments.tune.outputs import remeasure_summary
from toyformer.files import read_json
from toyformer.ui import intervals
from toyformer.ui.data import RunGone, Source
from toyformer.ui.folders import STUDY, mtime, writer_pid

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
DIGITS = 6


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("the tune pages read Optuna studies; install it: pip install 'toyformer[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def tune_dirs(source: Source) -> list[Path]:
    """Every tune directory the browser knows: under the runs folder, and those of the store's
    tune rows (``DIR/trials/<n>[/replicas/<i>]``, ``DIR/best/seed_<s>``)."""
    found = list(source.tune_dirs())
    if "source" in source.store_columns() and "run_dir" in source.store_columns():
        for (run_dir,) in source.select(f"SELECT MIN(run_dir) FROM {TABLE} WHERE source = 'tune' "
                                         "AND run_dir IS NOT NULL GROUP BY sweep, point LIKE 'best%'"):
            for parent in list(Path(run_dir).parents)[:4]:
                if (parent / STUDY).is_file():
                    found.append(parent)
                    break
    return list(dict.fromkeys(found))


def _load(folder: Path):
    """The study of a tune directory, read only (one study per tune directory)."""
    optuna = _optuna()
    url = "sqlite:///file:" + urllib.parse.quote(str(folder / STUDY)) + "?mode=ro&uri=true"
    try:
        storage = optuna.storages.RDBStorage(url, skip_table_creation=True, skip_compatibility_check=True,
                                             engine_kwargs={"connect_args": {"timeout": 30}})
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        if not names:
            raise ConfigError(f"{str(folder / STUDY)!r} holds no study yet")
        return optuna.load_study(study_name=names[0], storage=storage)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 (SQLAlchemy's errors: not an Optuna study, a damaged file)
        raise ConfigError(f"{str(folder / STUDY)!r} is not a readable Optuna study: {str(exc).splitlines()[0]}") \
            from None


def _base(folder: Path) -> dict:
    try:
        return yaml.safe_load((folder / "base.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _result(folder: Path) -> dict:
    try:
        return read_json(folder / "tune.json") if (folder / "tune.json").is_file() else {}
    except ConfigError:
        return {}


def list_studies(source: Source) -> list[dict]:
    """One entry per tune directory: name, task, layout, trials by state, best value, running."""
    out = []
    for folder in tune_dirs(source):
        base = _base(folder)
        entry = {"dir": str(folder), "name": folder.name, "task": (base.get("task") or {}).get("name"),
                 "layout": base.get("layout"), "running": writer_pid(folder) is not None,
                 "changed": mtime(folder / STUDY)}
        try:
            study = _load(folder)
            trials = study.get_trials(deepcopy=False)
            done = [t.value for t in trials if t.state.name == "COMPLETE"]
            entry.update(name=study.study_name, best=min(done) if done else None,
                         counts={s: sum(t.state.name == s for t in trials if not _not_taken(t)) for s in STATES})
        except ConfigError as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return sorted(out, key=lambda e: e["changed"] or 0, reverse=True)


def find(source: Source, folder: str) -> Path:
    """The tune directory named ``folder`` (its path), if the browser knows it; RunGone if not."""
    known = {str(d): d for d in tune_dirs(source)}
    if folder not in known:
        raise RunGone(f"tune directory {folder!r} is not known; the tune pages list those under the runs folder "
                      "and those the results store has runs of")
    return known[folder]


def _not_taken(t) -> bool:
    """A trial a worker opened after the study had its trials, and gave up: not a trial."""
    return "not_taken" in t.user_attrs


def study(source: Source, folder: str) -> dict:
    """Everything the study page shows (see the module docstring)."""
    where = find(source, folder)
    s = _load(where)
    base, result = _base(where), _result(where)
    trials = [t for t in s.get_trials(deepcopy=False) if not _not_taken(t)]
    keys = source.keys_of_dirs()
    metric = ((base.get("eval") or {}).get("target_metric")) or "exact_match"
    rows, best, best_number = [], math.inf, None
    for t in sorted(trials, key=lambda t: t.number):
        row = _trial(source, where, t, keys)
        if t.state.name == "COMPLETE" and t.value is not None and t.value < best:
            best, best_number = t.value, t.number
        row["best_so_far"] = None if best_number is None else best
        rows.append(row)
    pid = writer_pid(where)
    return {
        "name": s.study_name, "dir": str(where), "task": (base.get("task") or {}).get("name"),
        "layout": base.get("layout"), "objective": result.get("objective"), "trials_asked": result.get("trials_asked"),
        "target": {"metric": metric, "value": (base.get("eval") or {}).get("target")},
        "reported": f"1 - validation {metric}",
        "running": pid is not None or any(r["state"] == "RUNNING" for r in rows), "pid": pid, "params": _params(trials),
        "trials": rows, "best": best_number, "counts": {st: sum(r["state"] == st for r in rows) for st in STATES},
        "importances": _importances(str(where), tuple(t.number for t in trials if t.state.name == "COMPLETE"), s),
        "remeasured": _remeasured(source, where, keys),
    }


def _trial(source: Source, where: Path, t, keys: dict) -> dict:
    a = t.user_attrs
    run_dir = Path(a.get("run_dir") or where / "trials" / f"{t.number:04d}")
    reported = sorted(t.intermediate_values.items())
    duration = (t.datetime_complete - t.datetime_start).total_seconds() \
        if t.datetime_complete and t.datetime_start else None
    row = {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params, "duration_s": duration,
           "reported": {"step": [s for s, _ in reported], "value": [_round(v) for _, v in reported]},
           "pruned_at": reported[-1][0] if t.state.name == "PRUNED" and reported else None,
           "error": a.get("error"), "retry_of": a.get("retry_of"), "run": _key(source, run_dir, keys),
           **{k: a.get(k) for k in ("solved_at_s", "solved_at_step", "best_val", "seeds_solved")}}
    return {**row, **_test(run_dir, a.get("test_exact_match"))}


def _test(run_dir: Path, value) -> dict:
    """The trial's test exact match (its slowest seed's, with several) with its n and interval."""
    summary = _summary(run_dir)
    if summary is not None and "test_n" not in summary and (run_dir / "replicas").is_dir():
        seeds = [_summary(p) for p in sorted((run_dir / "replicas").iterdir())]
        summary = next((x for x in seeds if x is not None and x.get(intervals.METRIC) == value), None)
    out = {intervals.METRIC: value}
    return intervals.add_interval(out, summary) if summary is not None else {**out, intervals.N: None,
                                                                              intervals.LO: None, intervals.HI: None}


def _summary(run_dir: Path) -> dict | None:
    try:
        return read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else None
    except ConfigError:
        return None


def _key(source: Source, run_dir: Path, keys: dict) -> str | None:
    """The run page's key of a trial's (or a seed's) run directory, if it can be shown."""
    text = str(run_dir.resolve()) if run_dir.exists() else str(run_dir)
    if text in keys:
        return keys[text]
    if source.runs is None or not Path(text).is_relative_to(source.runs):
        return None
    for candidate in (Path(text), Path(text) / "replicas" / "0"):
        if (candidate / "config.json").is_file():
            return "d:" + candidate.relative_to(source.runs).as_posix()
    return None


def _params(trials) -> list[dict]:
    """The searched keys with their distribution (for the axes of the parallel coordinates)."""
    out: dict[str, dict] = {}
    for t in trials:
        for name, d in t.distributions.items():
            kind = type(d).__name__.replace("Distribution", "").lower()
            spec = {"name": name, "kind": kind}
            if kind == "categorical":
                spec["choices"] = list(d.choices)
            else:
                spec.update(low=d.low, high=d.high, log=bool(getattr(d, "log", False)))
            out.setdefault(name, spec)
    return list(out.values())


_IMPORTANCES: dict = {}  # (tune directory, numbers of its complete trials) -> importances


def _importances(folder: str, complete: tuple, study) -> dict:
    """Optuna's parameter importances (its default evaluator, as ``toyformer tune`` reports
    them), computed again only when the set of complete trials changed."""
    key = (folder, complete)
    if key not in _IMPORTANCES:
        if len(_IMPORTANCES) > 64:
            _IMPORTANCES.clear()
        _IMPORTANCES[key] = _measure_importances(study)
    return _IMPORTANCES[key]


def _measure_importances(study) -> dict:
    optuna = _optuna()
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(done) < 2 or len({tuple(sorted(t.params.items())) for t in done}) < 2:
        return {"values": {}, "n": len(done), "note": "Optuna needs two complete trials with different values"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as exc:
        return {"values": {}, "n": len(done), "note": str(exc).splitlines()[0]}
    return {"values": {k: _round(v) for k, v in values.items()}, "n": len(done), "note": None}


def _remeasured(source: Source, where: Path, keys: dict) -> dict | None:
    """The best configuration re-trained on fresh seeds: each finished seed with its run, its
    time to solve and its test exact match (n and interval), and their mean ± 95% CI."""
    folder = where / "best"
    if not folder.is_dir():
        return None
    seeds, summaries = [], []
    for d in sorted(folder.iterdir(), key=lambda p: p.name):
        summary = _summary(d)
        if summary is None:
            continue
        summaries.append(summary)
        seeds.append(intervals.add_interval({"seed": summary.get("seed"), "run": _key(source, d, keys),
                                             "solved": summary.get("solved"), "solved_at_s": summary.get("solved_at_s"),
                                             "solved_at_step": summary.get("solved_at_step"),
                                             intervals.METRIC: summary.get(intervals.METRIC)}, summary))
    if not summaries:
        return None
    return {"seeds": seeds, "summary": remeasure_summary(summaries)}


def _round(v):
    return round(v, DIGITS) if isinstance(v, float) and math.isfinite(v) else v
