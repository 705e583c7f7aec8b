"""Training that records into the results store: ``toyformer.train`` and
``toyformer.train_replicas`` as the public API offers them.

Training itself (``toyformer.training``) knows nothing of the store; recording a run is an
experiment's concern, done here after the run finished. A run that had finished before (``resume``
on a finished run directory, e.g. one whose process was killed before it recorded the run) is
recorded only where it has no row, so resuming it again changes nothing. Likewise a run whose
config names ``train.tensorboard`` gets its TensorBoard logger here
(``toyformer.inspect.tensorboard``): training never imports it.

>>> run = toyformer.train(cfg, out_dir="runs/x", store="runs/results.sqlite")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable

from toyformer import training
from toyformer.config import RunConfig
from toyformer.experiments.store import as_store, record_run
from toyformer.run import Run


def train(config: RunConfig | None, out_dir: str | Path | None = None, resume: bool = False, quiet: bool = True,
          device: str | None = None, on_eval: Callable[[dict], None] | None = None, store=None) -> Run:
    """``toyformer.training.train``; with ``store`` (a results store path or ``ResultsStore``) a
    run with ``out_dir`` is recorded there when it finishes; with ``train.tensorboard`` in its
    config it writes TensorBoard event files there too."""
    from toyformer.inspect.tensorboard import with_tensorboard

    store = _checked(store)
    done_before = _finished(out_dir, resume)
    if not done_before:
        on_eval = with_tensorboard(on_eval, _config(config, out_dir, resume), out_dir)
    run = training.train(config, out_dir, resume, quiet, device, on_eval)
    record_run(store, run, source="train", if_missing=done_before)
    return run


def train_replicas(config: RunConfig | None, k: int | None = None, out_dir: str | Path | None = None,
                   lrs: list[float] | None = None, resume: bool = False, quiet: bool = True,
                   device: str | None = None, store=None) -> training.Replicas:
    """``toyformer.training.train_replicas``; with ``store`` each replica is recorded as its own row
    (``replica``, ``n_replicas``); with ``train.tensorboard=DIR`` replica ``i`` logs into
    ``DIR/replica-<i>``."""
    store = _checked(store)
    done_before = _finished(out_dir, resume)
    on_eval = None if done_before else replica_tensorboard(_config(config, out_dir, resume, "replicas"), k, out_dir)
    rep = training.train_replicas(config, k, out_dir, lrs, resume, quiet, device, on_eval)
    for i, run in enumerate(rep.runs):
        record_run(store, run, "train", replica=i, n_replicas=len(rep.runs), if_missing=done_before)
    return rep


def _checked(store):
    """The store, checked before anything trains: a file that cannot record (not SQLite, another
    schema, a newer one, damaged, a read-only disk) is one line now rather than after the run."""
    store = as_store(store)
    if store is not None:
        store.check(writing=True)
    return store


def replica_tensorboard(config: RunConfig | None, k: int | None, out_dir: str | Path | None):
    """The ``on_eval(i, record)`` TensorBoard logger of a replica run, or None."""
    if config is None or config.train.tensorboard is None:
        return None
    from toyformer.inspect.tensorboard import ReplicaTensorBoard

    if out_dir is not None and (Path(out_dir) / "replicas.json").is_file():
        from toyformer.files import read_json

        k = read_json(Path(out_dir) / "replicas.json")["k"]
    dirs = [Path(out_dir) / "replicas" / str(i) if out_dir is not None else None for i in range(k or 0)]
    return ReplicaTensorBoard(config.train.tensorboard, dirs)


def _config(config: RunConfig | None, out_dir, resume: bool, kind: str = "single") -> RunConfig | None:
    """The run's config: as given, or (resuming) as its directory has it; None when unknown."""
    if config is not None or not resume or out_dir is None:
        return config
    from toyformer.files import read_json
    from toyformer.run import directory

    out = Path(out_dir)
    if kind == "replicas" and (out / "replicas.json").is_file():
        return RunConfig.from_dict(read_json(out / "replicas.json")["config"])
    if (out / "config.json").is_file():
        return RunConfig.from_dict(directory.read_config(out))
    return None  # not a run directory: training says so


def _finished(out_dir: str | Path | None, resume: bool) -> bool:
    """Whether a resumed run directory had finished before (its rows may exist already)."""
    return resume and out_dir is not None and (Path(out_dir) / "summary.json").is_file()
