"""Training that records into the results store: ``toyformer.train`` and
``toyformer.train_replicas`` as the public API offers them.

Training itself (``toyformer.training``) knows nothing of the store; recording a run is an
experiment's concern, done here after the run finished. A run that had finished before (``resume``
on a finished run directory, e.g. one whose process was killed before it recorded the run) is
recorded only where it has no row, so resuming it again changes nothing.

>>> run = toyformer.train(cfg, out_dir="runs/x", store="runs/results.sqlite")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from toyformer import training
from toyformer.config import RunConfig
from toyformer.experiments.store import record_run
from toyformer.run import Run


def train(config: RunConfig | None, out_dir: str | Path | None = None, resume: bool = False, quiet: bool = True,
          device: str | None = None, on_eval: Callable[[dict], None] | None = None, store=None) -> Run:
    """``toyformer.training.train``; with ``store`` (a results store path or ``ResultsStore``) a
    run with ``out_dir`` is recorded there when it finishes."""
    done_before = _finished(out_dir, resume)
    run = training.train(config, out_dir, resume, quiet, device, on_eval)
    record_run(store, run, source="train", if_missing=done_before)
    return run


def train_replicas(config: RunConfig | None, k: int | None = None, out_dir: str | Path | None = None,
                   lrs: list[float] | None = None, resume: bool = False, quiet: bool = True,
                   device: str | None = None, store=None) -> training.Replicas:
    """``toyformer.training.train_replicas``; with ``store`` each replica is recorded as its own row
    (``replica``, ``n_replicas``)."""
    done_before = _finished(out_dir, resume)
    rep = training.train_replicas(config, k, out_dir, lrs, resume, quiet, device)
    for i, run in enumerate(rep.runs):
        record_run(store, run, "train", replica=i, n_replicas=len(rep.runs), if_missing=done_before)
    return rep


def _finished(out_dir: str | Path | None, resume: bool) -> bool:
    """Whether a resumed run directory had finished before (its rows may exist already)."""
    return resume and out_dir is not None and (Path(out_dir) / "summary.json").is_file()
